"""Streaming anomaly detection on one univariate series: the LSTM prediction-error detector.

Every detector is a *streaming scorer* (:mod:`rnnkit.apps.anomaly.scorers`):
``score(value) -> (score, flag)`` reads one observation at a cost bounded independently of the
stream's length; ``state_dict()`` / ``load_state_dict()`` save and restore the stream's state; a
missing reading (NaN or infinite) scores ``nan``, is not flagged, and the scorer keeps running.

:class:`RNNDetector` / :class:`RNNScorer` is the detector of Malhotra et al., "Long Short Term
Memory Networks for Anomaly Detection in Time Series" (ESANN 2015): an LSTM trained on (mostly
normal) data predicts the next value; the absolute prediction errors are smoothed by an
exponentially weighted moving average (Hundman et al. 2018, section 3.2.1) and a *threshold
method* (:data:`THRESHOLDS`) reads the stream of smoothed errors:

- ``"gaussian"``: the errors modelled as a Gaussian over a trailing window (a
  :class:`WindowedGaussian` run over the error stream), flagged above ``mean + z std``;
- ``"dynamic"``: :class:`DynamicThreshold`, the nonparametric dynamic threshold of Hundman et
  al., "Detecting Spacecraft Anomalies Using LSTMs and Nonparametric Dynamic Thresholding"
  (KDD 2018), section 3.2: ``z`` chosen by their criterion, and their pruning (3.3).

A detector trained by ``rnnkit train detect`` lives in a run directory; :meth:`RNNDetector.load`
reads it back (``detector.json`` holds the scaling, the error statistics, the threshold
settings and the smoothed errors of the validation tail; nothing is unpickled). Those errors
*warm* the threshold (:attr:`RNNDetector.warm_errors`): a new stream is judged against a
threshold already fitted, from its first point.
"""

from __future__ import annotations

import math
import warnings
from collections import deque
from collections.abc import Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn

from ..._io import read_json, run_file
from ...config import from_dict, to_dict
from .online import OnlineConfig, OnlineLearner
from .scorers import StreamingScorer, check_value, score_all
from .thresholds import THRESHOLDS, DynamicThresholdConfig, GaussianThresholdConfig, LikelihoodThresholdConfig, check_threshold
from .thresholds import HoldOff, check_hold_off, check_threshold_settings

DETECTOR_FILE = "detector.json"


# --- the LSTM prediction-error detector ----------------------------------------------------


@dataclass(frozen=True)
class RNNDetectorConfig:
    """Settings of :meth:`RNNDetector.fit` and of its scoring (``smoothing``, ``threshold`` and the
    chosen method's section: ``gaussian`` or ``dynamic``)."""

    hidden_size: int = 32
    epochs: int = 40
    chunk: int = 64  # training sequences: the series cut into chunks of this many steps
    batch_size: int | None = None  # chunks per step; None: all of them (full batch)
    lr: float = 1e-2
    seed: int = 0
    smoothing: float = 0.5  # EWMA weight of the newest absolute error (Hundman 3.2.1)
    horizon: int = 1  # steps ahead the model predicts; a value's error averages the predictions made of it
    threshold: str = "likelihood"  # a THRESHOLDS name
    hold_off: int = 50  # after a flag, no other flag for this many points (HoldOff); 0: every point
    online: OnlineConfig = field(default_factory=OnlineConfig)  # the model keeps learning (every=0: it does not)
    gaussian: GaussianThresholdConfig = field(default_factory=GaussianThresholdConfig)
    dynamic: DynamicThresholdConfig = field(default_factory=DynamicThresholdConfig)
    likelihood: LikelihoodThresholdConfig = field(default_factory=LikelihoodThresholdConfig)

    def __post_init__(self) -> None:
        check_threshold_settings(self)
        check_hold_off(self.hold_off)
        check_horizon(self.horizon)
        if not 0.0 < self.smoothing <= 1.0:
            raise ValueError(f"smoothing must lie in (0, 1], got {self.smoothing}")


