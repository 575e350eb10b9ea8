"""Forecasts from a trained network: from each origin, the point forecast and the interval in data units.

The network's own forecasts come from :mod:`.forecasts`; a :class:`~rnnkit.apps.forecast.Calibration`
moves the interval's bounds.
"""

from __future__ import annotations

import numpy as np
import torch
from torch import nn

from ...data.series import Scaler, require
from .calibration import Calibration
from .config import ForecastConfig, point_column
from .forecasts import scaled_forecasts


@torch.no_grad()
def predict_at(model: nn.Module, frame, scaler: Scaler, config: ForecastConfig, origins,
               calibration: Calibration | None = None) -> dict[str, np.ndarray]:  # fmt: skip
    """Forecasts from each origin: ``point``, ``lower``, ``upper`` arrays ``(len(origins), H)`` in data units.

    With a ``calibration`` the interval is the conformally calibrated one, and ``raw_lower`` and
    ``raw_upper`` hold the head's own; the point forecast is the same either way.
    """
    raw = scaled_forecasts(model, scaler.transform(frame.to_numpy(dtype=float)), scaler, config, list(origins))
    lower, upper = (raw["lower"], raw["upper"]) if calibration is None else calibration.apply(raw)
    result = {"point": raw["point"], "lower": scaler.inverse(lower), "upper": scaler.inverse(upper)}
    if calibration is not None:
        # a CQR correction may narrow the interval; it still holds the point forecast (conformal
        # scores only move the bounds, Romano et al. 2019, and widening never lowers coverage)
        result["lower"] = np.minimum(result["lower"], result["point"])
        result["upper"] = np.maximum(result["upper"], result["point"])
        result["raw_lower"], result["raw_upper"] = scaler.inverse(raw["lower"]), scaler.inverse(raw["upper"])
    return result


def frame_of(predicted: dict[str, np.ndarray], index, config: ForecastConfig):
    """The first origin's forecast as a DataFrame indexed by ``index``: point, ``lower``, ``upper``."""
    pd = require("pandas")
    return pd.DataFrame({point_column(config): predicted["point"][0], "lower": predicted["lower"][0],
                         "upper": predicted["upper"][0]}, index=index)  # fmt: skip
