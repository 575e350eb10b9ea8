"""Streaming anomaly detection on one univariate series: a windowed Gaussian and an LSTM.

Every detector here is a *streaming scorer*: ``score(value) -> (score, flag)`` reads one
observation, costs O(1) time and memory whatever the history, and returns a non-negative anomaly
score and whether it crosses the detector's threshold. ``state_dict()`` / ``load_state_dict()``
save and restore everything the scorer has learned from the stream, so a service can stop and
resume. A NaN (a missing reading) is reported as score ``nan``, flag ``False``; the scorer counts
it (``missing``) and keeps running without letting it into its statistics.

- :class:`WindowedGaussian` is NAB's baseline: the z-score of a value against the mean and
  standard deviation of the previous ``window`` values.
- :class:`RNNScorer` is the prediction-error detector of Malhotra et al., "Long Short Term Memory
  Networks for Anomaly Detection in Time Series" (ESANN 2015): an LSTM trained on a (mostly
  normal) prefix predicts the next value, and the prediction errors are modelled as a Gaussian.
  The threshold is dynamic as in Hundman et al., "Detecting Spacecraft Anomalies Using LSTMs and
  Nonparametric Dynamic Thresholding" (KDD 2018), simplified: errors are smoothed by an
  exponentially weighted moving average (their section 3.2.1) and a point is flagged when its
  smoothed error exceeds ``mean + z std`` of the previous ``window`` smoothed errors (their
  threshold over a trailing window, ``epsilon = mu(e_s) + z sigma(e_s)``); ``z`` is fixed, not
  chosen by their criterion, and their pruning step is left out. The Gaussian of the errors is
  therefore a :class:`WindowedGaussian` run over the error stream.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, Protocol

import numpy as np
import torch
from torch import Tensor, nn

from .._io import save_figure


class StreamingScorer(Protocol):
    """One observation at a time: ``score(value) -> (score, flag)`` in O(1)."""

    def score(self, value: float) -> tuple[float, bool]: ...

    def state_dict(self) -> dict[str, Any]: ...

    def load_state_dict(self, state: dict[str, Any]) -> None: ...


def _check_value(value) -> float:
    if isinstance(value, (bool, np.bool_)) or not isinstance(value, (int, float, np.integer, np.floating)):
        raise TypeError(f"value must be a real number, got {type(value).__name__}")
    return float(value)


def score_all(scorer: StreamingScorer, values: Sequence[float]) -> tuple[np.ndarray, np.ndarray]:
    """Run ``scorer`` over ``values`` one at a time; returns ``(scores (N,), flags (N,))``."""
    values = np.asarray(values, dtype=float)
    scores = np.empty(len(values))
    flags = np.zeros(len(values), dtype=bool)
    for i, value in enumerate(values):
        scores[i], flags[i] = scorer.score(float(value))
    return scores, flags


# --- the windowed Gaussian -------------------------------------------------------------------


class WindowedGaussian:
    """``|x_t - mean| / std`` over the previous ``window`` finite values; flags ``score >= threshold``.

    The mean and variance come from running sums over a ring buffer (O(1) per value); the sums are
    of values minus the first one seen, which keeps them from cancelling on large offsets. Until
    ``min_history`` values have been seen the score is 0. A constant window (std 0) scores 0 for
    the same value and ``inf`` for any other.

    >>> g = WindowedGaussian(window=4, threshold=3.0, min_history=2)
    >>> [g.score(v)[1] for v in [1.0, 2.0, 1.0, 2.0, 9.0]]
    [False, False, False, False, True]
    """

    def __init__(self, window: int = 6400, threshold: float = 4.0, min_history: int = 10) -> None:
        if isinstance(window, bool) or not isinstance(window, int) or window < 2:
            raise ValueError(f"window must be an integer >= 2, got {window!r}")
        if not (isinstance(threshold, (int, float)) and threshold > 0):
            raise ValueError(f"threshold must be a positive number, got {threshold!r}")
        if isinstance(min_history, bool) or not isinstance(min_history, int) or not 2 <= min_history <= window:
            raise ValueError(f"min_history must be an integer in [2, window={window}], got {min_history!r}")
        self.window, self.threshold, self.min_history = window, float(threshold), min_history
        self._buffer = np.zeros(window)  # values minus the shift, a ring
        self._count = 0  # finite values seen (the ring holds min(count, window))
        self._shift = 0.0
        self._sum = 0.0
        self._sum_sq = 0.0
        self.missing = 0

    def score(self, value: float) -> tuple[float, bool]:
        value = _check_value(value)
        if math.isnan(value):
            self.missing += 1
            return math.nan, False
        if self._count == 0:
            self._shift = value
        x = value - self._shift
        n = min(self._count, self.window)
        result = 0.0
        if n >= self.min_history:
            mean = self._sum / n
            std = math.sqrt(max(self._sum_sq / n - mean * mean, 0.0))
            if std > 1e-12 * max(1.0, abs(mean)):
                result = abs(x - mean) / std
            elif abs(x - mean) > 1e-12 * max(1.0, abs(mean)):
                result = math.inf
        slot = self._count % self.window
        if self._count >= self.window:  # the oldest value leaves the window
            old = self._buffer[slot]
            self._sum -= old
            self._sum_sq -= old * old
        self._buffer[slot] = x
        self._sum += x
        self._sum_sq += x * x
        self._count += 1
        return result, result >= self.threshold

    def state_dict(self) -> dict[str, Any]:
        return {"window": self.window, "threshold": self.threshold, "min_history": self.min_history,
                "buffer": self._buffer.copy(), "count": self._count, "shift": self._shift,
                "sum": self._sum, "sum_sq": self._sum_sq, "missing": self.missing}  # fmt: skip

    def load_state_dict(self, state: dict[str, Any]) -> None:
        if state.get("window") != self.window:
            raise ValueError(f"state is for window={state.get('window')}, this scorer has window={self.window}")
        self.threshold, self.min_history = float(state["threshold"]), int(state["min_history"])
        self._buffer = np.array(state["buffer"], dtype=float)
        self._count, self._shift = int(state["count"]), float(state["shift"])
        self._sum, self._sum_sq, self.missing = float(state["sum"]), float(state["sum_sq"]), int(state["missing"])


# --- the LSTM prediction-error detector ----------------------------------------------------


class NextValueLSTM(nn.Module):
    """An rnnkit LSTM and a linear head: ``x_1..x_t`` (standardized) -> a prediction of ``x_{t+1}``."""

    def __init__(self, hidden_size: int = 32) -> None:
        super().__init__()
        from ..layers import LSTM

        self.rnn = LSTM(1, hidden_size, batch_first=True)
        self.head = nn.Linear(hidden_size, 1)

    def forward(self, x: Tensor) -> Tensor:
        """``x`` ``(B, T)`` -> predictions ``(B, T)`` of the next value at every step."""
        h, _ = self.rnn(x.unsqueeze(-1))  # (B, T, H)
        return self.head(h).squeeze(-1)  # (B, T)


@dataclass(frozen=True)
class RNNDetectorConfig:
    hidden_size: int = 32
    epochs: int = 40
    chunk: int = 64  # training sequences: the prefix cut into chunks of this many steps
    lr: float = 1e-2
    smoothing: float = 0.5  # EWMA weight of the newest absolute error (Hundman 3.2.1)
    window: int = 6400  # how many past smoothed errors the Gaussian is fitted on
    threshold: float = 4.0  # z: flag a smoothed error above mean + z std of the window
    seed: int = 0


class RNNDetector:
    """A trained next-value LSTM with the Gaussian of its errors and the threshold.

    ``fit(values)`` trains on ``values`` (the probationary prefix); :meth:`batch_scores` scores a
    whole series in one forward pass; :meth:`scorer` is the equivalent streaming scorer.
    Scores are the :class:`WindowedGaussian` z-scores of the smoothed errors, flags
    ``score >= config.threshold``.
    """

    def __init__(self, config: RNNDetectorConfig = RNNDetectorConfig()) -> None:
        self.config = config
        self.model: NextValueLSTM | None = None

    def fit(self, values: Sequence[float]) -> RNNDetector:
        c = self.config
        values = np.asarray(values, dtype=float)
        if values.ndim != 1 or len(values) < 2 * c.chunk:
            raise ValueError(f"values must be 1-D with at least 2 * chunk = {2 * c.chunk} points, got shape {values.shape}")
        if not np.isfinite(values).all():
            raise ValueError("values to fit on must be finite (fill or drop missing readings first)")
        self.center = float(values.mean())
        self.scale = float(values.std()) or 1.0
        x = torch.tensor((values - self.center) / self.scale, dtype=torch.float32)  # (N,)
        usable = (len(x) - 1) // c.chunk * c.chunk
        inputs = x[:usable].view(-1, c.chunk)  # (M, chunk)
        targets = x[1 : usable + 1].view(-1, c.chunk)  # (M, chunk): the next value at each step
        torch.manual_seed(c.seed)
        self.model = NextValueLSTM(c.hidden_size)
        optimizer = torch.optim.Adam(self.model.parameters(), lr=c.lr)
        for _ in range(c.epochs):
            optimizer.zero_grad()
            loss = nn.functional.mse_loss(self.model(inputs), targets)
            loss.backward()
            nn.utils.clip_grad_norm_(self.model.parameters(), 1.0)
            optimizer.step()
        self.model.eval()
        return self

    def error_model(self) -> WindowedGaussian:
        """A fresh Gaussian over the stream of smoothed errors (the dynamic threshold)."""
        c = self.config
        return WindowedGaussian(window=c.window, threshold=c.threshold, min_history=min(10, c.window))

    def _smoothed_errors(self, values: np.ndarray) -> np.ndarray:
        """EWMA of ``|x_t - prediction_t|`` (standardized units); the first point has no prediction: error 0."""
        with torch.no_grad():
            x = torch.tensor((values - self.center) / self.scale, dtype=torch.float32)
            predicted = self.model(x.unsqueeze(0))[0].double().numpy()  # (N,): of x_{t+1}
        errors = np.zeros(len(values))
        errors[1:] = np.abs((values[1:] - self.center) / self.scale - predicted[:-1])
        smoothed = np.empty(len(values))
        level, a = 0.0, self.config.smoothing
        for t, e in enumerate(errors):
            level = e if t == 1 else (1 - a) * level + a * e
            smoothed[t] = level
        return smoothed

    def batch_scores(self, values: Sequence[float]) -> tuple[np.ndarray, np.ndarray]:
        """Scores and flags of a whole (finite) series at once; equal to streaming it."""
        if self.model is None:
            raise ValueError("call fit() before scoring")
        values = np.asarray(values, dtype=float)
        if not np.isfinite(values).all():
            raise ValueError("batch_scores needs finite values; stream a series with missing readings instead")
        return score_all(self.error_model(), self._smoothed_errors(values))

    def scorer(self) -> RNNScorer:
        if self.model is None:
            raise ValueError("call fit() before scoring")
        return RNNScorer(self)


class RNNScorer:
    """The streaming form of :class:`RNNDetector`: one ``layer.step`` per value, the LSTM state kept.

    A NaN is reported (``nan``, ``False``) and the LSTM is fed its own prediction in its place, so
    the state moves on in time; the error average skips it.
    """

    def __init__(self, detector: RNNDetector) -> None:
        self.detector = detector
        self._state: Any = None  # the LSTM's (h, c)
        self._prediction: float | None = None  # of the next value, standardized
        self._level = 0.0
        self._errors = 0  # errors seen so far
        self._gaussian = detector.error_model()
        self.missing = 0

    @torch.no_grad()
    def score(self, value: float) -> tuple[float, bool]:
        value = _check_value(value)
        d = self.detector
        missing = math.isnan(value)
        if missing:
            self.missing += 1
            if self._prediction is None:
                return math.nan, False
            x = self._prediction
        else:
            x = (value - d.center) / d.scale
            if self._prediction is None:
                error = 0.0
                self._level = 0.0
            else:
                error = abs(x - self._prediction)
                a = d.config.smoothing
                self._level = error if self._errors == 0 else (1 - a) * self._level + a * error
                self._errors += 1
        h, self._state = d.model.rnn.step(torch.tensor([[x]], dtype=torch.float32), self._state)  # (1, H)
        self._prediction = float(d.model.head(h)[0, 0])
        if missing:
            return math.nan, False
        return self._gaussian.score(self._level)

    def state_dict(self) -> dict[str, Any]:
        state = None if self._state is None else tuple(s.clone() for s in self._state)
        return {"lstm": state, "prediction": self._prediction, "level": self._level, "errors": self._errors,
                "missing": self.missing, "gaussian": self._gaussian.state_dict()}  # fmt: skip

    def load_state_dict(self, state: dict[str, Any]) -> None:
        self._state = None if state["lstm"] is None else tuple(s.clone() for s in state["lstm"])
        self._prediction = state["prediction"]
        self._level, self._errors, self.missing = float(state["level"]), int(state["errors"]), int(state["missing"])
        self._gaussian.load_state_dict(state["gaussian"])


# --- whole files, standard input and plots (`rnnkit detect`) ---------------------------------

DETECTORS = ("gaussian", "lstm")


def detect_csv(path, *, detector: str = "gaussian", time_column: str = "timestamp", target: str = "value",
               threshold: float = 4.0, prefix: float = 0.15, plot=None):  # fmt: skip
    """Score every row of a CSV (read and validated by :func:`~rnnkit.tasks.series.read_series_csv`).

    ``"gaussian"``: :class:`WindowedGaussian`; ``"lstm"``: an :class:`RNNDetector` fitted on the
    first ``prefix`` fraction of the rows (NAB's probationary period by default). Returns a
    DataFrame indexed by time with ``value``, ``score`` and ``anomaly``; writes a PNG to ``plot``.
    """
    from .series import read_series_csv

    if detector not in DETECTORS:
        raise ValueError(f"detector must be one of {', '.join(repr(d) for d in DETECTORS)}, got {detector!r}")
    if not 0.0 < prefix < 1.0:
        raise ValueError(f"prefix must lie in (0, 1), got {prefix}")
    frame = read_series_csv(path, time_column, target)
    values = frame.iloc[:, 0].to_numpy()
    if detector == "gaussian":
        scores, flags = score_all(WindowedGaussian(threshold=threshold), values)
    else:
        rows = int(len(values) * prefix)
        fitted = RNNDetector(RNNDetectorConfig(threshold=threshold)).fit(values[:rows])
        scores, flags = fitted.batch_scores(values)
    result = frame.assign(score=scores, anomaly=flags)
    result.columns = ["value", "score", "anomaly"]
    if plot is not None:
        plot_detections(result, plot, title=f"{detector}: {path}")
    return result


def detect_lines(lines, out, *, threshold: float = 4.0) -> int:
    """Stream numbers, one a line (blank or ``nan`` for a missing reading), through a
    :class:`WindowedGaussian`; write ``value,score,anomaly`` per line as it arrives. Returns the
    number of anomalies."""
    scorer, flagged = WindowedGaussian(threshold=threshold), 0
    out.write("value,score,anomaly\n")
    for number, line in enumerate(lines, 1):
        text = line.strip()
        try:
            value = float(text) if text else math.nan
        except ValueError:
            raise ValueError(f"line {number} of the input is not a number: {text!r}") from None
        result, flag = scorer.score(value)
        flagged += flag
        out.write(f"{text},{result:.4f},{int(flag)}\n")
        out.flush()
    return flagged


def plot_detections(result, path, *, title: str = ""):
    """A PNG of the series with its flagged points, and the score below it."""

    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    figure, (top, bottom) = plt.subplots(2, 1, figsize=(9, 5), sharex=True, height_ratios=[2, 1])
    top.plot(result.index, result["value"], color="black", linewidth=0.8)
    flagged = result[result["anomaly"]]
    top.scatter(flagged.index, flagged["value"], color="tab:red", s=10, zorder=3, label="anomaly")
    top.set_title(title)
    top.legend(loc="upper left")
    bottom.plot(result.index, result["score"].replace(math.inf, np.nan), color="tab:blue", linewidth=0.8)
    bottom.set_ylabel("score")
    for axes in (top, bottom):
        axes.grid(alpha=0.3)
    path = save_figure(figure, path, dpi=100, bbox_inches="tight")
    plt.close(figure)
    return path
