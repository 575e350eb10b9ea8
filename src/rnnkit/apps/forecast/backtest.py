"""The rolling-origin backtest: forecasts from every origin in the held-out rows, scored beside baselines.

MAE, RMSE, sMAPE, MASE (scaled by the in-sample seasonal naive MAE on the training rows, Hyndman &
Koehler 2006) and interval coverage (:mod:`rnnkit.metrics.forecasting`), for the network and for
naive, seasonal naive, ETS and ARIMA forecasts (statsmodels, refit at every origin) on the same origins.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
from torch import nn

from ...data.series import Scaler
from ...metrics.forecasting import coverage, mae, mase, rmse, smape
from ...training.progress import format_duration
from .baselines import BASELINES
from .calibration import Calibration
from .data import SeriesSetup
from .predict import predict_at


@dataclass
class Backtest:
    origins: list[int]
    scores: dict[str, dict[str, float]]  # method -> metric -> value
    forecasts: dict[str, np.ndarray]  # method -> (origins, H)
    lower: np.ndarray
    upper: np.ndarray
    calibration: Calibration | None = None  # what widened (or narrowed) the interval, if anything

    def table(self) -> str:
        return format_scores(self.scores)


def format_scores(scores: dict[str, dict[str, float]]) -> str:
    """A backtest's scores (method -> metric -> value) as a table: a row per method."""
    names = ["MAE", "RMSE", "sMAPE", "MASE", "coverage", "width"]
    if any("raw coverage" in row for row in scores.values()):
        names += ["raw coverage", "raw width"]  # the head's own interval, before calibration
    widths = [max(10, len(n) + 2) for n in names]
    lines = [f"{'method':<16}" + "".join(f"{n:>{w}}" for n, w in zip(names, widths))]
    undefined = False
    for method, row in scores.items():
        cells = []
        for n, w in zip(names, widths):
            value = row.get(n)
            if value is None:
                cells.append(f"{'-':>{w}}")
            elif math.isnan(value):
                undefined = True
                cells.append(f"{'undefined':>{w}}")
            else:
                cells.append(f"{value:>{w}.3f}")
        lines.append(f"{method:<16}{''.join(cells)}")
    if undefined:
        lines.append("undefined: MASE's in-sample seasonal naive error is 0 (a constant or exactly seasonal series)")
    return "\n".join(lines)


#: seconds between two progress lines of a baseline refit at every origin
PROGRESS_EVERY = 10.0


def backtest(model: nn.Module, setup: SeriesSetup, scaler: Scaler, *, baselines: bool = True,
             name: str = "RNN", calibration: Calibration | None = None,
             progress: Callable[[str], None] | None = None) -> Backtest:  # fmt: skip
    """Forecasts from every origin in the held-out rows (stride ``step``) whose horizon fits.

    ``coverage`` is that of the interval forecasts carry (calibrated, with a ``calibration``);
    ``raw coverage`` that of the head's own interval, shown beside it when there is a calibration;
    ``width`` and ``raw width`` are the intervals' mean widths in data units. ``progress`` receives
    lines of text while the baselines are refit at every origin (ETS and ARIMA can take minutes):
    one as each starts, one every :data:`PROGRESS_EVERY` seconds, one as it ends.
    """
    c = setup.config
    values = setup.frame.to_numpy(dtype=float)[:, 0]  # (N,)
    first = setup.train_end
    origins = list(range(first, len(values) - c.horizon + 1, c.step))
    actual = np.stack([values[o : o + c.horizon] for o in origins])  # (M, H)
    insample = values[:first]
    predicted = predict_at(model, setup.frame, scaler, c, origins, calibration)
    forecasts = {name: predicted["point"]}
    methods = ["naive", "seasonal naive"] + (["ETS", "ARIMA"] if baselines else [])
    for method in methods:
        forecasts[method] = _refit_at_origins(method, values, origins, c.horizon, c.season, progress)
    scores = {}
    for method, forecast in forecasts.items():
        scores[method] = {
            "MAE": mae(actual, forecast),
            "RMSE": rmse(actual, forecast),
            "sMAPE": smape(actual, forecast),
            "MASE": mase(actual, forecast, insample, c.season),
        }
    scores[name]["coverage"] = coverage(actual, predicted["lower"], predicted["upper"])
    scores[name]["width"] = float(np.mean(predicted["upper"] - predicted["lower"]))
    if calibration is not None:
        scores[name]["raw coverage"] = coverage(actual, predicted["raw_lower"], predicted["raw_upper"])
        scores[name]["raw width"] = float(np.mean(predicted["raw_upper"] - predicted["raw_lower"]))
    return Backtest(origins, scores, forecasts, predicted["lower"], predicted["upper"], calibration)


def _refit_at_origins(method: str, values: np.ndarray, origins: list[int], horizon: int, season: int,
                      progress: Callable[[str], None] | None) -> np.ndarray:  # fmt: skip
    """``method``'s forecasts ``(M, H)`` from each origin, fitted on the rows before it."""
    slow = method in ("ETS", "ARIMA")  # naive and seasonal naive take no time worth showing
    say = progress if (progress is not None and slow) else None
    if say is not None:
        say(f"backtest: fitting {method} at each of {len(origins)} origins")
    started = last = time.monotonic()
    rows = []
    for i, origin in enumerate(origins, 1):
        rows.append(BASELINES[method](values[:origin], horizon, season))
        now = time.monotonic()
        if say is not None and now - last >= PROGRESS_EVERY and i < len(origins):
            last = now
            eta = (now - started) / i * (len(origins) - i)
            say(f"backtest: {method} {i}/{len(origins)} origins, {format_duration(now - started)} (eta {format_duration(eta)})")
    if say is not None:
        say(f"backtest: {method} done in {format_duration(time.monotonic() - started)}")
    return np.stack(rows)
