"""Metrics by kind of output, each in plain torch or numpy (no model, no files).

- :mod:`~rnnkit.metrics.classification`: confusion matrix, accuracy, per-class precision/recall/F1,
  macro-F1, the majority baseline, and their small tables;
- :mod:`~rnnkit.metrics.spans`: chunks of sequence labels and span F1, as conlleval;
- :mod:`~rnnkit.metrics.sequences`: exact match of generated sequences, edit distance, CER/WER;
- :mod:`~rnnkit.metrics.forecasting`: MAE, RMSE, sMAPE, MASE, interval coverage;
- :mod:`~rnnkit.metrics.nab`: the Numenta Anomaly Benchmark's scoring.
"""

from .classification import accuracy as accuracy
from .classification import confusion_matrix as confusion_matrix
from .classification import macro_f1 as macro_f1
from .classification import per_class as per_class
from .forecasting import coverage as coverage
from .forecasting import mae as mae
from .forecasting import mase as mase
from .forecasting import rmse as rmse
from .forecasting import smape as smape
from .sequences import Edits as Edits
from .sequences import cer as cer
from .sequences import edit_distance as edit_distance
from .sequences import edits as edits
from .sequences import error_rate as error_rate
from .sequences import exact_match as exact_match
from .sequences import wer as wer
from .spans import span_scores as span_scores
from .spans import spans as spans

__all__ = ["accuracy", "confusion_matrix", "macro_f1", "per_class", "coverage", "mae", "mase", "rmse", "smape",
           "exact_match", "span_scores", "spans", "Edits", "edits", "edit_distance", "error_rate", "cer", "wer"]  # fmt: skip
