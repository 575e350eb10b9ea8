"""Anomaly detection as an application: ``rnnkit train detect`` and ``rnnkit detect``.

The app trains the next-value LSTM of :class:`~rnnkit.apps.anomaly.RNNDetector` on a (mostly
normal) series through the :class:`~rnnkit.training.Trainer`: the series' last ``validation``
fraction is held out, the scaling is fitted on the rest, and the run directory gets
``detector.json`` (scaling, error statistics, threshold settings, and the validation tail's
smoothed errors that warm the threshold of ``rnnkit detect RUN_DIR``; the last two are added by
``finalize``, after training) beside the usual files.
"""

from __future__ import annotations

import argparse
import json
import math
import sys
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

import numpy as np

from ..._io import atomic_write_text, read_json, run_file
from ...data.series import DUPLICATES
from ..base import App, Prepared, Run
from ..commands import Command, check_output_path, closed_stdout_is_fine
from .detect import DETECTORS, HOLD_OFF, PLOT_FILE, detections_figure, result_frame
from .detector import DETECTOR_FILE, RNNDetector, error_statistics, next_value_chunks, next_value_model
from .detector import check_horizon, scoring_settings
from .online import OnlineConfig
from .reading import GAPS, read_values
from .thresholds import THRESHOLDS, DynamicThresholdConfig, GaussianThresholdConfig, LikelihoodThresholdConfig
from .thresholds import check_hold_off, check_threshold_settings


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
    horizon: int = 1  # steps ahead the model predicts; a value's error averages the predictions made of it
    threshold: str = "likelihood"  # a threshold method: rnnkit.apps.anomaly.THRESHOLDS
    hold_off: int = 50  # after a flag, no other flag for this many points; 0: flag every point above
    online: OnlineConfig = field(default_factory=OnlineConfig)  # the model keeps learning while it scores
    gaussian: GaussianThresholdConfig = field(default_factory=GaussianThresholdConfig)
    dynamic: DynamicThresholdConfig = field(default_factory=DynamicThresholdConfig)
    likelihood: LikelihoodThresholdConfig = field(default_factory=LikelihoodThresholdConfig)

    def __post_init__(self) -> None:
        from ..._validation import check_int_at_least

        check_threshold_settings(self)
        check_hold_off(self.hold_off)
        check_horizon(self.horizon)
        check_int_at_least("chunk", self.chunk, 2)
        check_int_at_least("batch_size", self.batch_size, 1)
        if not 0.0 < self.validation < 1.0:
            raise ValueError(f"validation must be a fraction in (0, 1), got {self.validation}")
        if not 0.0 < self.smoothing <= 1.0:
            raise ValueError(f"smoothing must lie in (0, 1], got {self.smoothing}")


def split_rows(rows: int, config: DetectConfig, source: str) -> int:
    """Rows used for training (the rest is the validation tail); too short a series is an error."""
    validation = int(round(rows * config.validation))
    train = rows - validation
    need = config.chunk + config.horizon  # one chunk of inputs and the values they predict
    if train < need or validation < need:
        minimum = math.ceil(max(need / config.validation, need / (1 - config.validation)))
        raise ValueError(
            f"{source} is too short: {rows} rows; chunk={config.chunk} with validation={config.validation}"
            f" needs at least {minimum} rows (lower task.chunk for a short series)"
        )
    return train


def _json_inline_last_list(document: dict[str, Any]) -> str:
    """``document`` as indented JSON, with ``document["warm_start"]["errors"]`` on one line
    (thousands of numbers, one a line, would bury the rest)."""
    errors = document["warm_start"]["errors"]
    marker = "\u0000errors"  # a JSON string no real value of the document can be
    text = json.dumps({**document, "warm_start": {**document["warm_start"], "errors": marker}}, indent=1)
    return text.replace(json.dumps(marker), json.dumps(errors), 1)


