"""Deprecated: moved to :mod:`rnnkit.data.series`."""

from rnnkit.data.series import AIRLINE_PASSENGERS as AIRLINE_PASSENGERS
from rnnkit.data.series import EXTRA_HINT as EXTRA_HINT
from rnnkit.data.series import Dataset as Dataset
from rnnkit.data.series import MissingExtraError as MissingExtraError
from rnnkit.data.series import Scaler as Scaler
from rnnkit.data.series import check_length as check_length
from rnnkit.data.series import future_index as future_index
from rnnkit.data.series import infer_season as infer_season
from rnnkit.data.series import load_dataset as load_dataset
from rnnkit.data.series import read_series_csv as read_series_csv
from rnnkit.data.series import require as require
from rnnkit.data.series import validate_frame as validate_frame
from rnnkit.data.series import windows as windows
from rnnkit.tasks._deprecated import moved

moved(__name__, "rnnkit.data.series")
