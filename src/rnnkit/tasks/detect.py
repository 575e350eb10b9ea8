"""Anomaly detection as an application: ``rnnkit train detect`` and ``rnnkit detect``.

- The task ``detect`` (registered for ``rnnkit train``) trains the next-value LSTM of
  :class:`~rnnkit.tasks.anomaly.RNNDetector` on a (mostly normal) series through the
  :class:`~rnnkit.training.Trainer`: the series' last ``validation`` fraction is held out, the
  scaling is fitted on the rest, and the run directory gets ``detector.json`` (scaling, error
  statistics, threshold settings, and the validation tail's smoothed errors that warm the
  threshold of ``rnnkit detect RUN_DIR``) beside the usual files.
- :func:`detect_run`, :func:`detect_csv` and :func:`detect_lines` are what ``rnnkit detect``
  runs: a trained run directory, or a detector fitted afresh, over a CSV file or numbers on stdin.
"""

from __future__ import annotations

import csv
import json
import math
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TextIO

import numpy as np

from .._io import atomic_write_text, save_figure
from ._registry import Prepared, Task, register_task
from .anomaly import (
    DETECTOR_FILE,
    THRESHOLDS,
    DynamicThresholdConfig,
    GaussianThresholdConfig,
    RNNDetector,
    RNNDetectorConfig,
    StreamingScorer,
    WindowedGaussian,
    build_model,
    check_threshold,
    check_threshold_settings,
    error_statistics,
    next_value_chunks,
    score_all,
    scoring_settings,
)

PLOT_FILE = "detections.png"


# --- the task: `rnnkit train detect` -----------------------------------------------------------


@dataclass(frozen=True)
class DetectConfig:
    """Settings of ``rnnkit train detect`` (the ``task`` section)."""

    data: str | None = None  # a CSV file; required
    time_column: str = "timestamp"
    target: str = "value"
    validation: float = 0.2  # the held-out tail of the series, for the validation loss and error statistics
    chunk: int = 64  # training sequences: the series cut into chunks of this many steps
    batch_size: int = 16
    smoothing: float = 0.5  # EWMA weight of the newest absolute error (Hundman 3.2.1)
    threshold: str = "dynamic"  # a threshold method: rnnkit.tasks.anomaly.THRESHOLDS
    gaussian: GaussianThresholdConfig = field(default_factory=GaussianThresholdConfig)
    dynamic: DynamicThresholdConfig = field(default_factory=DynamicThresholdConfig)

    def __post_init__(self) -> None:
        from .._validation import check_int_at_least

        check_threshold_settings(self)
        check_int_at_least("chunk", self.chunk, 2)
        check_int_at_least("batch_size", self.batch_size, 1)
        if not 0.0 < self.validation < 1.0:
            raise ValueError(f"validation must be a fraction in (0, 1), got {self.validation}")
        if not 0.0 < self.smoothing <= 1.0:
            raise ValueError(f"smoothing must lie in (0, 1], got {self.smoothing}")


def read_values(path, time_column: str, target: str, *, fill: bool = False):
    """A validated series from a CSV file: ``(frame, values (N,))``.

    Gaps in a regular series (see :func:`find_gaps`) are reported as a warning each; with
    ``fill`` they become NaN rows, which the scorers report as missing while their state moves on
    in time, as the issue asks of a gap in a stream. Training leaves them out (``fill=False``).
    """
    import warnings

    from ..data.series import read_series_csv

    frame = read_series_csv(path, time_column, target)
    gaps, cadence = find_gaps(frame.index)
    shown = gaps[:MAX_GAP_WARNINGS]
    for start, count in shown:
        action = "scored as missing" if fill and count <= MAX_GAP_FILL else "not filled" if fill else "left out"
        warnings.warn(f"{path}: {count} reading(s) missing from {start} (one every {_describe(cadence)}); {action}",
                      RuntimeWarning, stacklevel=2)  # fmt: skip
    if len(gaps) > len(shown):
        warnings.warn(f"{path}: {len(gaps) - len(shown)} more gap(s) not listed", RuntimeWarning, stacklevel=2)
    if fill and gaps:
        frame = frame.reindex(frame.index.append(_missing_index(gaps, cadence, frame.index)).sort_values())
    return frame, frame.iloc[:, 0].to_numpy(dtype=float)


