"""Baseline forecasters, each ``(history (N,), horizon, season) -> forecast (horizon,)``: naive, seasonal
naive, and statsmodels' ETS and ARIMA (the ``timeseries`` extra), refit at every origin by the backtest."""

from __future__ import annotations

import warnings

import numpy as np

from ...data.series import require


def naive(history: np.ndarray, horizon: int, season: int) -> np.ndarray:
    return np.full(horizon, history[-1], dtype=float)


def seasonal_naive(history: np.ndarray, horizon: int, season: int) -> np.ndarray:
    last_season = history[-season:]
    return np.array([last_season[i % season] for i in range(horizon)], dtype=float)


def ets(history: np.ndarray, horizon: int, season: int) -> np.ndarray:
    """Holt-Winters exponential smoothing: damped additive trend, and a seasonal component
    (multiplicative for a positive series) where two full seasons are there to fit it."""
    holt = require("statsmodels.tsa.holtwinters")
    seasonal = None
    if season > 1 and len(history) >= 2 * season:
        seasonal = "mul" if (history > 0).all() else "add"
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        model = holt.ExponentialSmoothing(history, trend="add", damped_trend=True, seasonal=seasonal,
                                          seasonal_periods=season if seasonal else None,
                                          initialization_method="estimated")  # fmt: skip
        return np.asarray(model.fit().forecast(horizon), dtype=float)


def arima(history: np.ndarray, horizon: int, season: int) -> np.ndarray:
    """ARIMA(2,1,1), with a seasonal (0,1,1) part of period ``season`` when there is one
    (Box & Jenkins' airline model is (0,1,1)x(0,1,1)_12); on logs for a positive series."""
    sarimax = require("statsmodels.tsa.statespace.sarimax")
    positive = (history > 0).all()
    values = np.log(history) if positive else history
    seasonal = (0, 1, 1, season) if season > 1 and len(history) >= 3 * season else (0, 0, 0, 0)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        model = sarimax.SARIMAX(values, order=(2, 1, 1), seasonal_order=seasonal)
        forecast = np.asarray(model.fit(disp=False).forecast(horizon), dtype=float)
    return np.exp(forecast) if positive else forecast


BASELINES = {"naive": naive, "seasonal naive": seasonal_naive, "ETS": ets, "ARIMA": arima}
