"""Ten seeded chorales from a music run, their musical checks against the corpus, and one harmonisation.

    PYTHONPATH=src python benchmarks/music_compose.py RUN_DIR docs/music

writes ``chorale-SEED.mid`` and ``.png`` for seeds 1..10, ``harmonisation.mid``/``.png`` (the
first held-out chorale's soprano, the other voices composed) and ``checks.json``; prints a table.
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
from rnnkit.apps.music.composer import piano_roll
from rnnkit.data.music import Grid, bach_chorales, write_grid
from rnnkit.metrics.music import piece_statistics


def main(run_dir: str, out: str, bars: int = 16, temperature: float = 0.9) -> None:
    torch.set_num_threads(1)
    out_dir = Path(out)
    out_dir.mkdir(parents=True, exist_ok=True)
    composer = Composer.load(run_dir)
    split = read_json(Path(run_dir) / "split.json")
    corpus = {g.name: g for g in bach_chorales()}
    train = [corpus[n] for n in split["train"]]
    reference = [piece_statistics(g.sounding(), g.tokens < 128, composer.ranges) for g in train]
    rows, seconds = [], []
    for seed in range(1, 11):
        started = time.perf_counter()
        grid = composer.compose(bars, temperature=temperature, seed=seed)
        seconds.append(time.perf_counter() - started)
        write_grid(grid, out_dir / f"chorale-{seed}.mid")
        save_figure(piano_roll(grid, f"chorale {seed} (seed {seed}, temperature {temperature})"),
                    out_dir / f"chorale-{seed}.png")
        rows.append(piece_statistics(grid.sounding(), grid.tokens < 128, composer.ranges))
    free = [composer.compose(bars, temperature=temperature, seed=seed, parallels=False) for seed in range(1, 11)]
    free_rows = [piece_statistics(g.sounding(), g.tokens < 128, composer.ranges) for g in free]
    held = corpus[split["test"][0]]
    melody = Grid(held.tokens[:, :1], held.positions, held.name, held.steps_per_bar, ("soprano",))
    harmony = composer.compose(0, prime=melody, harmonize=True, seed=1, temperature=temperature)
    write_grid(harmony, out_dir / "harmonisation.mid")
    save_figure(piano_roll(harmony, f"{held.name}: Bach's soprano, the other voices composed"),
                out_dir / "harmonisation.png")
    keys = ("in_key", "fifths_per_100", "octaves_per_100", "in_range")
    summary = {
        "corpus": {k: float(np.mean([r[k] for r in reference])) for k in keys},
        "composed": {k: float(np.mean([r[k] for r in rows])) for k in keys},
        "composed_parallels_allowed": {k: float(np.mean([r[k] for r in free_rows])) for k in keys},
        "harmonisation": {"piece": held.name, **{k: v for k, v in
                          piece_statistics(harmony.sounding(), harmony.tokens < 128, composer.ranges).items()}},
        "bach_original": {"piece": held.name, **piece_statistics(held.sounding(), held.tokens < 128, composer.ranges)},
        "seconds_per_piece": {"mean": float(np.mean(seconds)), "max": float(np.max(seconds))},
        "bars": bars, "temperature": temperature, "pieces": rows,
    }
    write_json(out_dir / "checks.json", summary)
    print(f"{'':14s} {'in key':>8s} {'5ths/100':>9s} {'8ves/100':>9s} {'in range':>9s}")
    for name in ("corpus", "composed", "composed_parallels_allowed"):
        r = summary[name]
        print(f"{name[:14]:14s} {r['in_key']:8.3f} {r['fifths_per_100']:9.3f} {r['octaves_per_100']:9.3f} {r['in_range']:9.3f}")
    r = summary["harmonisation"]
    print(f"{'harmonisation':14s} {r['in_key']:8.3f} {r['fifths_per_100']:9.3f} {r['octaves_per_100']:9.3f} {r['in_range']:9.3f}")
    print(f"compose {bars} bars: mean {np.mean(seconds):.2f} s, max {np.max(seconds):.2f} s")
    print(json.dumps({k: summary[k] for k in ("corpus", "composed")}))


if __name__ == "__main__":
    main(*sys.argv[1:3], **({"temperature": float(sys.argv[3])} if len(sys.argv) > 3 else {}))
