"""What ``rnnkit detect`` runs: a trained run directory, or a detector fitted afresh, over a CSV
file (:func:`detect_run`, :func:`detect_csv`) or numbers streamed on stdin (:func:`detect_lines`)."""

from __future__ import annotations

import csv
import math
from dataclasses import replace
from typing import TextIO

import numpy as np

from ..._io import save_figure
from .detector import RNNDetector, RNNDetectorConfig
from .reading import read_values
from .scorers import StreamingScorer, WindowedGaussian, score_all
from .thresholds import GaussianThresholdConfig, HoldOff, check_hold_off, check_threshold

HOLD_OFF = RNNDetectorConfig().hold_off  # rows: the trained detector's policy, for the untrained one too

PLOT_FILE = "detections.png"
DETECTORS = ("gaussian", "lstm")


def detect_run(run_dir, data, *, time_column: str | None = None, target: str | None = None,
               threshold: str | None = None, hold_off: int | None = None, plot=None, gaps: str = "keep",
               duplicates: str = "keep"):  # fmt: skip
    """Score every row of the CSV ``data`` with the detector trained in ``run_dir``.

    The columns default to the ones the run trained on; ``threshold`` (a method's name) and
    ``hold_off`` (rows) override the run's; ``gaps`` and ``duplicates`` are
    :func:`~rnnkit.apps.anomaly.reading.read_values`'s policies. Returns a DataFrame indexed by
    time with ``value``, ``score``, ``anomaly_score`` and ``anomaly``; writes a PNG to ``plot``.
    """
    detector = RNNDetector.load(run_dir, threshold=threshold)
    if hold_off is not None:
        detector.config = replace(detector.config, hold_off=hold_off)
    frame, values = read_values(data, time_column or detector.info.get("time_column", "timestamp"),
                                target or detector.info.get("target", "value"), gaps=gaps, duplicates=duplicates)  # fmt: skip
    if len(values) < 2:
        raise ValueError(f"{data} is too short to score: {len(values)} row(s), at least 2 are needed")
    scores, flags = detector.score_series(values)  # filled gaps are missing readings
    result = result_frame(frame, scores, flags, detector.bounded(scores))
    if plot is not None:
        plot_detections(result, plot, title=f"{detector.config.threshold} threshold: {data}")
    return result


def detect_csv(path, *, detector: str = "gaussian", time_column: str = "timestamp", target: str = "value",
               threshold: float = 4.0, method: str = "gaussian", hold_off: int = HOLD_OFF, prefix: float = 0.15,
               plot=None, gaps: str = "keep", duplicates: str = "keep"):  # fmt: skip
    """Score every row of a CSV (read and validated by :func:`~rnnkit.data.series.read_series_csv`).

    ``"gaussian"``: :class:`WindowedGaussian` with z ``threshold``; ``"lstm"``: an
    :class:`RNNDetector` fitted on the first ``prefix`` fraction of the rows (NAB's probationary
    period by default), its errors read by the threshold ``method`` (``threshold`` is the
    Gaussian method's z). Either one's flags go through the trained detector's hold-off policy:
    after a flag, none for ``hold_off`` rows (:class:`HoldOff`; 0: every point above the
    threshold). Returns a DataFrame indexed by time with ``value``, ``score``, ``anomaly_score``
    and ``anomaly``; writes a PNG to ``plot``.
    """
    if detector not in DETECTORS:
        raise ValueError(f"detector must be one of {', '.join(repr(d) for d in DETECTORS)}, got {detector!r}")
    if not 0.0 < prefix < 1.0:
        raise ValueError(f"prefix must lie in (0, 1), got {prefix}")
    check_hold_off(hold_off)
    frame, values = read_values(path, time_column, target, gaps=gaps, duplicates=duplicates)
    if detector == "gaussian":
        scorer = windowed_gaussian(threshold, hold_off)
        scores, flags = score_all(scorer, values)
        bounded = scorer.bounded(scores)
    else:
        config = RNNDetectorConfig(threshold=check_threshold(method), gaussian=GaussianThresholdConfig(z=threshold),
                                   hold_off=hold_off)  # fmt: skip
        rows = int(len(values) * prefix)
        if rows < 2 * config.chunk:
            raise ValueError(f"{path} is too short for --detector lstm: its first {prefix:.0%} ({rows} rows)"
                             f" must hold at least {2 * config.chunk} rows to fit on")  # fmt: skip
        prefix_values = values[:rows]
        fitted = RNNDetector(config).fit(prefix_values[np.isfinite(prefix_values)])  # gaps left out
        scores, flags = fitted.score_series(values)
        bounded = fitted.bounded(scores)
    result = result_frame(frame, scores, flags, bounded)
    if plot is not None:
        plot_detections(result, plot, title=f"{detector}: {path}")
    return result


