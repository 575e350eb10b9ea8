"""Streaming anomaly detection on one univariate series: ``rnnkit train detect`` and ``rnnkit detect``.

- :mod:`~rnnkit.apps.anomaly.scorers`: the streaming-scorer contract and NAB's windowed Gaussian;
- :mod:`~rnnkit.apps.anomaly.thresholds`: the thresholds of an LSTM's smoothed errors by name
  (:data:`THRESHOLDS`: ``gaussian``; ``dynamic``, Hundman et al. 2018);
- :mod:`~rnnkit.apps.anomaly.detector`: the LSTM prediction-error detector (Malhotra et al. 2015),
  :class:`RNNDetector` and its streaming :class:`RNNScorer`;
- :mod:`~rnnkit.apps.anomaly.app`: the app (``rnnkit train detect``) and ``rnnkit detect``;
  :mod:`~rnnkit.apps.anomaly.detect` what ``rnnkit detect`` runs; :mod:`~rnnkit.apps.anomaly.reading`
  reading a series with its gaps.

NAB's scoring is :mod:`rnnkit.metrics.nab`, its files :mod:`rnnkit.data.nab`.
"""

from .app import DetectApp as DetectApp
from .app import DetectConfig as DetectConfig
from .app import split_rows as split_rows
from .detect import DETECTORS as DETECTORS
from .detect import PLOT_FILE as PLOT_FILE
from .detect import detect_csv as detect_csv
from .detect import detect_lines as detect_lines
from .detect import detect_run as detect_run
from .detect import detections_figure as detections_figure
from .detect import plot_detections as plot_detections
from .detect import windowed_gaussian as windowed_gaussian
from .detector import DETECTOR_FILE as DETECTOR_FILE
from .detector import RNNDetector as RNNDetector
from .detector import RNNDetectorConfig as RNNDetectorConfig
from .detector import RNNScorer as RNNScorer
from .detector import error_statistics as error_statistics
from .detector import next_value_chunks as next_value_chunks
from .detector import next_value_model as next_value_model
from .detector import prediction_errors as prediction_errors
from .detector import scoring_settings as scoring_settings
from .reading import find_gaps as find_gaps
from .reading import read_values as read_values
from .scorers import StreamingScorer as StreamingScorer
from .scorers import WindowedGaussian as WindowedGaussian
from .scorers import check_value as check_value
from .scorers import score_all as score_all
from .scorers import unit_ratio as unit_ratio
from .thresholds import THRESHOLDS as THRESHOLDS
from .thresholds import DynamicThreshold as DynamicThreshold
from .thresholds import DynamicThresholdConfig as DynamicThresholdConfig
from .thresholds import GaussianThresholdConfig as GaussianThresholdConfig
from .thresholds import HoldOff as HoldOff
from .thresholds import LikelihoodThresholdConfig as LikelihoodThresholdConfig
from .likelihood import AnomalyLikelihood as AnomalyLikelihood
from .online import OnlineConfig as OnlineConfig
from .online import OnlineLearner as OnlineLearner
from .thresholds import ThresholdMethod as ThresholdMethod
from .thresholds import check_threshold as check_threshold
from .thresholds import check_threshold_settings as check_threshold_settings
from .thresholds import prune_sequences as prune_sequences
from .thresholds import register_threshold as register_threshold
from .thresholds import select_epsilon as select_epsilon

__all__ = ["DetectApp", "DetectConfig", "split_rows", "DETECTORS", "PLOT_FILE", "detect_csv", "detect_lines",
           "detect_run", "detections_figure", "plot_detections", "windowed_gaussian", "DETECTOR_FILE", "RNNDetector", "RNNDetectorConfig",
           "RNNScorer", "error_statistics", "next_value_chunks", "next_value_model", "prediction_errors", "scoring_settings", "find_gaps",
           "read_values", "HoldOff", "AnomalyLikelihood", "OnlineConfig", "OnlineLearner", "LikelihoodThresholdConfig", "StreamingScorer", "WindowedGaussian", "check_value", "score_all", "unit_ratio", "THRESHOLDS",
           "DynamicThreshold", "DynamicThresholdConfig", "GaussianThresholdConfig", "ThresholdMethod",
           "check_threshold", "check_threshold_settings", "prune_sequences", "register_threshold",
           "select_epsilon"]  # fmt: skip
