"""The baseline for isolated words: multinomial logistic regression on pooled features.

Each recording becomes one fixed-length vector: the mean and standard deviation of its normalised
feature frames over the whole recording, and the means of its three thirds (a coarse trace of
how the spectrum moves). Standardised on the training part; the L2 penalty is chosen on the
validation part among a few; LBFGS on the whole training set. Run by the same code on the same
split as the recurrent model.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import torch
import torch.nn.functional as F
from torch import Tensor

PENALTIES = (1e-4, 1e-3, 1e-2, 1e-1)


def pooled(frames: np.ndarray) -> np.ndarray:
    """``(T, F)`` -> ``(5 F,)``: mean, std, and the means of the three thirds."""
    thirds = np.array_split(frames, 3) if len(frames) >= 3 else [frames] * 3
    return np.concatenate([frames.mean(0), frames.std(0)] + [t.mean(0) for t in thirds]).astype(np.float32)


def _fit(x: Tensor, y: Tensor, classes: int, penalty: float) -> Tensor:
    weights = torch.zeros(x.shape[1] + 1, classes, dtype=torch.float64, requires_grad=True)
    xb = torch.cat([x, torch.ones(len(x), 1, dtype=x.dtype)], 1)  # (N, D + 1): a bias column
    optimizer = torch.optim.LBFGS([weights], lr=1, max_iter=300, line_search_fn="strong_wolfe")

    def closure():
        optimizer.zero_grad()
        loss = F.cross_entropy(xb @ weights, y) + penalty * (weights[:-1] ** 2).sum()
        loss.backward()
        return loss

    optimizer.step(closure)
    return weights.detach()


def _predict(weights: Tensor, x: Tensor) -> Tensor:
    return (torch.cat([x, torch.ones(len(x), 1, dtype=x.dtype)], 1) @ weights).argmax(-1)


def logistic_baseline(frames: Sequence[np.ndarray], targets: Sequence[int], classes: int, train: Sequence[int],
                      val: Sequence[int], test: Sequence[int]) -> dict:  # fmt: skip
    """Fit on ``train``, choose the penalty on ``val``, score ``test``: accuracy and predictions."""
    x = torch.from_numpy(np.stack([pooled(f) for f in frames])).double()  # (N, 5F)
    y = torch.as_tensor(list(targets), dtype=torch.long)
    train, val, test = (torch.as_tensor(list(s), dtype=torch.long) for s in (train, val, test))
    mean, std = x[train].mean(0), x[train].std(0).clamp_min(1e-6)
    x = (x - mean) / std
    best = None
    for penalty in PENALTIES:
        weights = _fit(x[train], y[train], classes, penalty)
        accuracy = (_predict(weights, x[val]) == y[val]).double().mean().item()
        if best is None or accuracy > best[0]:
            best = (accuracy, penalty, weights)
    _, penalty, weights = best
    predictions = _predict(weights, x[test])
    return {"accuracy": (predictions == y[test]).double().mean().item(), "penalty": penalty,
            "predictions": predictions.tolist()}  # fmt: skip
