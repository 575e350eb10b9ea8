"""Deprecated: moved to rnnkit.apps.anomaly.scorers and rnnkit.apps.anomaly.thresholds."""

from rnnkit.apps.anomaly import check_value as _check_value
from rnnkit.apps.anomaly import check_threshold as check_threshold
from rnnkit.apps.anomaly import check_threshold_settings as check_threshold_settings
from rnnkit.apps.anomaly import DynamicThreshold as DynamicThreshold
from rnnkit.apps.anomaly import DynamicThresholdConfig as DynamicThresholdConfig
from rnnkit.apps.anomaly import GaussianThresholdConfig as GaussianThresholdConfig
from rnnkit.apps.anomaly import prune_sequences as prune_sequences
from rnnkit.apps.anomaly import register_threshold as register_threshold
from rnnkit.apps.anomaly import score_all as score_all
from rnnkit.apps.anomaly import select_epsilon as select_epsilon
from rnnkit.apps.anomaly import StreamingScorer as StreamingScorer
from rnnkit.apps.anomaly import ThresholdMethod as ThresholdMethod
from rnnkit.apps.anomaly import THRESHOLDS as THRESHOLDS
from rnnkit.apps.anomaly import WindowedGaussian as WindowedGaussian
from rnnkit.tasks._deprecated import moved

moved(__name__, "rnnkit.apps.anomaly.scorers and rnnkit.apps.anomaly.thresholds")
