"""Tasks: data and applications built on rnnkit's layers.

``synthetic`` holds generated long-range memory tasks; ``demo`` trains an LSTM and a tanh
RNN side by side on one of them (``rnnkit demo``).
"""

from rnnkit.tasks.synthetic import (
    ADDING_BASELINE_MSE as ADDING_BASELINE_MSE,
    adding_problem as adding_problem,
    copy_memory as copy_memory,
    copy_memory_baseline as copy_memory_baseline,
)

__all__ = ["ADDING_BASELINE_MSE", "adding_problem", "copy_memory", "copy_memory_baseline"]
