"""Ten seeded chorales from a music run, their musical checks against the corpus, and one harmonisation.

    PYTHONPATH=src python benchmarks/music_compose.py RUN_DIR docs/music

writes ``chorale-SEED.mid`` and ``.png`` for seeds 1..10 (the default ``parallels`` penalty),
``harmonisation.mid``/``.png`` (the first held-out chorale's soprano, the other voices composed)
and ``checks.json``; prints a table. The same ten seeds are also composed with parallels
allowed and banned, for comparison. Rates per 100 steps are pooled (all parallels over all
transitions), for the corpus as for the composed pieces; ``*_mean_of_pieces`` is the mean of
each piece's own rate. Many-piece figures with intervals: ``benchmarks/music_parallels.py``.
"""

from __future__ import annotations

import json
import sys
import time
from pathlib import Path

import numpy as np
import torch

from rnnkit._io import read_json, save_figure, write_json
from rnnkit.apps.music import Composer
from rnnkit.apps.music.composer import PARALLELS, piano_roll
from rnnkit.data.music import Grid, bach_chorales, write_grid
from rnnkit.metrics.music import parallel_motion, piece_statistics


def pooled(grids, ranges) -> dict:
    """Parallels per 100 steps over all the pieces' transitions, and the pieces' mean in-key and in-range shares."""
    rows = [piece_statistics(g.sounding(), g.tokens < 128, ranges) for g in grids]
    counts = [parallel_motion(g.sounding()) for g in grids]
    transitions = sum(len(g) - 1 for g in grids)
    fifths, octaves = sum(c["fifths"] for c in counts), sum(c["octaves"] for c in counts)
    return {"pieces": len(grids), "transitions": transitions, "fifths": fifths, "octaves": octaves,
            "fifths_per_100": 100 * fifths / transitions, "octaves_per_100": 100 * octaves / transitions,
            "fifths_per_100_mean_of_pieces": float(np.mean([r["fifths_per_100"] for r in rows])),
            "in_key": float(np.mean([r["in_key"] for r in rows])), "in_range": float(np.mean([r["in_range"] for r in rows]))}  # fmt: skip


def main(run_dir: str, out: str, bars: int = 16, temperature: float = 0.9) -> None:
    torch.set_num_threads(1)
    out_dir = Path(out)
    out_dir.mkdir(parents=True, exist_ok=True)
    composer = Composer.load(run_dir)
    split = read_json(Path(run_dir) / "split.json")
    corpus = {g.name: g for g in bach_chorales()}
    train = [corpus[n] for n in split["train"]]
    rows, seconds, grids = [], [], []
    for seed in range(1, 11):
        started = time.perf_counter()
        grid = composer.compose(bars, temperature=temperature, seed=seed)
        seconds.append(time.perf_counter() - started)
        write_grid(grid, out_dir / f"chorale-{seed}.mid")
        save_figure(piano_roll(grid, f"chorale {seed} (seed {seed}, temperature {temperature})"),
                    out_dir / f"chorale-{seed}.png")
        rows.append(piece_statistics(grid.sounding(), grid.tokens < 128, composer.ranges))
        grids.append(grid)
    free = [composer.compose(bars, temperature=temperature, seed=seed, parallels="allow") for seed in range(1, 11)]
    banned = [composer.compose(bars, temperature=temperature, seed=seed, parallels="ban") for seed in range(1, 11)]
    held = corpus[split["test"][0]]
    melody = Grid(held.tokens[:, :1], held.positions, held.name, held.steps_per_bar, ("soprano",))
    harmony = composer.compose(0, prime=melody, harmonize=True, seed=1, temperature=temperature)
    write_grid(harmony, out_dir / "harmonisation.mid")
    save_figure(piano_roll(harmony, f"{held.name}: Bach's soprano, the other voices composed"),
                out_dir / "harmonisation.png")
    summary = {
        "corpus": pooled(train, composer.ranges),
        "composed": {"parallels": list(PARALLELS), **pooled(grids, composer.ranges)},
        "composed_parallels_allowed": pooled(free, composer.ranges),
        "composed_parallels_banned": pooled(banned, composer.ranges),
        "harmonisation": {"piece": held.name, **{k: v for k, v in
                          piece_statistics(harmony.sounding(), harmony.tokens < 128, composer.ranges).items()}},
        "bach_original": {"piece": held.name, **piece_statistics(held.sounding(), held.tokens < 128, composer.ranges)},
        "seconds_per_piece": {"mean": float(np.mean(seconds)), "max": float(np.max(seconds))},
        "bars": bars, "temperature": temperature, "pieces": rows,
    }
    write_json(out_dir / "checks.json", summary)
    print(f"{'':16s} {'in key':>8s} {'5ths/100':>9s} {'(count)':>8s} {'8ves/100':>9s} {'in range':>9s}")
    for name in ("corpus", "composed", "composed_parallels_allowed", "composed_parallels_banned"):
        r = summary[name]
        print(f"{name[-16:]:16s} {r['in_key']:8.3f} {r['fifths_per_100']:9.4f} {r['fifths']:8d} {r['octaves_per_100']:9.4f}"
              f" {r['in_range']:9.3f}")
    r = summary["harmonisation"]
    print(f"{'harmonisation':16s} {r['in_key']:8.3f} {r['fifths_per_100']:9.4f} {'':8s} {r['octaves_per_100']:9.4f}"
          f" {r['in_range']:9.3f}")
    print(f"compose {bars} bars: mean {np.mean(seconds):.2f} s, max {np.max(seconds):.2f} s")
    print(json.dumps({k: summary[k] for k in ("corpus", "composed")}))


if __name__ == "__main__":
    main(*sys.argv[1:3], **({"temperature": float(sys.argv[3])} if len(sys.argv) > 3 else {}))
