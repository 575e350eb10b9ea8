"""Forecasts from a trained network: from each origin, the point forecast and the interval in data units.

``strategy="direct"`` reads every step ahead from one forward pass; ``"autoregressive"`` samples
paths one step at a time. A :class:`~rnnkit.apps.forecast.Calibration` moves the interval's bounds.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np
import torch
from torch import nn

from ...data.series import Scaler, require, windows
from .config import ForecastConfig, point_column
from .model import gaussian, point_and_interval, split_outputs

if TYPE_CHECKING:
    from .calibration import Calibration


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


@torch.no_grad()
def scaled_forecasts(model: nn.Module, scaled: np.ndarray, scaler: Scaler, config: ForecastConfig,
                     origins: list[int]) -> dict[str, np.ndarray]:  # fmt: skip
    """The head's forecasts from each origin, ``(M, H)`` arrays: ``point`` in data units; ``lower``
    and ``upper`` in scaled units, levels added back."""
    model.eval()
    if config.strategy == "autoregressive":
        return sample_paths(model, scaled, scaler, config, origins)
    inputs, _, levels = windows(scaled, origins, config.lookback, config.horizon)
    out = split_outputs(model(inputs), config)  # (M, H, K)
    point, lower, upper = (v + levels[:, None] for v in point_and_interval(out, config))
    return {"point": scaler.inverse(point.numpy()), "lower": lower.numpy(), "upper": upper.numpy()}


def sample_paths(model: nn.Module, scaled: np.ndarray, scaler: Scaler, config: ForecastConfig,
                 origins: list[int]) -> dict[str, np.ndarray]:  # fmt: skip
    """Autoregressive forecasts: S paths per origin, each step drawn from the one-step Gaussian
    and fed back as the next input (DeepAR's ancestral sampling, Salinas et al. 2020, sec. 3.1).
    The point forecast is the paths' mean in data units; the interval their central quantiles
    (taken in scaled units: the inverse transform is monotone, so they are the data's quantiles)."""
    S, L, H = config.sample_paths, config.lookback, config.horizon
    generator = torch.Generator().manual_seed(0)  # the same paths every call
    history, _, _ = windows(scaled, origins, L, 1)  # (M, L, 1), relative to each window's level
    levels = torch.tensor([scaled[o - 1, 0] for o in origins], dtype=torch.float32)  # (M,)
    paths = (history[..., 0] + levels[:, None]).repeat_interleave(S, dim=0)  # (M*S, L) absolute, scaled
    for _ in range(H):
        window = paths[:, -L:]  # (M*S, L)
        level = window[:, -1:]  # (M*S, 1)
        mean, scale = gaussian(split_outputs(model((window - level).unsqueeze(-1)), config)[:, 0])  # (M*S,) each
        draw = level[:, 0] + mean + scale * torch.randn(mean.shape, generator=generator)
        paths = torch.cat([paths, draw[:, None]], dim=1)
    future = paths[:, -H:].reshape(len(origins), S, H).numpy()  # (M, S, H), scaled
    tail = (1 - config.interval) / 2
    return {"point": scaler.inverse(future).mean(1), "lower": np.quantile(future, tail, axis=1),
            "upper": np.quantile(future, 1 - tail, axis=1)}  # fmt: skip


def frame_of(predicted: dict[str, np.ndarray], index, config: ForecastConfig):
    """The first origin's forecast as a DataFrame indexed by ``index``: point, ``lower``, ``upper``."""
    pd = require("pandas")
    return pd.DataFrame({point_column(config): predicted["point"][0], "lower": predicted["lower"][0],
                         "upper": predicted["upper"][0]}, index=index)  # fmt: skip
