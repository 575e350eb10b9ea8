"""NAB (the shared subset) scored with NAB's standard profile: windowed Gaussian vs the LSTM detector.

    OMP_NUM_THREADS=1 .venv/bin/python benchmarks/nab.py [--root ../shared/data/nab] [--epochs 40]

Both detectors see each series once, in order, and learn only from its probationary prefix
(first 15%, at most 750 rows), the part NAB does not score. Two numbers per detector: with its
own fixed threshold, and with NAB's threshold optimisation (one threshold over the whole corpus,
chosen to maximise the score; NAB's published numbers are optimised this way).
"""

from __future__ import annotations

import argparse
import time
from collections import defaultdict
from pathlib import Path

import numpy as np

from rnnkit.tasks import anomaly, nab

# --- settings ------------------------------------------------------------------------------------
parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
parser.add_argument("--root", default=str(Path(__file__).resolve().parents[1] / ".." / "shared" / "data" / "nab"))
parser.add_argument("--epochs", type=int, default=40)
parser.add_argument("--hidden", type=int, default=32)
parser.add_argument("--seed", type=int, default=0)
parser.add_argument("--limit", type=int, default=None, help="only the first N series (a quick check)")
args = parser.parse_args()

# --- run both detectors over every series ------------------------------------------------------
names = nab.series_names(args.root)[: args.limit]
scores: dict[str, dict[str, np.ndarray]] = {"windowed Gaussian": {}, "LSTM prediction error": {}}
flags: dict[str, dict[str, np.ndarray]] = {"windowed Gaussian": {}, "LSTM prediction error": {}}
windows, seconds = {}, defaultdict(float)
for name in names:
    _, values, windows[name] = nab.load_series(args.root, name)
    probation = nab.probationary_length(len(values))
    start = time.perf_counter()
    # NAB's windowedGaussian uses a 6400-point window; its threshold here is a z-score
    scores["windowed Gaussian"][name], flags["windowed Gaussian"][name] = anomaly.score_all(
        anomaly.WindowedGaussian(window=6400, threshold=4.0), values)  # fmt: skip
    seconds["windowed Gaussian"] += time.perf_counter() - start
    start = time.perf_counter()
    config = anomaly.RNNDetectorConfig(hidden_size=args.hidden, epochs=args.epochs, seed=args.seed)
    detector = anomaly.RNNDetector(config).fit(values[:probation])
    # batch_scores equals streaming the series (tests/test_anomaly.py), and is faster here
    scores["LSTM prediction error"][name], flags["LSTM prediction error"][name] = detector.batch_scores(values)
    seconds["LSTM prediction error"] += time.perf_counter() - start
    print(f"{name}: {len(values)} rows, {len(windows[name])} windows", flush=True)

# --- score -------------------------------------------------------------------------------------
categories = sorted({n.split("/")[0] for n in names})
thresholds = np.concatenate([np.linspace(0.5, 10, 39), [12, 15, 20, 30, 50]])
print("\n| detector | threshold | " + " | ".join(categories) + " | all | seconds |")
print("|---|---|" + "---|" * len(categories) + "---|---|")
for detector_name in scores:
    fixed = {n: nab.score_series(flags[detector_name][n], windows[n]) for n in names}
    threshold, _ = nab.best_threshold(scores[detector_name], windows, thresholds=thresholds)
    tuned = {n: nab.score_series(np.nan_to_num(scores[detector_name][n]) >= threshold, windows[n]) for n in names}
    for label, result in (("fixed", fixed), (f"optimised ({threshold:g})", tuned)):
        cells = []
        for category in categories:
            part = [result[n] for n in names if n.startswith(category + "/")]
            try:
                cells.append(f"{nab.normalised(part):.1f}")
            except ValueError:  # no window in this category: report the false-positive cost instead
                cells.append(f"raw {sum(s.raw for s in part):.2f}")
        total = nab.normalised(list(result.values()))
        print(f"| {detector_name} | {label} | " + " | ".join(cells) + f" | {total:.1f} | {seconds[detector_name]:.1f} |")
