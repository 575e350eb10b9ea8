"""Split-conformal calibration of the forecast interval (CQR, Romano et al. 2019; CF-RNN,
Stankeviciute et al. 2021): one correction per step ahead, from a second model."""

from __future__ import annotations

import json
import math
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
from torch import Tensor, nn

from ...data.series import Scaler
from .config import ForecastConfig, calibration_rows, min_calibration_origins
from .data import SeriesSetup, training_windows
from .forecasts import scaled_forecasts

# --- conformal calibration of the interval -------------------------------------------------------
#
# The head's interval comes from a scale (or quantiles) learned on windows the network has fitted,
# so it understates out-of-sample error. Split conformal prediction (Vovk et al. 2005; Lei et al.
# 2018) fixes the width on data the model has not seen: a second model, trained the same way on
# the training part minus its last ``calibration_size`` rows, forecasts from every origin in those
# rows whose horizon fits (the held-out backtest's geometry, inside the training part), and the
# conformity scores of its errors give one correction per step ahead (per-step calibration as in
# CF-RNN, Stankeviciute et al. 2021, sec. 3, without their Bonferroni split: we target each step's
# own coverage, which is what the coverage metric counts, not all H steps jointly). The correction
# is then applied to the intervals of the model trained on the whole training part, whose point
# forecast is unchanged. Every head's interval [lower, upper] (the Gaussian's central ``interval``,
# the outer quantiles, or the sampled paths' quantiles) is treated as conformalized quantile
# regression treats its quantiles (CQR, Romano et al. 2019): in scaled units (logs for a
# log-transformed target), the score of an outcome y is max(lower - y, y - upper) (eq. 6), and the
# calibrated interval is [lower - q_h, upper + q_h] (eq. 7); q_h < 0 narrows a too-wide interval.
# q_h is the ceil((n + 1) * level)-th smallest of the n scores of step h (Romano et al. 2019,
# theorem 1: coverage at least ``level`` for exchangeable scores; a time series is not
# exchangeable, so here it is an estimate, not a guarantee). For the Gaussian head we also tried the
# normalized score |y - mean| / scale (Lei et al. 2018, sec. 5.2): on airline and sunspots it gave
# similar coverage with intervals 1.2-2.6 times wider than CQR's (docs/forecasting.md).


@dataclass(frozen=True)
class Calibration:
    """Per-step conformal corrections ``q`` (H,) of the interval's bounds, in scaled units, and
    where they came from."""

    level: float
    q: tuple[float, ...]  # one per step ahead
    rows: tuple[int, int]  # the calibration part [start, end) of the training rows
    origins: int  # forecasts scored per step

    def apply(self, raw: dict[str, np.ndarray]) -> tuple[np.ndarray, np.ndarray]:
        """Calibrated ``(lower, upper)``, scaled units, from :func:`scaled_forecasts`' output."""
        q = np.asarray(self.q, dtype=np.float32)  # (H,), broadcast over origins
        return raw["lower"] - q, raw["upper"] + q  # Romano et al. 2019, eq. 7

    def to_json(self) -> str:
        return json.dumps({"level": self.level, "q": list(self.q), "rows": list(self.rows), "origins": self.origins},
                          indent=1)  # fmt: skip

    @classmethod
    def from_dict(cls, data: dict) -> Calibration:
        return cls(float(data["level"]), tuple(float(v) for v in data["q"]), tuple(data["rows"]), int(data["origins"]))


def fit_calibration(model: nn.Module, frame, scaler: Scaler, config: ForecastConfig,
                    rows: tuple[int, int]) -> Calibration:  # fmt: skip
    """Conformal corrections from ``model``'s forecasts at every origin in ``rows`` whose horizon fits.

    ``model`` must not have been trained on rows from ``rows[0]`` on. Only ``frame``'s first
    ``rows[1]`` rows are read: the calibration never sees what comes after the training part.
    """
    start, end = rows
    H = config.horizon
    scaled = scaler.transform(frame.to_numpy(dtype=float)[:end])  # (end, F): nothing past the training part
    origins = list(range(max(start, config.lookback), end - H + 1))
    raw = scaled_forecasts(model, scaled, scaler, config, origins)
    actual = np.stack([scaled[o : o + H, 0] for o in origins])  # (n, H)
    scores = np.maximum(raw["lower"] - actual, actual - raw["upper"])  # (n, H), Romano et al. 2019, eq. 6
    n = len(origins)
    rank = math.ceil((n + 1) * config.level - 1e-9)  # Romano et al. 2019, theorem 1
    if rank > n:
        raise ValueError(f"calibration needs at least {min_calibration_origins(config.level)} origins, got {n}")
    q = np.sort(scores, axis=0)[rank - 1]  # (H,)
    return Calibration(config.level, tuple(float(v) for v in q), (start, end), n)


def calibrate(setup: SeriesSetup, scaler: Scaler, train_rows: int,
              fit_model: Callable[[Tensor, Tensor], nn.Module]) -> Calibration:  # fmt: skip
    """Train a second model by ``fit_model(inputs, targets)`` on the training rows before the
    calibration part, and calibrate on that part (see the comment above :class:`Calibration`)."""
    rows = calibration_rows(setup.config, train_rows)
    inputs, targets = training_windows(setup, scaler, rows[0])
    return fit_calibration(fit_model(inputs, targets), setup.frame, scaler, setup.config, rows)
