"""Point and interval forecast errors: MAE, RMSE, sMAPE, MASE and interval coverage (numpy).

Each takes array-likes of the same shape (any shape: origins x steps ahead is usual) and returns
one float, the mean over every entry.

>>> mae([1.0, 2.0, 3.0], [2.0, 2.0, 0.0]), coverage([1.0, 2.0], [0.0, 2.5], [1.5, 3.0])
(1.3333333333333333, 0.5)
"""

from __future__ import annotations

import math

import numpy as np


def mae(actual, predicted) -> float:
    return float(np.mean(np.abs(np.asarray(actual, float) - np.asarray(predicted, float))))


def rmse(actual, predicted) -> float:
    return float(np.sqrt(np.mean((np.asarray(actual, float) - np.asarray(predicted, float)) ** 2)))


def smape(actual, predicted) -> float:
    """Symmetric MAPE in percent, ``200 |y - f| / (|y| + |f|)`` averaged; 0/0 terms count as 0."""
    actual, predicted = np.asarray(actual, float), np.asarray(predicted, float)
    denominator = np.abs(actual) + np.abs(predicted)
    terms = np.where(denominator > 0, 2 * np.abs(actual - predicted) / np.where(denominator > 0, denominator, 1), 0.0)
    return float(100 * terms.mean())


def seasonal_naive_scale(insample, season: int) -> float:
    """The in-sample MAE of the seasonal naive forecast ``y_t = y_{t-m}``: MASE's denominator."""
    insample = np.asarray(insample, float)
    if len(insample) <= season:
        raise ValueError(f"MASE needs more than season={season} in-sample values, got {len(insample)}")
    return float(np.mean(np.abs(insample[season:] - insample[:-season])))


def mase(actual, predicted, insample, season: int) -> float:
    """Mean absolute scaled error (Hyndman & Koehler 2006): MAE over the in-sample seasonal naive MAE.

    NaN -- undefined, not an error -- where that MAE is 0 (a constant, or exactly seasonal, series).
    """
    scale = seasonal_naive_scale(insample, season)
    return mae(actual, predicted) / scale if scale > 0 else math.nan


def coverage(actual, lower, upper) -> float:
    """Fraction of actual values inside ``[lower, upper]``."""
    actual = np.asarray(actual, float)
    return float(np.mean((actual >= np.asarray(lower, float)) & (actual <= np.asarray(upper, float))))
