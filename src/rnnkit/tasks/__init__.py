"""Tasks: data and applications built on rnnkit's layers.

Importing the package registers the tasks of ``rnnkit train`` (:data:`TASKS`); ``synthetic``
holds the generated long-range memory tasks, ``compare`` the LSTM-vs-tanh-RNN comparison.
"""

from rnnkit.tasks import longrange as _longrange  # noqa: F401  (registers adding, copy)
from rnnkit.tasks import sequences as _sequences  # noqa: F401  (registers seq2seq)
from rnnkit.tasks import tagging as _tagging  # noqa: F401  (registers tag)
from rnnkit.tasks import text as _text  # noqa: F401  (registers text)
from rnnkit.tasks import classify as _classify  # noqa: F401  (registers classify)
from rnnkit.tasks import forecast as _forecast  # noqa: F401  (registers forecast; pandas only when used)
from rnnkit.tasks import detect as _detect  # noqa: F401  (registers detect; pandas only when used)
from rnnkit.tasks._registry import TASKS as TASKS
from rnnkit.tasks._registry import Task as Task
from rnnkit.tasks._registry import register_task as register_task
from rnnkit.data.synthetic import (
    ADDING_BASELINE_MSE as ADDING_BASELINE_MSE,
    adding_problem as adding_problem,
    copy_memory as copy_memory,
    copy_memory_baseline as copy_memory_baseline,
)

__all__ = ["TASKS", "Task", "register_task", "ADDING_BASELINE_MSE", "adding_problem", "copy_memory", "copy_memory_baseline"]
