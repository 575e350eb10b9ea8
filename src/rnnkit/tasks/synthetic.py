"""Deprecated: moved to :mod:`rnnkit.data.synthetic`."""

from rnnkit.data.synthetic import ADDING_BASELINE_MSE as ADDING_BASELINE_MSE
from rnnkit.data.synthetic import adding_problem as adding_problem
from rnnkit.data.synthetic import copy_memory as copy_memory
from rnnkit.data.synthetic import copy_memory_baseline as copy_memory_baseline
from rnnkit.tasks._deprecated import moved

moved(__name__, "rnnkit.data.synthetic")