MAX_GAP_FILL = 10_000  # a longer gap is reported but not filled (its NaN rows would swamp the output)
MAX_GAP_WARNINGS = 20


def find_gaps(index) -> tuple[list[tuple[Any, int]], Any]:
    """Missing readings of a regular series: ``([(first missing time, count), ...], cadence)``.

    The cadence is the median step between consecutive timestamps; a step of k cadences (k >= 2,
    within 1%) marks k - 1 missing readings. A series whose steps are not at least 90% at the
    cadence is irregular and has no gaps by this rule.
    """
    if len(index) < 3:
        return [], None
    times = index.dtype.kind == "M"
    ticks = np.asarray((index - index[0]).total_seconds() if times else index, dtype=float)  # seconds if times
    steps = np.diff(ticks)
    cadence = float(np.median(steps))
    if cadence <= 0 or np.mean(np.abs(steps - cadence) <= 0.01 * cadence) < 0.9:
        return [], None
    multiples = np.round(steps / cadence)
    gap = (multiples >= 2) & (np.abs(steps - multiples * cadence) <= 0.01 * cadence * multiples)
    unit = _cadence(index, cadence)
    return [(index[i] + unit, int(multiples[i]) - 1) for i in np.flatnonzero(gap)], unit


def _cadence(index, cadence: float):
    if index.dtype.kind == "M":
        import pandas as pd

        return pd.Timedelta(seconds=cadence)
    return int(round(cadence)) if index.dtype.kind in "iu" else cadence


def _describe(cadence) -> str:
    """``5min``, ``1h``, ``1D`` for a time step; the number itself for a numeric index."""
    try:
        from pandas.tseries.frequencies import to_offset

        return to_offset(cadence).freqstr
    except (TypeError, ValueError):
        return str(cadence)


def _missing_index(gaps, cadence, index):
    import pandas as pd

    times = [start + j * cadence for start, count in gaps if count <= MAX_GAP_FILL for j in range(count)]
    return pd.Index(times, name=index.name)


def split_rows(rows: int, config: DetectConfig, source: str) -> int:
    """Rows used for training (the rest is the validation tail); too short a series is an error."""
    validation = int(round(rows * config.validation))
    train = rows - validation
    need = config.chunk + 1  # one chunk of inputs and their next values
    if train < need or validation < need:
        minimum = math.ceil(max(need / config.validation, need / (1 - config.validation)))
        raise ValueError(
            f"{source} is too short: {rows} rows; chunk={config.chunk} with validation={config.validation}"
            f" needs at least {minimum} rows (lower task.chunk for a short series)"
        )
    return train