class DetectApp(App):
    name = "detect"
    help = "anomaly detection: an LSTM next-value predictor and a threshold on its errors (needs rnnkit[timeseries])"
    example = "rnnkit train detect --data cpu.csv --time-column timestamp --target value"
    config_class = DetectConfig
    model_name = "many_to_many"
    default_model = {"encoder": {"cell": "lstm", "hidden_size": 32}}
    default_train = {"lr": 3e-3, "max_epochs": 30, "clip_norm": 1.0, "log_every": 20}
    arguments = {"--data": "task.data", "--time-column": "task.time_column", "--target": "task.target",
                 "--threshold-method": "task.threshold"}  # fmt: skip

    def prepare(self, config: DetectConfig, model_settings: dict[str, Any], seed: int) -> Prepared:
        from ...training import SupervisedObjective, TensorBatches

        if config.data is None:
            raise ValueError("rnnkit train detect needs --data FILE.csv"
                             " (a CSV with --time-column and --target columns)")
        frame, values = read_values(config.data, config.time_column, config.target)
        source = str(config.data)
        train_rows = split_rows(len(values), config, source)
        center = float(values[:train_rows].mean())  # fitted on the training rows only
        scale = float(values[:train_rows].std()) or 1.0
        x = (values - center) / scale  # (N,)
        inputs, targets = next_value_chunks(x[:train_rows], config.chunk, config.horizon)  # (M, chunk, 1), (M, chunk)
        val_inputs, val_targets = next_value_chunks(x[train_rows:], config.chunk, config.horizon)
        model = next_value_model(model_settings, config.horizon)
        saved = {"source": source, "time_column": config.time_column, "target": config.target, "rows": len(values),
                 "train_rows": train_rows, "center": center, "scale": scale, "chunk": config.chunk,
                 "scoring": scoring_settings(config)}  # fmt: skip
        train = TensorBatches(inputs, targets, batch_size=config.batch_size, seed=seed)
        val = TensorBatches(val_inputs, val_targets, batch_size=max(len(val_inputs), 1), shuffle=False)
        context = {"frame": frame, "values": values, "train_rows": train_rows}
        artifacts = {DETECTOR_FILE: json.dumps(saved, indent=1)}
        return Prepared(model, SupervisedObjective("mse"), train, val, "chunks", artifacts, context)

    def _smoothed(self, run: Run):
        """The trained detector, cold, and its smoothed errors over the whole series (computed once)."""
        if "smoothed" not in run.cache:
            # the weights the run directory keeps; cold: the series is the one its warm start comes from
            detector = RNNDetector.load(run.run_dir, warm_start=False)
            run.cache["detector"], run.cache["smoothed"] = detector, detector.smoothed_errors(run.context["values"])
        return run.cache["detector"], run.cache["smoothed"]

    def finalize(self, run: Run) -> None:
        """``detector.json`` gains the error statistics and the warm-start errors of the trained
        model (again after more training)."""
        saved = read_json(run_file(run.run_dir, DETECTOR_FILE))
        if "warm_start" in saved and not run.trained:
            return
        values, train_rows = run.context["values"], run.context["train_rows"]
        detector, smoothed = self._smoothed(run)
        statistics = {"train": error_statistics(smoothed[1:train_rows]),
                      "validation": error_statistics(smoothed[train_rows:])}  # fmt: skip
        # The threshold of a new stream is warmed with the validation tail's errors (the training
        # rows' are lower: the model fitted them), at most as many as the largest threshold window
        # holds, scored as `rnnkit detect` scores a new file: the LSTM from a zero state, so they
        # hold the start-of-stream transient (a few points of larger errors) a new stream has.
        keep = max(getattr(getattr(run.config, name), "window", 1) for name in THRESHOLDS)
        warm = detector.smoothed_errors(values[train_rows:][-(keep + 1) :])[1:]  # the first has no prediction
        document = {**saved, "errors": statistics,
                    "warm_start": {"from": "validation tail, from a zero state", "errors": warm.tolist()}}  # fmt: skip
        atomic_write_text(run.run_dir / DETECTOR_FILE, _json_inline_last_list(document))

    def evaluate(self, run: Run) -> dict[str, Any]:
        saved = read_json(run_file(run.run_dir, DETECTOR_FILE))
        detector, smoothed = self._smoothed(run)
        scores, flags = detector.score_errors(smoothed)
        run.cache["result"] = result_frame(run.context["frame"], scores, flags, detector.bounded(scores))
        keys = ("source", "rows", "target", "train_rows", "center", "scale", "errors")
        return {**{k: saved[k] for k in keys}, "threshold": run.config.threshold, "flagged": int(flags.sum()),
                "warm_start_errors": len(saved["warm_start"]["errors"])}  # fmt: skip

    def figures(self, run: Run, results: dict[str, Any]) -> dict[str, Any]:
        if "result" not in run.cache:
            self.evaluate(run)
        title = f"{run.config.threshold} threshold: {results['source']}"
        return {PLOT_FILE: detections_figure(run.cache["result"], title=title)}

    def report(self, run: Run, results: dict[str, Any]) -> str:
        r, run_dir = results, run.run_dir
        v = r["errors"]["validation"]
        return "\n".join([
            f"detect: {r['source']}, {r['rows']} rows, target {r['target']!r}; trained on the first {r['train_rows']},"
            f" validated on the last {r['rows'] - r['train_rows']}; scaling (centre {r['center']:.4g},"
            f" scale {r['scale']:.4g}) fitted on the training rows",
            f"smoothed prediction errors (standardized units) on the validation tail: mean {v['mean']:.4f},"
            f" std {v['std']:.4f}, max {v['max']:.4f}",
            f"{r['threshold']} threshold over the whole series: {r['flagged']} point(s) flagged;"
            f" plot: {run_dir / 'plots' / PLOT_FILE}",
            f"a new series is scored against a warm threshold: it has seen {r['warm_start_errors']} smoothed errors"
            " of the validation tail",
            f"score a file: rnnkit detect {run_dir} --data FILE.csv; a stream: producer | rnnkit detect {run_dir}",
        ])  # fmt: skip

    def load(self, run_dir: str | Path) -> RNNDetector:
        return RNNDetector.load(run_dir)

    def evaluate_file(self, run: Run, path) -> dict[str, Any]:
        """The trained detector on every row of a series (the run's columns): how many points it
        flags, and the smoothed prediction errors' statistics (standardized units). NAB-style
        scoring against labelled windows is benchmarks/nab.py's."""
        from .detect import detect_run

        result = detect_run(run.run_dir, path)
        scores = result["score"].to_numpy(dtype=float)
        finite = scores[np.isfinite(scores)]
        return {"source": str(path), "rows": len(result), "flagged": int(result["anomaly"].sum()),
                "missing": int(np.isnan(scores).sum()),
                "score": {"mean": float(finite.mean()) if len(finite) else None,
                          "max": float(finite.max()) if len(finite) else None}}  # fmt: skip

    def commands(self) -> dict[str, Command]:
        return {"detect": DETECT}


