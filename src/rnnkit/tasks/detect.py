"""Deprecated: moved to :mod:`rnnkit.apps.anomaly`."""

from rnnkit.apps.anomaly import detect_csv as detect_csv
from rnnkit.apps.anomaly import detect_lines as detect_lines
from rnnkit.apps.anomaly import detect_run as detect_run
from rnnkit.apps.anomaly import DetectConfig as DetectConfig
from rnnkit.apps.anomaly import DETECTORS as DETECTORS
from rnnkit.apps.anomaly import find_gaps as find_gaps
from rnnkit.apps.anomaly import plot_detections as plot_detections
from rnnkit.apps.anomaly import PLOT_FILE as PLOT_FILE
from rnnkit.apps.anomaly import read_values as read_values
from rnnkit.apps.anomaly import split_rows as split_rows
from rnnkit.apps.anomaly.reading import MAX_GAP_FILL as MAX_GAP_FILL
from rnnkit.apps.anomaly.reading import MAX_GAP_WARNINGS as MAX_GAP_WARNINGS
from rnnkit.tasks._deprecated import moved

moved(__name__, "rnnkit.apps.anomaly")