def _prepare(task: DetectConfig, model_settings: dict[str, Any], seed: int) -> Prepared:
    from ..training import SupervisedObjective, TensorBatches

    if task.data is None:
        raise ValueError("rnnkit train detect needs --data FILE.csv (a CSV with --time-column and --target columns)")
    frame, values = read_values(task.data, task.time_column, task.target)
    source = str(task.data)
    train_rows = split_rows(len(values), task, source)
    center = float(values[:train_rows].mean())  # fitted on the training rows only
    scale = float(values[:train_rows].std()) or 1.0
    x = (values - center) / scale  # (N,)
    inputs, targets = next_value_chunks(x[:train_rows], task.chunk)  # (M, chunk, 1), (M, chunk)
    val_inputs, val_targets = next_value_chunks(x[train_rows:], task.chunk)
    model = build_model(model_settings)
    saved = {"source": source, "time_column": task.time_column, "target": task.target, "rows": len(values),
             "train_rows": train_rows, "center": center, "scale": scale, "chunk": task.chunk,
             "scoring": scoring_settings(task)}  # fmt: skip

    def report(result) -> str:
        run_dir = Path(result.run_dir)
        # the weights the run directory keeps; cold: the series below is the one its warm start comes from
        detector = RNNDetector.load(run_dir, warm_start=False)
        smoothed = detector.smoothed_errors(values)
        statistics = {"train": error_statistics(smoothed[1:train_rows]),
                      "validation": error_statistics(smoothed[train_rows:])}  # fmt: skip
        # The threshold of a new stream is warmed with the validation tail's errors (the training
        # rows' are lower: the model fitted them), at most as many as the largest threshold window
        # holds, scored as `rnnkit detect` scores a new file: the LSTM from a zero state, so they
        # hold the start-of-stream transient (a few points of larger errors) a new stream has.
        keep = max(getattr(getattr(task, name), "window", 1) for name in THRESHOLDS)
        warm = detector.smoothed_errors(values[train_rows:][-(keep + 1) :])[1:]  # the first has no prediction
        document = {**saved, "errors": statistics,
                    "warm_start": {"from": "validation tail, from a zero state", "errors": warm.tolist()}}  # fmt: skip
        atomic_write_text(run_dir / DETECTOR_FILE, _json_inline_last_list(document))
        scores, flags = detector.score_errors(smoothed)
        result_frame = _result_frame(frame, scores, flags)
        plot_detections(result_frame, run_dir / "plots" / PLOT_FILE, title=f"{task.threshold} threshold: {source}")
        v = statistics["validation"]
        return "\n".join([
            f"detect: {source}, {len(values)} rows, target {task.target!r}; trained on the first {train_rows},"
            f" validated on the last {len(values) - train_rows}; scaling (centre {center:.4g}, scale {scale:.4g})"
            f" fitted on the training rows",
            f"smoothed prediction errors (standardized units) on the validation tail: mean {v['mean']:.4f},"
            f" std {v['std']:.4f}, max {v['max']:.4f}",
            f"{task.threshold} threshold over the whole series: {int(flags.sum())} point(s) flagged;"
            f" plot: {run_dir / 'plots' / PLOT_FILE}",
            f"a new series is scored against a warm threshold: it has seen {len(warm)} smoothed errors of the validation tail",
            f"score a file: rnnkit detect {run_dir} --data FILE.csv; a stream: producer | rnnkit detect {run_dir}",
        ])  # fmt: skip

    train = TensorBatches(inputs, targets, batch_size=task.batch_size, seed=seed)
    val = TensorBatches(val_inputs, val_targets, batch_size=max(len(val_inputs), 1), shuffle=False)
    artifacts = {DETECTOR_FILE: json.dumps(saved, indent=1)}
    return Prepared(model, SupervisedObjective("mse"), train, val, "chunks", report, artifacts)


register_task(Task(
    name="detect",
    help="anomaly detection: an LSTM next-value predictor and a threshold on its errors (needs rnnkit[timeseries])",
    example="rnnkit train detect --data cpu.csv --time-column timestamp --target value",
    config_class=DetectConfig,
    prepare=_prepare,
    model_name="many_to_many",
    default_model={"encoder": {"cell": "lstm", "hidden_size": 32}},
    default_train={"lr": 3e-3, "max_epochs": 30, "clip_norm": 1.0, "log_every": 20},
    arguments={"--data": "task.data", "--time-column": "task.time_column", "--target": "task.target",
               "--threshold-method": "task.threshold"},
))  # fmt: skip


# --- `rnnkit detect`: a run directory, or a detector fitted afresh ---------------------------------

DETECTORS = ("gaussian", "lstm")


def detect_run(run_dir, data, *, time_column: str | None = None, target: str | None = None,
               threshold: str | None = None, plot=None):  # fmt: skip
    """Score every row of the CSV ``data`` with the detector trained in ``run_dir``.

    The columns default to the ones the run trained on. Returns a DataFrame indexed by time with
    ``value``, ``score`` and ``anomaly``; writes a PNG to ``plot``.
    """
    detector = RNNDetector.load(run_dir, threshold=threshold)
    frame, values = read_values(data, time_column or detector.info.get("time_column", "timestamp"),
                                target or detector.info.get("target", "value"), fill=True)  # fmt: skip
    if len(values) < 2:
        raise ValueError(f"{data} is too short to score: {len(values)} row(s), at least 2 are needed")
    scores, flags = detector.score_series(values)  # filled gaps are missing readings
    result = _result_frame(frame, scores, flags)
    if plot is not None:
        plot_detections(result, plot, title=f"{detector.config.threshold} threshold: {data}")
    return result


