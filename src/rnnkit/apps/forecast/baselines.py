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


# --- the M3/M4 benchmarks' classical methods (many series: ``many``, benchmarks/m3.py) ----------------


def seasonality_test(history: np.ndarray, season: int) -> bool:
    """The M4 competition's 90% test for seasonality: the autocorrelation at lag ``season`` exceeds
    1.645 sqrt((1 + 2 sum_{k<m} r_k^2) / n) (Makridakis et al. 2020, the benchmarks' code)."""
    n = len(history)
    if season <= 1 or n < 3 * season:
        return False
    x = history - history.mean()
    denominator = float((x**2).sum())
    if denominator == 0:
        return False
    acf = np.array([float((x[k:] * x[: n - k]).sum()) / denominator for k in range(1, season + 1)])
    limit = 1.645 * np.sqrt((1 + 2 * (acf[:-1] ** 2).sum()) / n)
    return bool(abs(acf[-1]) > limit)


def seasonal_indices(history: np.ndarray, season: int) -> np.ndarray:
    """Multiplicative seasonal indices ``(season,)`` of a classical decomposition where the series is
    seasonal (:func:`seasonality_test`) and positive, else ones; index ``i`` is for time ``t % season == i``."""
    if not (seasonality_test(history, season) and (history > 0).all()):
        return np.ones(max(season, 1))
    decompose = require("statsmodels.tsa.seasonal")
    result = decompose.seasonal_decompose(history, model="multiplicative", period=season, two_sided=True)
    return np.asarray(result.seasonal[:season], dtype=float)


def _deseasonalised(history: np.ndarray, horizon: int, season: int, forecast) -> np.ndarray:
    """``forecast(adjusted, horizon)`` on the seasonally adjusted series, seasonality put back."""
    indices = seasonal_indices(history, season)
    n, m = len(history), len(indices)
    adjusted = history / indices[np.arange(n) % m]
    return np.asarray(forecast(adjusted, horizon), dtype=float) * indices[np.arange(n, n + horizon) % m]


def naive2(history: np.ndarray, horizon: int, season: int) -> np.ndarray:
    """Naive on the seasonally adjusted series (M3's and M4's Naive2, the OWA reference)."""
    return _deseasonalised(history, horizon, season, lambda y, h: np.full(h, y[-1]))


def theta(history: np.ndarray, horizon: int, season: int) -> np.ndarray:
    """The Theta method (Assimakopoulos & Nikolopoulos 2000; SES with drift, Hyndman & Billah 2003) on the
    seasonally adjusted series as in M3/M4, by statsmodels' ``ThetaModel``."""
    thetamodel = require("statsmodels.tsa.forecasting.theta")

    def fit(y: np.ndarray, h: int) -> np.ndarray:
        if len(y) < 3 or np.ptp(y) == 0:
            return np.full(h, y[-1])
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            return np.asarray(thetamodel.ThetaModel(y, period=1, deseasonalize=False).fit().forecast(h))

    return _deseasonalised(history, horizon, season, fit)


def auto_ets(history: np.ndarray, horizon: int, season: int) -> np.ndarray:
    """ETS chosen by AICc (statsmodels' ``ETSModel``) over additive or multiplicative errors, no,
    additive or damped trend, and no or (where seasonal by :func:`seasonality_test`) additive or
    multiplicative seasonality -- Hyndman et al. 2002's automatic ETS over the stable forms."""
    ets_model = require("statsmodels.tsa.exponential_smoothing.ets")
    positive = bool((history > 0).all())
    seasonals = [None] + (["add"] + (["mul"] if positive else []) if seasonality_test(history, season) else [])
    best, best_aicc = None, np.inf
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        for error in ["add"] + (["mul"] if positive else []):
            for trend, damped in ((None, False), ("add", False), ("add", True)):
                for seasonal in seasonals:
                    if trend and len(history) < 6:
                        continue
                    try:
                        fit = ets_model.ETSModel(history, error=error, trend=trend, damped_trend=damped,
                                                 seasonal=seasonal, seasonal_periods=season if seasonal else None,
                                                 ).fit(disp=False)  # fmt: skip
                    except (ValueError, np.linalg.LinAlgError):
                        continue
                    aicc = fit.aicc if np.isfinite(fit.aicc) else fit.aic
                    if np.isfinite(aicc) and aicc < best_aicc:
                        best, best_aicc = fit, aicc
    if best is None:
        return naive(history, horizon, season)
    forecast = np.asarray(best.forecast(horizon), dtype=float)
    return forecast if np.isfinite(forecast).all() else naive(history, horizon, season)


def auto_arima(history: np.ndarray, horizon: int, season: int) -> np.ndarray:
    """Automatic ARIMA on the seasonally adjusted series: d (0-2) by KPSS tests at 5%, then (p, q) in
    0..2 by AICc, with a constant when d < 2 (statsmodels' ``ARIMA``); a smaller search than
    Hyndman & Khandakar 2008's, named as such in the results."""
    arima_model = require("statsmodels.tsa.arima.model")
    stattools = require("statsmodels.tsa.stattools")

    def fit(y: np.ndarray, h: int) -> np.ndarray:
        if len(y) < 6 or np.ptp(y) == 0:
            return np.full(h, y[-1])
        d, z = 0, y
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            while d < 2 and len(z) > 8 and np.ptp(z) > 0 and stattools.kpss(z, nlags="auto")[1] < 0.05:
                z, d = np.diff(z), d + 1
            best, best_aicc = None, np.inf
            for p in range(3):
                for q in range(3):
                    if p + q + d + 2 >= len(y):
                        continue
                    try:
                        result = arima_model.ARIMA(y, order=(p, d, q), trend="t" if d == 1 else ("c" if d == 0 else "n"),
                                                   ).fit()  # fmt: skip
                    except (ValueError, np.linalg.LinAlgError):
                        continue
                    if np.isfinite(result.aicc) and result.aicc < best_aicc:
                        best, best_aicc = result, result.aicc
        forecast = np.full(h, y[-1]) if best is None else np.asarray(best.forecast(h), dtype=float)
        return forecast if np.isfinite(forecast).all() else np.full(h, y[-1])

    return _deseasonalised(history, horizon, season, fit)


#: the methods that many-series runs and the M3 benchmark compare with, by name
PANEL_BASELINES = {"naive": naive, "seasonal naive": seasonal_naive, "Naive2": naive2, "Theta": theta,
                   "ETS": auto_ets, "ARIMA": auto_arima}  # fmt: skip