def windowed_gaussian(threshold: float = 4.0, hold_off: int = HOLD_OFF) -> StreamingScorer:
    """The detector that needs no training: a :class:`WindowedGaussian` with z ``threshold``, its
    flags held off for ``hold_off`` rows after each (:class:`HoldOff`, the trained detector's policy)."""
    check_hold_off(hold_off)
    scorer = WindowedGaussian(threshold=threshold)
    return HoldOff(scorer, hold_off) if hold_off else scorer


def result_frame(frame, scores: np.ndarray, flags: np.ndarray, bounded: np.ndarray):
    """``frame`` (time index, one value column) with the scores, their bounded form and the flags:
    ``value``, ``score``, ``anomaly_score``, ``anomaly``."""
    result = frame.assign(score=scores, anomaly_score=bounded, anomaly=flags)
    result.columns = ["value", "score", "anomaly_score", "anomaly"]
    return result


def detect_lines(lines, out: TextIO, scorer: StreamingScorer | None = None, *, threshold: float = 4.0,
                 warnings: TextIO | None = None) -> int:  # fmt: skip
    """Stream numbers, one a line, through ``scorer`` (default: :func:`windowed_gaussian` with z
    ``threshold``); write ``value,score,anomaly_score,anomaly`` per line. Returns the number of
    anomalies.

    ``lines`` holds lines, or lists of lines that arrived together
    (:func:`~rnnkit.data.textfiles.text_line_batches`): a list is scored at once (by the scorer's
    ``score_many`` where it has one: the same scores, far faster) and its rows written and flushed
    together; a lone line is answered as soon as it comes.

    A blank line, ``nan`` or an infinite value is a missing reading: scored ``nan``, not flagged.
    A line that is not a number is treated the same way, and named on ``warnings`` (stderr on
    the command line): one bad reading does not stop a stream.
    """
    scorer = scorer if scorer is not None else windowed_gaussian(threshold)
    score_many = getattr(scorer, "score_many", None) or (lambda values: score_all(scorer, values))
    writer = csv.writer(out, lineterminator="\n")
    writer.writerow(["value", "score", "anomaly_score", "anomaly"])
    flagged, number = 0, 0
    for batch in lines:
        texts, values = [], []
        for line in [batch] if isinstance(batch, str) else batch:
            number += 1
            text = line.strip()
            if number == 1:
                text = text.lstrip("\ufeff")  # a byte-order mark (Windows tools write one) is not part of a reading
            try:
                value = float(text) if text else math.nan
            except ValueError:
                value = math.nan
                if warnings is not None:
                    warnings.write(f"rnnkit: warning: line {number} is not a number ({text[:40]!r}); scored as missing\n")
                    warnings.flush()
            texts.append(text)
            values.append(value)
        scores, flags = score_many(np.array(values, dtype=float))
        flagged += int(flags.sum())
        bounded = scorer.bounded(scores)
        writer.writerows([text, f"{s:.4f}", f"{b:.4f}", int(f)]
                         for text, s, b, f in zip(texts, scores.tolist(), bounded.tolist(), flags.tolist()))  # fmt: skip
        out.flush()
    return flagged


def detections_figure(result, *, title: str = ""):
    """A matplotlib figure of the series with its flagged points, and the score below it;
    ``result`` as :func:`detect_csv` returns it (``value``, ``score``, ``anomaly``)."""
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    figure = Figure(figsize=(9, 5), dpi=100)
    FigureCanvasAgg(figure)  # the Agg canvas, without pyplot's global state
    top, bottom = figure.subplots(2, 1, sharex=True, height_ratios=[2, 1])
    top.plot(result.index, result["value"], color="black", linewidth=0.8)
    flagged = result[result["anomaly"]]
    top.scatter(flagged.index, flagged["value"], color="tab:red", s=10, zorder=3, label="anomaly")
    top.set_title(title)
    top.legend(loc="upper left")
    bottom.plot(result.index, result["score"].replace(math.inf, np.nan), color="tab:blue", linewidth=0.8)
    bottom.set_ylabel("score")
    for axes in (top, bottom):
        axes.grid(alpha=0.3)
    return figure


def plot_detections(result, path, *, title: str = ""):
    """A PNG of :func:`detections_figure` at ``path``."""
    return save_figure(detections_figure(result, title=title), path, bbox_inches="tight")