# -----------------------------------------------------------------------------
# `rnnkit detect`: a run directory, or a detector fitted afresh


def _detect_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("run_dir", metavar="RUN_DIR", nargs="?",
                        help="a run directory of 'rnnkit train detect' (default: a detector that needs no training)")
    parser.add_argument("--data", metavar="FILE",
                        help="a CSV with time and value columns (default: numbers on stdin, one a line, scored as they arrive)")
    parser.add_argument("--detector", choices=DETECTORS, default=None,
                        help="without RUN_DIR: the windowed Gaussian (default), or an LSTM fitted on the first 15%% of"
                             " the --data file")
    parser.add_argument("--threshold-method", choices=list(THRESHOLDS), default=None,
                        help="how an LSTM's errors are thresholded (default: the run's; 'gaussian' for --detector lstm)")
    parser.add_argument("--time-column", default=None, help="(default: the run's, or 'timestamp')")
    parser.add_argument("--target", default=None, help="(default: the run's, or 'value')")
    parser.add_argument("--threshold", type=float, default=None,
                        help="without RUN_DIR: the z above which a point is flagged (default: 4)")
    parser.add_argument("--hold-off", type=int, default=None, metavar="ROWS",
                        help=f"after a flag, no other flag for ROWS rows (default: the run's; without RUN_DIR"
                             f" {HOLD_OFF}, as a trained detector's; 0: every point above the threshold)")
    parser.add_argument("--plot", metavar="PNG",
                        help="where the plot of a --data file goes (default: RUN_DIR/detections.png; none without RUN_DIR)")
    parser.add_argument("--gaps", choices=GAPS, default="keep",
                        help="missing readings of a regular --data series: keep the file's rows one for one (default),"
                             " or fill them in as rows scored as missing")
    parser.add_argument("--duplicates", choices=DUPLICATES, default="keep",
                        help="rows of --data that repeat a timestamp: keep each (default), the first or last of each"
                             " time, their mean, or an error")


