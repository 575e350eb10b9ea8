"""Parallel fifths and octaves per 100 steps of many composed chorales, for each parallels factor, against the corpus.

    PYTHONPATH=src python benchmarks/music_parallels.py RUN_DIR --factors allow,0.1,0.04 --pieces 300
    PYTHONPATH=src python benchmarks/music_parallels.py RUN_DIR --factors default --pieces 1000 --json out.json

The rates are pooled, as the corpus's are: all parallels over all transitions (steps - 1 per piece), so
a piece counts by its length; the intervals are 95% percentile bootstraps over pieces (parallels
cluster in pieces, so a Poisson interval on the count would be too narrow). The corpus is the
run's training chorales (split.json), measured by the same function (rnnkit.metrics.music) on the
same grid. ``--lengths corpus`` composes piece i with the length, in whole bars, of a training
chorale drawn at random (seeded) instead of ``--bars`` bars.
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

import numpy as np
import torch

from rnnkit._io import read_json, write_json
from rnnkit.apps.music import Composer
from rnnkit.apps.music.composer import PARALLELS, parallel_factors
from rnnkit.data.music import bach_chorales
from rnnkit.metrics.music import in_key_fraction, parallel_motion


def counts(grids) -> np.ndarray:
    """``(pieces, 5)``: transitions, parallel fifths, parallel octaves, in-key fraction (NaN: no note), silent share."""
    rows = []
    for g in grids:
        sounding = g.sounding()
        p = parallel_motion(sounding)
        in_key = in_key_fraction(sounding, g.tokens < 128) if (sounding >= 0).any() else float("nan")
        rows.append((len(g) - 1, p["fifths"], p["octaves"], in_key, float((sounding < 0).mean())))
    return np.array(rows, dtype=float)


def summary(rows: np.ndarray, resamples: int = 4000, seed: int = 0) -> dict:
    """Pooled rates per 100 steps and the mean in-key fraction, each with a bootstrap 95% interval over pieces."""
    rng = np.random.default_rng(seed)
    pick = rng.integers(0, len(rows), size=(resamples, len(rows)))  # (resamples, pieces)
    out = {"pieces": len(rows), "transitions": int(rows[:, 0].sum()),
           "fifths": int(rows[:, 1].sum()), "octaves": int(rows[:, 2].sum())}  # fmt: skip
    for name, column in (("fifths_per_100", 1), ("octaves_per_100", 2)):
        boot = 100 * rows[pick, column].sum(1) / rows[pick, 0].sum(1)  # (resamples,)
        out[name] = float(100 * rows[:, column].sum() / rows[:, 0].sum())
        out[name + "_95"] = [float(q) for q in np.quantile(boot, [0.025, 0.975])]
    out["fifths_per_100_mean_of_pieces"] = float(np.mean(100 * rows[:, 1] / rows[:, 0]))
    boot = np.nanmean(rows[pick, 3], axis=1)
    out["in_key"] = float(np.nanmean(rows[:, 3]))  # over pieces with a note, as the corpus's (all have one)
    out["in_key_95"] = [float(q) for q in np.quantile(boot, [0.025, 0.975])]
    out["silent_pieces"] = int(np.isnan(rows[:, 3]).sum())
    out["silent_share"] = float(rows[:, 4].mean())  # of voice-steps, piece by piece
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("run_dir")
    parser.add_argument("--factors", default="default", help="';'-separated parallels values: default, ban, allow, F, F5,F8")
    parser.add_argument("--pieces", type=int, default=300)
    parser.add_argument("--first-seed", type=int, default=1)
    parser.add_argument("--bars", type=int, default=16)
    parser.add_argument("--lengths", choices=("bars", "corpus"), default="bars")
    parser.add_argument("--temperature", type=float, default=0.7)
    parser.add_argument("--json", default=None, help="write the figures here")
    args = parser.parse_args()
    torch.set_num_threads(1)
    composer = Composer.load(args.run_dir)
    split = read_json(Path(args.run_dir) / "split.json")
    chorales = {g.name: g for g in bach_chorales()}
    train = [chorales[n] for n in split["train"]]
    corpus = summary(counts(train))
    bar = composer.steps_per_bar
    if args.lengths == "corpus":
        drawn = np.random.default_rng(args.first_seed).integers(0, len(train), size=args.pieces)
        bars = [max(1, round(len(train[i]) / bar)) for i in drawn]
    else:
        bars = [args.bars] * args.pieces
    result = {"run_dir": args.run_dir, "temperature": args.temperature, "lengths": args.lengths, "bars": args.bars,
              "seeds": [args.first_seed, args.first_seed + args.pieces - 1], "corpus": corpus, "composed": {}}  # fmt: skip
    print(f"corpus ({len(train)} training chorales): fifths {corpus['fifths_per_100']:.4f} per 100 steps "
          f"{corpus['fifths_per_100_95']}, octaves {corpus['octaves_per_100']:.4f}, in key {corpus['in_key']:.4f},"
          f" silent {corpus['silent_share']:.3f}")
    for text in args.factors.split(";"):
        factors = PARALLELS if text == "default" else parallel_factors(text)
        started = time.perf_counter()
        grids = [composer.compose(b, temperature=args.temperature, seed=args.first_seed + i, parallels=factors)
                 for i, b in enumerate(bars)]  # fmt: skip
        seconds = time.perf_counter() - started
        s = summary(counts(grids))
        s["factors"], s["seconds"] = list(factors), seconds
        result["composed"][text] = s
        print(f"{text:>12s} {factors}: {s['pieces']} pieces, {s['transitions']} transitions, {s['fifths']} fifths"
              f" = {s['fifths_per_100']:.4f} per 100 [{s['fifths_per_100_95'][0]:.4f}, {s['fifths_per_100_95'][1]:.4f}]"
              f" ({s['fifths_per_100'] / corpus['fifths_per_100']:.2f}x corpus), {s['octaves']} octaves"
              f" = {s['octaves_per_100']:.4f} [{s['octaves_per_100_95'][0]:.4f}, {s['octaves_per_100_95'][1]:.4f}],"
              f" in key {s['in_key']:.4f}, silent {s['silent_share']:.3f} ({s['silent_pieces']} without a note);"
              f" {seconds:.0f} s", flush=True)  # fmt: skip
    if args.json:
        write_json(args.json, result)
    print(json.dumps({k: v["fifths_per_100"] for k, v in result["composed"].items()}))


if __name__ == "__main__":
    main()