MAX_HORIZON = 1000


def check_horizon(horizon: object) -> None:
    if isinstance(horizon, bool) or not isinstance(horizon, int) or not 1 <= horizon <= MAX_HORIZON:
        raise ValueError(f"horizon must be an integer in [1, {MAX_HORIZON}] (steps ahead predicted), got {horizon!r}")


def next_value_model(model_settings: dict[str, Any], horizon: int = 1) -> nn.Module:
    """The next-value predictor: a registered many-to-many model, one input feature, ``horizon``
    outputs (at step t: the predictions of x_{t+1}, ..., x_{t+horizon})."""
    from ...models import create_model

    return create_model("many_to_many", {**model_settings, "input": {"features": 1}, "outputs": horizon})


def next_value_chunks(x: np.ndarray, chunk: int, horizon: int = 1) -> tuple[torch.Tensor, torch.Tensor]:
    """A standardized series ``(N,)`` cut into ``(inputs (M, chunk, 1), targets (M, chunk))``:
    each step's target is the next value; with ``horizon`` h > 1 the targets are ``(M, chunk, h)``,
    the next h values."""
    x = torch.as_tensor(x, dtype=torch.float32)
    usable = (len(x) - horizon) // chunk * chunk
    inputs = x[:usable].view(-1, chunk, 1)  # (M, chunk, 1)
    if horizon == 1:
        return inputs, x[1 : usable + 1].view(-1, chunk)  # (M, chunk)
    targets = torch.stack([x[1 + k : usable + 1 + k] for k in range(horizon)], dim=-1)  # (usable, h)
    return inputs, targets.view(-1, chunk, horizon)  # (M, chunk, h)


def prediction_errors(x: np.ndarray, predicted: np.ndarray, earlier: np.ndarray) -> np.ndarray:
    """The prediction error of each value of a run ``x (n,)`` (standardized): the mean, over the
    horizons k that have one, of ``|x_t - the prediction of x_t made k + 1 steps before|``
    (Malhotra et al. 2015 predict several steps ahead and model the vector of these errors; here
    their mean goes through the thresholds, so that every method reads one error stream). With a
    horizon of 1 it is ``|x_t - prediction_t|``. ``predicted (n, h)``: row t predicts
    ``x_{t+1..t+h}``, made after reading ``x_t``; ``earlier (m, h)``, m <= h: the rows made before
    ``x[0]``, oldest first. NaN where nothing predicted the value (a stream's first)."""
    n, horizon = predicted.shape
    rows = np.concatenate([earlier.reshape(-1, horizon), predicted])  # (m + n, h)
    made_after = len(rows) - n + np.arange(n) - 1  # the row made just before each value
    total, count = np.zeros(n), np.zeros(n)
    for k in range(horizon):  # k + 1 steps before
        row = made_after - k
        has = row >= 0
        total[has] += np.abs(x[has] - rows[row[has], k])
        count[has] += 1
    with np.errstate(invalid="ignore"):
        return total / count


def error_statistics(errors: np.ndarray) -> dict[str, float]:
    return {"count": int(len(errors)), "mean": float(np.mean(errors)), "std": float(np.std(errors)),
            "max": float(np.max(errors))}  # fmt: skip


