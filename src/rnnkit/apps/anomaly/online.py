"""Online adaptation: the next-value model keeps learning as the stream goes on.

A detector fitted on a series' first weeks meets a level that drifts, a new weekly pattern, a
sensor recalibrated: every later point is then predicted badly and, to a threshold, unusual.
HTM learns continuously, which is much of its lead on NAB. Here the LSTM does too, in the manner
NAB allows (no look-ahead): every ``every`` points it takes ``steps`` Adam steps of next-value
MSE on the last ``window`` points it has seen (one sequence), and the points after that are
predicted by the updated weights. The cost per point is bounded, ``steps * window / every`` LSTM
steps forward and backward, independent of the stream's length (about 10 ms per update for a
32-unit LSTM on one core); the memory is ``window`` values, the weights and Adam's moments.

:class:`OnlineLearner` is shared by the streaming scorer (one value at a time) and the batch path
(blocks of ``every`` values through one forward pass): both update at the same points on the same
values, so a stream and a batch give the same scores.
"""

from __future__ import annotations

import copy
import math
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch
from torch import nn


@dataclass(frozen=True)
class OnlineConfig:
    """``every`` points (0: never; the model stays as fitted), ``steps`` Adam steps at learning
    rate ``lr`` on the last ``window`` points, gradient norm clipped at 1."""

    every: int = 50
    window: int = 500
    steps: int = 3
    lr: float = 1e-2

    def __post_init__(self) -> None:
        for name, low, high in (("every", 0, 10**7), ("window", 2, 10**6), ("steps", 1, 1000)):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, int) or not low <= value <= high:
                raise ValueError(f"online adaptation settings: {name} must be an integer in [{low}, {high}], got {value!r}")
        if isinstance(self.lr, bool) or not isinstance(self.lr, (int, float)) or not (0 < self.lr <= 1 and math.isfinite(self.lr)):
            raise ValueError(f"online adaptation settings: lr must be a number in (0, 1], got {self.lr!r}")


class OnlineLearner:
    """A private copy of ``model`` that learns from the values it is shown (standardized units).

    :meth:`observe` takes the next values in order and returns whether the weights changed after
    the last of them; call it with at most ``every - seen % every`` values at a time (the batch
    path's blocks) so that updates fall at the same points as in a stream.
    """

    def __init__(self, model: nn.Module, config: OnlineConfig) -> None:
        self.config = config
        self.model = copy.deepcopy(model).eval()
        self._optimizer = torch.optim.Adam(self.model.parameters(), lr=config.lr)
        self._recent = np.zeros(config.window, dtype=np.float32)  # the last `window` values, a ring
        self._seen = 0

    def until_update(self) -> int:
        """Values to observe before the next update."""
        return self.config.every - self._seen % self.config.every

    def observe(self, values) -> bool:
        values = np.asarray(values, dtype=np.float32).ravel()
        if len(values) > self.until_update():
            raise ValueError(f"observe at most {self.until_update()} values before the next update, got {len(values)}")
        self._remember(values)
        if self._seen % self.config.every or self._seen < 2:
            return False
        self._update()
        return True

    def _remember(self, values: np.ndarray) -> None:
        """``values`` into the ring of the last ``window``, in order: two slice copies, not a loop."""
        window, start = self.config.window, self._seen
        self._seen += len(values)
        if len(values) > window:  # only the last `window` of them stay
            values, start = values[-window:], self._seen - window
        slot = start % window
        head = min(window - slot, len(values))
        self._recent[slot : slot + head] = values[:head]
        self._recent[: len(values) - head] = values[head:]

    def _update(self) -> None:
        n = min(self._seen, self.config.window)
        start = self._seen % self.config.window if self._seen >= self.config.window else 0
        x = torch.from_numpy(np.roll(self._recent, -start)[:n].copy())  # (n,) oldest first
        self.model.train()
        with torch.enable_grad():
            for _ in range(self.config.steps):
                self._optimizer.zero_grad()
                predicted, _ = self.model(x[:-1].view(1, -1, 1))  # (1, n - 1, h): row t of x[t + 1 .. t + h]
                loss = _next_values_loss(predicted[0], x)
                loss.backward()
                nn.utils.clip_grad_norm_(self.model.parameters(), 1.0)
                self._optimizer.step()
        self.model.eval()

    def state_dict(self) -> dict[str, Any]:
        return {"model": copy.deepcopy(self.model.state_dict()), "optimizer": copy.deepcopy(self._optimizer.state_dict()),
                "recent": self._recent.copy(), "seen": self._seen}  # fmt: skip

    def load_state_dict(self, state: dict[str, Any]) -> None:
        self.model.load_state_dict(state["model"])
        self._optimizer.load_state_dict(state["optimizer"])
        recent = np.asarray(state["recent"], dtype=np.float32)
        if recent.shape != (self.config.window,):
            raise ValueError(f"state holds {recent.size} recent values, this learner's window is {self.config.window}")
        self._recent, self._seen = recent.copy(), int(state["seen"])


def _next_values_loss(predicted: torch.Tensor, x: torch.Tensor) -> torch.Tensor:
    """MSE of ``predicted (n - 1, h)`` (row t: of ``x[t + 1 .. t + h]``) against ``x (n,)``, over the
    values the window holds (the last rows' far horizons lie past it)."""
    if predicted.shape[1] == 1:
        return torch.mean((predicted[:, 0] - x[1:]) ** 2)
    horizon = predicted.shape[1]
    padded = torch.cat([x, x.new_full((horizon - 1,), math.nan)])  # (n + h - 1,)
    targets = padded.unfold(0, horizon, 1)[1 : len(x)]  # (n - 1, h): row t is x[t + 1 .. t + h]
    known = ~torch.isnan(targets)
    return torch.mean((predicted[known] - targets[known]) ** 2)
