"""Deprecated: moved to :mod:`rnnkit.apps.anomaly`."""

from rnnkit.apps.anomaly import next_value_model as build_model
from rnnkit.apps.anomaly import check_threshold as check_threshold
from rnnkit.apps.anomaly import check_threshold_settings as check_threshold_settings
from rnnkit.apps.anomaly import DETECTOR_FILE as DETECTOR_FILE
from rnnkit.apps.anomaly import DynamicThreshold as DynamicThreshold
from rnnkit.apps.anomaly import DynamicThresholdConfig as DynamicThresholdConfig
from rnnkit.apps.anomaly import error_statistics as error_statistics
from rnnkit.apps.anomaly import GaussianThresholdConfig as GaussianThresholdConfig
from rnnkit.apps.anomaly import next_value_chunks as next_value_chunks
from rnnkit.apps.anomaly import prune_sequences as prune_sequences
from rnnkit.apps.anomaly import register_threshold as register_threshold
from rnnkit.apps.anomaly import RNNDetector as RNNDetector
from rnnkit.apps.anomaly import RNNDetectorConfig as RNNDetectorConfig
from rnnkit.apps.anomaly import RNNScorer as RNNScorer
from rnnkit.apps.anomaly import score_all as score_all
from rnnkit.apps.anomaly import scoring_settings as scoring_settings
from rnnkit.apps.anomaly import select_epsilon as select_epsilon
from rnnkit.apps.anomaly import StreamingScorer as StreamingScorer
from rnnkit.apps.anomaly import ThresholdMethod as ThresholdMethod
from rnnkit.apps.anomaly import THRESHOLDS as THRESHOLDS
from rnnkit.apps.anomaly import WindowedGaussian as WindowedGaussian
from rnnkit.tasks._deprecated import moved

moved(__name__, "rnnkit.apps.anomaly")
