"""Deprecated: moved to :mod:`rnnkit.experiments.gradients`."""

from rnnkit.experiments.gradients import CellResult as CellResult
from rnnkit.experiments.gradients import FlowMeasurement as FlowMeasurement
from rnnkit.experiments.gradients import GradientsConfig as GradientsConfig
from rnnkit.experiments.gradients import GradientsReport as GradientsReport
from rnnkit.experiments.gradients import format_table as format_table
from rnnkit.experiments.gradients import output_dir as output_dir
from rnnkit.experiments.gradients import run_gradients as run_gradients
from rnnkit.experiments.gradients import write_report as write_report
from rnnkit.tasks._deprecated import moved

moved(__name__, "rnnkit.experiments.gradients")
