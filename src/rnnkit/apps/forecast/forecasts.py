"""The network's own forecasts from each origin, before any calibration.

``strategy="direct"`` reads every step ahead from one forward pass; ``"autoregressive"`` samples
paths one step at a time. :mod:`.calibration` fits its corrections to these, and :mod:`.predict`
applies them.
"""

from __future__ import annotations

import numpy as np
import torch
from torch import nn

from ...data.series import Scaler, windows
from .config import ForecastConfig
from .model import gaussian, point_and_interval, split_outputs


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