def detect_csv(path, *, detector: str = "gaussian", time_column: str = "timestamp", target: str = "value",
               threshold: float = 4.0, method: str = "gaussian", prefix: float = 0.15, plot=None):  # fmt: skip
    """Score every row of a CSV (read and validated by :func:`~rnnkit.tasks.series.read_series_csv`).

    ``"gaussian"``: :class:`WindowedGaussian` with z ``threshold``; ``"lstm"``: an
    :class:`RNNDetector` fitted on the first ``prefix`` fraction of the rows (NAB's probationary
    period by default), its errors read by the threshold ``method`` (``threshold`` is the
    Gaussian method's z). Returns a DataFrame indexed by time with ``value``, ``score`` and
    ``anomaly``; writes a PNG to ``plot``.
    """
    if detector not in DETECTORS:
        raise ValueError(f"detector must be one of {', '.join(repr(d) for d in DETECTORS)}, got {detector!r}")
    if not 0.0 < prefix < 1.0:
        raise ValueError(f"prefix must lie in (0, 1), got {prefix}")
    frame, values = read_values(path, time_column, target, fill=True)
    if detector == "gaussian":
        scores, flags = score_all(WindowedGaussian(threshold=threshold), values)
    else:
        config = RNNDetectorConfig(threshold=check_threshold(method), gaussian=GaussianThresholdConfig(z=threshold))
        rows = int(len(values) * prefix)
        if rows < 2 * config.chunk:
            raise ValueError(f"{path} is too short for --detector lstm: its first {prefix:.0%} ({rows} rows)"
                             f" must hold at least {2 * config.chunk} rows to fit on")  # fmt: skip
        prefix_values = values[:rows]
        fitted = RNNDetector(config).fit(prefix_values[np.isfinite(prefix_values)])  # gaps left out
        scores, flags = fitted.score_series(values)
    result = _result_frame(frame, scores, flags)
    if plot is not None:
        plot_detections(result, plot, title=f"{detector}: {path}")
    return result


def _json_inline_last_list(document: dict[str, Any]) -> str:
    """``document`` as indented JSON, with ``document["warm_start"]["errors"]`` on one line
    (thousands of numbers, one a line, would bury the rest)."""
    errors = document["warm_start"]["errors"]
    marker = "\u0000errors"  # a JSON string no real value of the document can be
    text = json.dumps({**document, "warm_start": {**document["warm_start"], "errors": marker}}, indent=1)
    return text.replace(json.dumps(marker), json.dumps(errors), 1)


def _result_frame(frame, scores: np.ndarray, flags: np.ndarray):
    result = frame.assign(score=scores, anomaly=flags)
    result.columns = ["value", "score", "anomaly"]
    return result


def detect_lines(lines, out: TextIO, scorer: StreamingScorer | None = None, *, threshold: float = 4.0,
                 warnings: TextIO | None = None) -> int:  # fmt: skip
    """Stream numbers, one a line, through ``scorer`` (default: a :class:`WindowedGaussian` with z
    ``threshold``); write ``value,score,anomaly`` per line as it arrives (flushed). Returns the
    number of anomalies.

    A blank line, ``nan`` or an infinite value is a missing reading: scored ``nan``, not flagged.
    A line that is not a number is treated the same way, and named on ``warnings`` (stderr on
    the command line): one bad reading does not stop a stream.
    """
    scorer = scorer if scorer is not None else WindowedGaussian(threshold=threshold)
    writer = csv.writer(out, lineterminator="\n")
    writer.writerow(["value", "score", "anomaly"])
    flagged = 0
    for number, line in enumerate(lines, 1):
        text = line.strip()
        try:
            value = float(text) if text else math.nan
        except ValueError:
            value = math.nan
            if warnings is not None:
                warnings.write(f"rnnkit: warning: line {number} is not a number ({text[:40]!r}); scored as missing\n")
                warnings.flush()
        result, flag = scorer.score(value)
        flagged += flag
        writer.writerow([text, f"{result:.4f}", int(flag)])
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