def _detect(args: argparse.Namespace) -> int:
    from . import detect

    check_output_path(args.plot, "--plot")
    if args.run_dir is not None:
        for flag, value in (("--detector", args.detector), ("--threshold", args.threshold)):
            if value is not None:
                raise ValueError(f"{flag} applies without RUN_DIR; a trained detector keeps its own settings")
        if args.data is None:
            detector = RNNDetector.load(args.run_dir, threshold=args.threshold_method)
            if args.hold_off is not None:
                detector.config = replace(detector.config, hold_off=args.hold_off)
            return _stream_scores(detector.scorer())
        plot = args.plot or str(Path(args.run_dir) / PLOT_FILE)
        result = detect.detect_run(args.run_dir, args.data, time_column=args.time_column, target=args.target,
                                   threshold=args.threshold_method, hold_off=args.hold_off, plot=plot,
                                   gaps=args.gaps, duplicates=args.duplicates)  # fmt: skip
        sys.stdout.write(_as_csv(result))
        print(f"{int(result['anomaly'].sum())} of {len(result)} rows flagged; plot: {plot}", file=sys.stderr)
        return 0
    detector = args.detector or "gaussian"
    threshold = 4.0 if args.threshold is None else args.threshold
    hold_off = HOLD_OFF if args.hold_off is None else args.hold_off
    if args.threshold_method is not None and detector != "lstm":
        raise ValueError("--threshold-method applies to an LSTM detector: give RUN_DIR or --detector lstm")
    if args.data is None:
        if detector != "gaussian":
            raise ValueError("numbers on stdin are scored by the windowed Gaussian or a trained detector (RUN_DIR);"
                             " an LSTM needs training first: rnnkit train detect --data FILE.csv")
        return _stream_scores(detect.windowed_gaussian(threshold, hold_off))
    result = detect.detect_csv(args.data, detector=detector, time_column=args.time_column or "timestamp",
                               target=args.target or "value", threshold=threshold,
                               method=args.threshold_method or "gaussian", hold_off=hold_off, plot=args.plot,
                               gaps=args.gaps, duplicates=args.duplicates)  # fmt: skip
    sys.stdout.write(_as_csv(result))
    return 0


def _as_csv(result) -> str:
    """The scored rows as the command prints them: flags as 0/1, as the stream prints them."""
    return result.assign(anomaly=result["anomaly"].astype(int)).to_csv(float_format="%.4f")


def _stream_scores(scorer) -> int:
    """Numbers on stdin through ``scorer``; one ``value,score,anomaly_score,anomaly`` line out per
    line in, the lines that arrived together scored together."""
    from .detect import detect_lines

    from ...data.textfiles import text_line_batches

    with closed_stdout_is_fine():
        detect_lines(text_line_batches(sys.stdin), sys.stdout, scorer, warnings=sys.stderr)
    return 0


DETECT = Command(
    help="flag anomalies in a series (CSV, or numbers streamed on stdin) with a trained or an untrained detector;"
         " prints CSV with scores",
    example="rnnkit detect runs/detect-20261123-013000 --data cpu.csv",
    add_arguments=_detect_arguments,
    run=_detect,
)
