"""Deprecated: moved to :mod:`rnnkit.experiments.compare` (``DemoConfig`` is ``CompareConfig`` there)."""

from rnnkit.experiments.compare import CompareConfig as CompareConfig
from rnnkit.experiments.compare import CompareConfig as DemoConfig
from rnnkit.experiments.compare import CompareResult as CompareResult
from rnnkit.experiments.compare import CompareResult as DemoResult
from rnnkit.experiments.compare import LastStepRegressor as LastStepRegressor
from rnnkit.experiments.compare import build_models as build_models
from rnnkit.experiments.compare import format_table as format_table
from rnnkit.experiments.compare import run_compare as run_compare
from rnnkit.experiments.compare import run_compare as run_demo
from rnnkit.tasks._deprecated import moved

moved(__name__, "rnnkit.experiments.compare")
