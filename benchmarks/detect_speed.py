"""Values per second on one stream: the trained LSTM detector against the windowed Gaussian.

    OMP_NUM_THREADS=1 .venv/bin/python benchmarks/detect_speed.py [--root ../shared/data/nab]
        [--series realKnownCause/nyc_taxi.csv] [--repeats 3] [--online 50,500,3,0.01 ...]

The detector is the NAB benchmark's (benchmarks/nab.py): an LSTM (hidden 32) fitted on the
series' probationary prefix, the likelihood threshold and the 50-row hold-off. It then scores the
whole series as one stream, each way a user meets it:

- ``score``: one value at a time (``RNNScorer.score``), as values that arrive one by one are;
- ``chunks of 256``: ``RNNScorer.score_many`` on 256 values at a time, as a file or a burst of
  lines on stdin is scored;
- ``stdin``: ``rnnkit detect RUN_DIR``'s own loop (``detect_lines`` over ``text_line_batches``),
  parsing the lines and writing the CSV rows, the whole series piped in;
- ``batch``: ``RNNDetector.batch_scores``, the whole series at once;

without online adaptation and with each ``--online`` setting (every, window, steps, lr). The
windowed Gaussian (NAB's baseline, with the same hold-off) scores the series one value at a time
in the same run, interleaved, and every row is also given as a ratio to it. Each figure is the
best of ``--repeats`` interleaved repeats; the load average is printed, since the machine is
shared. All ways give the same scores (tests/test_detect_command.py); timings are never asserted.
"""

from __future__ import annotations

import argparse
import io
import os
import time
from dataclasses import replace
from pathlib import Path

import numpy as np
import torch

from rnnkit.apps import anomaly
from rnnkit.data.nab import read_nab_series
from rnnkit.data.textfiles import text_line_batches
from rnnkit.metrics import nab

# --- settings ------------------------------------------------------------------------------------
parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
parser.add_argument("--root", default=str(Path(__file__).resolve().parents[1] / ".." / "shared" / "data" / "nab"))
parser.add_argument("--series", default="realKnownCause/nyc_taxi.csv")
parser.add_argument("--repeats", type=int, default=3)
parser.add_argument("--online", nargs="*", default=["50,500,3,0.01"], metavar="EVERY,WINDOW,STEPS,LR",
                    help="online adaptation settings to time besides none (default: the detector's own)")
parser.add_argument("--seed", type=int, default=0)
args = parser.parse_args()
torch.set_num_threads(1)

# --- the detector ----------------------------------------------------------------------------------
_, values, _ = read_nab_series(args.root, args.series)
probation = values[: nab.probationary_length(len(values))]
fitted = anomaly.RNNDetector(anomaly.RNNDetectorConfig(seed=args.seed)).fit(probation)
settings = {"none": anomaly.OnlineConfig(every=0)}
for text in args.online:
    every, window, steps, lr = text.split(",")
    settings[text] = anomaly.OnlineConfig(every=int(every), window=int(window), steps=int(steps), lr=float(lr))
lines = "".join(f"{v!r}\n" for v in values.tolist()).encode()


def detector(online: anomaly.OnlineConfig) -> anomaly.RNNDetector:
    d = anomaly.RNNDetector(replace(fitted.config, online=online))
    d.model, d.center, d.scale = fitted.model, fitted.center, fitted.scale
    return d


def one_at_a_time(scorer) -> None:
    for value in values.tolist():
        scorer.score(value)


def chunks(scorer, size: int = 256) -> None:
    for start in range(0, len(values), size):
        scorer.score_many(values[start : start + size])


def stdin(scorer) -> None:
    anomaly.detect_lines(text_line_batches(io.TextIOWrapper(io.BytesIO(lines))), io.StringIO(), scorer)


ways = {"score": lambda d: one_at_a_time(d.scorer()), "chunks of 256": lambda d: chunks(d.scorer()),
        "stdin": lambda d: stdin(d.scorer()), "batch": lambda d: d.batch_scores(values)}  # fmt: skip
gaussian = "windowed Gaussian, score"


def run_gaussian() -> None:
    one_at_a_time(anomaly.windowed_gaussian())


# --- time them, interleaved ------------------------------------------------------------------------
load_before = os.getloadavg()
best: dict[tuple[str, str], float] = {}
for _ in range(args.repeats):
    for online_name, online in settings.items():
        for way, run in ways.items():
            for key, work in (((online_name, way), lambda: run(detector(online))), ((gaussian, ""), run_gaussian)):
                start = time.perf_counter()
                work()
                best[key] = min(best.get(key, np.inf), time.perf_counter() - start)
load_after = os.getloadavg()

# --- report ----------------------------------------------------------------------------------------
n = len(values)
reference = n / best[(gaussian, "")]
print(f"{args.series}: {n} values, one stream, best of {args.repeats}; load average {load_before[0]:.2f} before,"
      f" {load_after[0]:.2f} after (1-minute), {os.cpu_count()} cores; torch threads {torch.get_num_threads()}\n")
print("| detector | online adaptation (every, window, steps, lr) | how | values/s | vs windowed Gaussian |")
print("|---|---|---|---|---|")
print(f"| windowed Gaussian | - | score | {reference:,.0f} | 1 |")
for online_name in settings:
    for way in ways:
        rate = n / best[(online_name, way)]
        print(f"| LSTM, likelihood | {online_name} | {way} | {rate:,.0f} | {rate / reference:.3f} |")