class RNNDetector:
    """A next-value LSTM with the scaling of its data and a threshold over its smoothed errors.

    :meth:`fit` trains on ``values`` (a probationary prefix) with rnnkit's :class:`~rnnkit.training.Trainer`;
    :meth:`load` reads a detector trained by ``rnnkit train detect``. :meth:`batch_scores` scores
    a whole series in one forward pass; :meth:`scorer` is the equivalent streaming scorer (the
    same scores and flags). Scores and flags are those of the configured threshold method over
    the smoothed errors (:data:`THRESHOLDS`). The first point of a series has no prediction: it
    scores 0, is not flagged, and stays out of the threshold's history.

    ``warm_errors`` (``None``, or smoothed errors the model made before the stream: :meth:`load`
    sets it to the run's validation tail) warms every fresh threshold (``warm(errors)``), so
    that a series is scored against a fitted threshold from its first point instead of after
    the method's ``min_history`` points.
    """

    def __init__(self, config: RNNDetectorConfig = RNNDetectorConfig()) -> None:
        self.config = config
        self.model: nn.Module | None = None
        self.center, self.scale = 0.0, 1.0
        self.warm_errors: np.ndarray | None = None  # (W,) seen by every fresh threshold before the stream
        self.info: dict[str, Any] = {}  # what a run directory's detector.json says beyond the settings

    def fit(self, values: Sequence[float]) -> RNNDetector:
        from ...training import SupervisedObjective, TensorBatches, Trainer, TrainConfig

        c = self.config
        values = np.asarray(values, dtype=float)
        if values.ndim != 1 or len(values) < 2 * c.chunk:
            raise ValueError(f"values must be 1-D with at least 2 * chunk = {2 * c.chunk} points, got shape {values.shape}")
        if not np.isfinite(values).all():
            raise ValueError("values to fit on must be finite (fill or drop missing readings first)")
        self.center = float(values.mean())
        self.scale = float(values.std()) or 1.0
        inputs, targets = next_value_chunks((values - self.center) / self.scale, c.chunk, c.horizon)  # (M, chunk, 1)
        torch.manual_seed(c.seed)
        self.model = next_value_model({"encoder": {"cell": "lstm", "hidden_size": c.hidden_size}}, c.horizon)
        train = TensorBatches(inputs, targets, batch_size=c.batch_size or len(inputs), seed=c.seed)
        settings = TrainConfig(max_epochs=c.epochs, lr=c.lr, clip_norm=1.0, seed=c.seed, device="cpu")
        Trainer(self.model, SupervisedObjective("mse"), settings, quiet=True).fit(train)
        self.model.eval()
        return self

    @classmethod
    def load(cls, run_dir: str | Path, *, threshold: str | None = None, warm_start: bool = True) -> RNNDetector:
        """The detector of a ``rnnkit train detect`` run; ``threshold`` picks another method by name.

        With ``warm_start`` the threshold starts from the run's validation-tail errors
        (``detector.json``'s ``warm_start``); a run trained before they were saved starts cold,
        with a warning. ``warm_start=False``: cold, as for a detector that has seen nothing.
        """
        from ...training import load

        run_dir = Path(run_dir)
        if not run_dir.is_dir():
            raise FileNotFoundError(f"run directory {run_dir} does not exist")
        if not (run_dir / DETECTOR_FILE).is_file():
            raise ValueError(f"{run_dir} is not a detect run directory: it has no {DETECTOR_FILE}"
                             " (train one with 'rnnkit train detect --data FILE.csv')")  # fmt: skip
        if not (run_dir / "model.safetensors").is_file():
            raise ValueError(f"{run_dir} has no model.safetensors: its training did not finish"
                             f" (continue it with 'rnnkit train --run-dir {run_dir} --resume')")  # fmt: skip
        saved = read_json(run_file(run_dir, DETECTOR_FILE))
        try:
            # a detector saved before the hold-off and online adaptation flagged every point and never learned
            scoring = {"hold_off": 0, "online": {"every": 0}, "horizon": 1, **saved["scoring"]}
            config = from_dict(RNNDetectorConfig, {**scoring, "chunk": saved["chunk"]}, where="scoring")
            center, scale = float(saved["center"]), float(saved["scale"])
        except (KeyError, TypeError) as error:
            raise ValueError(f"{run_dir / DETECTOR_FILE} is not a detector file: missing or bad {error}") from None
        if not (math.isfinite(center) and math.isfinite(scale) and scale > 0):
            raise ValueError(f"{run_dir / DETECTOR_FILE}: the scaling must be finite with a positive scale,"
                             f" got center {center}, scale {scale}")  # fmt: skip
        warm = None
        if warm_start and "warm_start" in saved:
            try:
                warm = np.array(saved["warm_start"]["errors"], dtype=float)  # (W,)
            except (KeyError, TypeError, ValueError) as error:
                raise ValueError(f"{run_dir / DETECTOR_FILE} is not a detector file: bad warm_start ({error})") from None
            if warm.ndim != 1 or not np.isfinite(warm).all():
                raise ValueError(f"{run_dir / DETECTOR_FILE} is not a detector file: warm_start errors must be"
                                 f" a list of finite numbers")  # fmt: skip
        model = load(run_dir)
        if model.config.outputs != config.horizon:
            raise ValueError(f"{run_dir / DETECTOR_FILE}: horizon {config.horizon} but the model predicts"
                             f" {model.config.outputs} step(s) ahead")  # fmt: skip
        config = replace(config, hidden_size=model.config.encoder.hidden_size,
                         threshold=check_threshold(threshold) if threshold is not None else config.threshold)  # fmt: skip
        if warm_start and warm is None:
            history = getattr(config, config.threshold).min_history
            warnings.warn(f"{run_dir / DETECTOR_FILE} has no warm_start errors (trained before they were saved):"
                          f" the {config.threshold} threshold starts cold and flags nothing in the first {history}"
                          f" points; retrain to warm it", stacklevel=2)  # fmt: skip
        detector = cls(config)
        detector.model, detector.center, detector.scale, detector.info = model, center, scale, saved
        detector.warm_errors = warm
        return detector

    def threshold(self) -> StreamingScorer:
        """A fresh scorer of the smoothed-error stream: the configured threshold method, warmed
        with ``warm_errors`` if there are any."""
        method = THRESHOLDS[self.config.threshold]
        scorer = method.build(getattr(self.config, method.name))
        if self.config.hold_off:
            scorer = HoldOff(scorer, self.config.hold_off)
        if self.warm_errors is not None and len(self.warm_errors):
            scorer.warm(self.warm_errors)
        return scorer

    def _require_model(self) -> nn.Module:
        if self.model is None:
            raise ValueError("call fit() or RNNDetector.load() before scoring")
        return self.model

    def smoothed_errors(self, values: Sequence[float]) -> np.ndarray:
        """EWMA of ``|x_t - prediction_t|`` (standardized units; :func:`prediction_errors`) over a
        finite series, one forward pass; the first point has no prediction: error 0."""
        model = self._require_model()
        values = np.asarray(values, dtype=float)
        if not np.isfinite(values).all():
            raise ValueError("batch scoring needs finite values; stream a series with missing readings instead")
        x = (values - self.center) / self.scale  # (N,)
        predicted = self._predictions(model, torch.tensor(x, dtype=torch.float32)).double().numpy()  # (N, h)
        errors = prediction_errors(x, predicted, np.empty((0, predicted.shape[1])))
        errors[:1] = 0.0
        smoothed = np.empty(len(values))
        level, a = 0.0, self.config.smoothing
        for t, e in enumerate(errors):
            level = e if t == 1 else (1 - a) * level + a * e
            smoothed[t] = level
        return smoothed

    @torch.no_grad()
    def _predictions(self, model: nn.Module, x: torch.Tensor) -> torch.Tensor:
        """The predictions ``(N, h)`` over a standardized series ``x (N,)``: one forward pass, or,
        with online adaptation, one per block between two updates (the state carried)."""
        if not self.config.online.every:
            return model(x.view(1, -1, 1))[0][0]
        learner, state, parts, start = OnlineLearner(model, self.config.online), None, [], 0
        while start < len(x):
            block = x[start : start + learner.until_update()]  # (b,)
            predicted, state = learner.model(block.view(1, -1, 1), state)  # (1, b, h)
            parts.append(predicted[0])
            learner.observe(block.numpy())
            start += len(block)
        return torch.cat(parts)

    def batch_scores(self, values: Sequence[float]) -> tuple[np.ndarray, np.ndarray]:
        """Scores and flags of a whole (finite) series at once; equal to streaming it."""
        return self.score_errors(self.smoothed_errors(values))

    def score_series(self, values: Sequence[float]) -> tuple[np.ndarray, np.ndarray]:
        """Scores and flags of a whole series that may miss readings (NaN): :meth:`batch_scores`
        where every value is finite, else the streaming scorer (:meth:`RNNScorer.score_many`), which
        reports each missing reading and carries its state across it (the two give the same scores
        where both apply)."""
        values = np.asarray(values, dtype=float)
        return self.batch_scores(values) if np.isfinite(values).all() else self.scorer().score_many(values)

    def bounded(self, scores: Sequence[float]) -> np.ndarray:
        """This detector's ``scores`` mapped to [0, 1] by its threshold method's monotone map
        (``bounded`` of :data:`THRESHOLDS`' scorers): the ``anomaly_score`` of ``rnnkit detect``."""
        method = THRESHOLDS[self.config.threshold]
        return method.build(getattr(self.config, method.name)).bounded(scores)

    def score_errors(self, smoothed: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Scores and flags of a series' smoothed errors (:meth:`smoothed_errors`) by a fresh
        threshold; the first point has no prediction: score 0, not flagged, not fed to it."""
        scores, flags = np.zeros(len(smoothed)), np.zeros(len(smoothed), dtype=bool)
        if len(smoothed):
            scores[1:], flags[1:] = score_all(self.threshold(), smoothed[1:])
        return scores, flags

    def scorer(self) -> RNNScorer:
        self._require_model()
        return RNNScorer(self)


class RNNScorer:
    """The streaming form of :class:`RNNDetector`: one ``model.step`` per value, the LSTM state kept.

    :meth:`score` reads one value; :meth:`score_many` reads the next several at once (a file, or
    lines that arrived together) with the same result: each run of finite values goes through the
    model's sequence forward from the carried state, split where an online update falls, and the
    errors through the threshold in order. The two can be mixed within one stream.

    With online adaptation (``config.online.every``) the scorer learns on a private copy of the
    model (:class:`~rnnkit.apps.anomaly.online.OnlineLearner`), so two streams never share weights;
    ``state_dict`` then holds the copy's weights and optimizer state too.

    A missing reading is reported (``nan``, ``False``) and the LSTM is fed its own prediction in
    its place, so the state moves on in time; the error average skips it.
    """

    def __init__(self, detector: RNNDetector) -> None:
        self.detector = detector
        self._center, self._scale, self._smoothing = detector.center, detector.scale, detector.config.smoothing
        self._state: Any = None  # the LSTM's (h, c)
        # the prediction rows of the last h steps, oldest first: row t holds x_{t+1..t+h}'s predictions
        self._made: deque[tuple[float, ...]] = deque(maxlen=detector.config.horizon)
        self._level = 0.0
        self._errors = 0  # errors seen so far
        self._threshold = detector.threshold()
        self._learner = OnlineLearner(detector.model, detector.config.online) if detector.config.online.every else None
        self._model = self._learner.model if self._learner else detector.model
        self._input = torch.zeros(1, 1)  # (B=1, F=1): one step's input, refilled for every value
        self._pending: tuple[float, float | None, bool] = (0.0, None, False)  # begin() to finish()
        self.missing = 0

    @torch.no_grad()
    def score(self, value: float) -> tuple[float, bool]:
        value = check_value(value)
        if not math.isfinite(value):
            return self._score_missing()
        x = (value - self._center) / self._scale
        error = None  # the first value: nothing predicted it
        if self._made:  # prediction_errors, one value: the row made k + 1 steps before predicted it at [k]
            error = sum(abs(x - row[k]) for k, row in enumerate(reversed(self._made))) / len(self._made)
        self._step(x)
        return self._judge(error)

    @property
    def batchable(self) -> bool:
        """Whether another caller may step the model for this scorer (:meth:`begin`, :meth:`finish`):
        every scorer of the detector shares its weights (no online adaptation, which learns on a
        private copy)."""
        return self._learner is None

    def begin(self, value: float) -> float | None:
        """The first half of :meth:`score`, for a caller that steps the model itself (``rnnkit
        serve`` steps the models of many streams in one batch, the LSTM state held by it): ``value``
        checked; returns the model's next input (standardized; a missing reading's is the model's
        own prediction), or None where the model takes no step (a missing reading before any
        prediction: the score is ``nan``, not flagged). Then call :meth:`finish` with the model's
        output for that input."""
        value = check_value(value)
        if not math.isfinite(value):
            self.missing += 1
            if not self._made:
                return None
            self._pending = (self._made[-1][0], None, True)
            return self._pending[0]
        x = (value - self._center) / self._scale
        error = None  # the first value: nothing predicted it
        if self._made:  # as in score(): the row made k + 1 steps before predicted it at [k]
            error = sum(abs(x - row[k]) for k, row in enumerate(reversed(self._made))) / len(self._made)
        self._pending = (x, error, False)
        return x

    def finish(self, output: float | Sequence[float]) -> tuple[float, bool]:
        """The second half of :meth:`score`: the model's output for :meth:`begin`'s input (its
        ``horizon`` predictions, standardized; a float where the horizon is 1); the score and flag."""
        x, error, missing = self._pending
        row = (float(output),) if isinstance(output, (int, float)) else tuple(float(v) for v in output)
        self._made.append(row)
        if self._learner is not None:
            self._learner.observe((x,))
        return (math.nan, False) if missing else self._judge(error)

    def prediction(self) -> float | None:
        """The model's prediction of the next value, in data units (None before the first value)."""
        return self._made[-1][0] * self._scale + self._center if self._made else None

    @torch.no_grad()
    def score_many(self, values: Sequence[float]) -> tuple[np.ndarray, np.ndarray]:
        """Scores ``(N,)`` and flags ``(N,)`` of the stream's next ``values``: what :meth:`score`
        gives on each in turn, in far less time per value."""
        values = _real_array(values)
        scores, flags = np.empty(len(values)), np.zeros(len(values), dtype=bool)
        missing = np.flatnonzero(~np.isfinite(values))  # where the runs of finite values end
        i = 0
        while i < len(values):
            end = missing[np.searchsorted(missing, i)] if len(missing) and missing[-1] >= i else len(values)
            if end == i:  # a missing reading: stepped alone, fed its prediction
                scores[i], flags[i] = self._score_missing()
                i += 1
                continue
            if self._learner is not None:  # the weights change after this many values
                end = min(end, i + self._learner.until_update())
            self._score_run(values[i:end], scores[i:end], flags[i:end])
            i = end
        return scores, flags

    def _score_run(self, values: np.ndarray, scores: np.ndarray, flags: np.ndarray) -> None:
        """A run of finite values, none of them past the next online update, into ``scores`` and ``flags``."""
        x = (values - self._center) / self._scale  # (n,) standardized, float64 as in score()
        predicted, self._state = self._model(torch.from_numpy(x.astype(np.float32)).view(1, -1, 1), self._state)
        predicted = predicted[0].double().numpy()  # (n, h): row t predicts x[t + 1 .. t + h]
        first = not self._made
        errors = prediction_errors(x, predicted, np.array(self._made, dtype=float))
        self._made.extend(map(tuple, predicted[-self._made.maxlen :].tolist()))
        if self._learner is not None:
            self._learner.observe(x)
        for k, error in enumerate(errors.tolist()):
            scores[k], flags[k] = self._judge(None if first and k == 0 else error)

    def _score_missing(self) -> tuple[float, bool]:
        self.missing += 1
        if self._made:
            self._step(self._made[-1][0])  # a missing reading is learned as the value predicted for it
        return math.nan, False

    def _step(self, x: float) -> None:
        """The model advanced by one standardized value; it learns it (online adaptation)."""
        self._input[0, 0] = x
        y, self._state = self._model.step(self._input, self._state)  # (1, h)
        self._made.append(tuple(y[0].tolist()))
        if self._learner is not None:
            self._learner.observe((x,))

    def _judge(self, error: float | None) -> tuple[float, bool]:
        """The threshold's verdict on the smoothed error after ``error`` (None: the stream's first
        value, which has no prediction: score 0, not flagged, not fed to the threshold)."""
        if error is None:
            self._level = 0.0
            return 0.0, False
        a = self._smoothing
        self._level = error if self._errors == 0 else (1 - a) * self._level + a * error
        self._errors += 1
        return self._threshold.score(self._level)

    def bounded(self, scores: Sequence[float]) -> np.ndarray:
        """This scorer's scores mapped to [0, 1] by its threshold method's monotone map."""
        return self._threshold.bounded(scores)

    def state_dict(self) -> dict[str, Any]:
        return {"lstm": _clone(self._state), "predictions": [list(row) for row in self._made], "level": self._level,
                "errors": self._errors, "missing": self.missing, "threshold": self._threshold.state_dict(),
                "online": self._learner.state_dict() if self._learner else None}  # fmt: skip

    def load_state_dict(self, state: dict[str, Any]) -> None:
        self._state = _clone(state["lstm"])
        if "predictions" in state:
            made = [tuple(float(p) for p in row) for row in state["predictions"]]
        else:  # a state saved before the horizon: the one next-value prediction, or None
            made = [] if state["prediction"] is None else [(float(state["prediction"]),)]
        if any(len(row) != self._made.maxlen for row in made):
            raise ValueError(f"state holds predictions {len(made[0])} step(s) ahead, this scorer's horizon is"
                             f" {self._made.maxlen}")  # fmt: skip
        self._made.clear()
        self._made.extend(made)
        self._level, self._errors, self.missing = float(state["level"]), int(state["errors"]), int(state["missing"])
        self._threshold.load_state_dict(state["threshold"])
        if self._learner is not None:
            if state.get("online") is None:
                raise ValueError("state is of a scorer without online adaptation; this one adapts")
            self._learner.load_state_dict(state["online"])


def _real_array(values: Sequence[float]) -> np.ndarray:
    """``values`` as a 1-D float array; anything but real numbers (strings, bools) is a TypeError,
    as :func:`~rnnkit.apps.anomaly.scorers.check_value` has it for one value."""
    array = np.asarray(values)
    if array.dtype.kind not in "iuf":
        raise TypeError(f"values must be real numbers, got an array of dtype {array.dtype}")
    if array.ndim != 1:
        raise ValueError(f"values must be 1-D, got shape {array.shape}")
    return array.astype(float, copy=False)


def _clone(state: Any) -> Any:
    """A copy of a recurrent state: ``None``, a tensor (GRU's h) or nested tuples of them (LSTM's (h, c))."""
    if state is None or isinstance(state, torch.Tensor):
        return None if state is None else state.clone()
    return type(state)(_clone(s) for s in state)


def scoring_settings(config: Any) -> dict[str, Any]:
    """The scoring part of a config (``smoothing``, ``horizon``, ``threshold``, ``hold_off``,
    ``online`` and every method's section) as plain data."""
    data = to_dict(config)
    return {name: data[name] for name in ("smoothing", "horizon", "threshold", "hold_off", "online", *THRESHOLDS)}
