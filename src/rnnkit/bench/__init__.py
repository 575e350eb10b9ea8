"""Benchmark: rnnkit's layers against torch.nn and a plain autograd loop, in the same run.

``run(configs, ...) -> list[Row]`` times training (forward + backward of ``output.sum()``) and
inference of the configurations in :data:`CONFIGS` (``rnnkit bench`` on the command line), in
fp32 and in bf16 under autocast where the hardware has it. Every row reports rnnkit's median
time, its GFLOP/s (see :func:`forward_flops`), the percentage of the fp32 matmul peak measured in
the same process, peak memory, and speed = reference time / rnnkit time against the torch.nn
module with the same weights and against rnnkit's own step loop.

>>> from rnnkit.bench import Case, run, measure_machine
>>> rows = run([Case("gru", 8, 2, 3, "infer")], reps=1, warmup=0, memory=False,
...            machine=measure_machine("cpu", matmul_size=64), dtypes="fp32")
>>> [(r.case, r.mode, r.torch_ref) for r in rows]
[('GRU H8 B2 T3', 'infer', 'torch.nn.GRU')]
"""

from ._command import COMMAND as COMMAND
from ._command import add_arguments as add_arguments
from ._command import main as main
from ._configs import CONFIGS as CONFIGS
from ._configs import Case as Case
from ._configs import Config as Config
from ._configs import case_flops as case_flops
from ._configs import forward_flops as forward_flops
from ._configs import parse_configs as parse_configs
from ._configs import register_config as register_config
from ._configs import select_cases as select_cases
from ._contenders import build_contenders as build_contenders
from ._contenders import layer_path as layer_path
from ._contenders import step_path as step_path
from ._measure import Machine as Machine
from ._measure import measure_machine as measure_machine
from ._measure import time_interleaved as time_interleaved
from ._report import Row as Row
from ._report import format_table as format_table
from ._report import to_json as to_json
from ._report import write_json as write_json
from ._run import run as run

__all__ = [
    "COMMAND",
    "run",
    "Row",
    "Case",
    "Config",
    "CONFIGS",
    "register_config",
    "parse_configs",
    "select_cases",
    "forward_flops",
    "case_flops",
    "build_contenders",
    "layer_path",
    "step_path",
    "time_interleaved",
    "Machine",
    "measure_machine",
    "format_table",
    "to_json",
    "write_json",
    "add_arguments",
    "main",
]
