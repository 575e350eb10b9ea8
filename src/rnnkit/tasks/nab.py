"""Deprecated: the scoring moved to :mod:`rnnkit.metrics.nab`, the NAB files to :mod:`rnnkit.data.nab`."""

from rnnkit.data.nab import nab_series_names as series_names
from rnnkit.data.nab import read_nab_series as load_series
from rnnkit.data.nab import window_indices as window_indices
from rnnkit.metrics.nab import PROBATION_FRACTION as PROBATION_FRACTION
from rnnkit.metrics.nab import STANDARD as STANDARD
from rnnkit.metrics.nab import Profile as Profile
from rnnkit.metrics.nab import SeriesScore as SeriesScore
from rnnkit.metrics.nab import best_threshold as best_threshold
from rnnkit.metrics.nab import normalised as normalised
from rnnkit.metrics.nab import point_weights as point_weights
from rnnkit.metrics.nab import probationary_length as probationary_length
from rnnkit.metrics.nab import scaled_sigmoid as scaled_sigmoid
from rnnkit.metrics.nab import score_series as score_series
from rnnkit.tasks._deprecated import moved

__all__ = ["series_names", "load_series", "window_indices", "PROBATION_FRACTION", "STANDARD", "Profile", "SeriesScore",
           "best_threshold", "normalised", "point_weights", "probationary_length", "scaled_sigmoid", "score_series"]
moved(__name__, "rnnkit.metrics.nab and rnnkit.data.nab")
