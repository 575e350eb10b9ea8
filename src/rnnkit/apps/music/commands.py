"""``rnnkit compose RUN_DIR --out piece.mid``: a piece from a trained music run, with its piano roll."""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

from ..commands import Command, check_output_path


def _arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("run_dir", metavar="RUN_DIR", help="a run directory of 'rnnkit train music'")
    parser.add_argument("--out", required=True, metavar="FILE",
                        help="the piece: .mid/.midi (MIDI) or .musicxml/.xml/.mxl (MusicXML); a piano roll .png beside it")
    parser.add_argument("--bars", type=int, default=16, help="bars to write after the prime (default: %(default)s)")
    parser.add_argument("--temperature", type=float, default=1.0, help="sampling temperature; 0 is greedy (default: %(default)s)")
    parser.add_argument("--top-p", type=float, default=None, help="sample within the smallest set of mass p")
    parser.add_argument("--prime", metavar="FILE", default=None, help="a score to continue (or, with --harmonize, to harmonise)")
    parser.add_argument("--harmonize", action="store_true", help="keep the prime's soprano (or melody) and write the other voices")
    parser.add_argument("--key", default=None, help="the key to write in: C, 'g minor', 'F# major' (default: as sampled)")
    parser.add_argument("--seed", type=int, default=None, help="seed for a reproducible piece")
    parser.add_argument("--parallels", default=None, metavar="ban|allow|F|F5,F8",
                        help="parallel fifths and octaves while sampling: 'ban', 'allow', or a factor in [0, 1] on the"
                             " model's probability of a move into one (two factors: fifths, octaves); the default"
                             " writes them at about the Bach corpus's rate at temperature 0.7 (docs/music.md)")
    parser.add_argument("--no-png", action="store_true", help="no piano-roll picture")


def _compose(args: argparse.Namespace) -> int:
    from ..._io import save_figure
    from ...data.music import read_prime, write_grid
    from ...metrics.music import estimate_key, key_name, piece_statistics
    from .composer import PARALLELS, Composer, parallel_factors, piano_roll

    if args.bars < 0 or (args.bars == 0 and not args.harmonize):
        raise ValueError(f"--bars must be a positive integer, got {args.bars}")
    parallels = parallel_factors(args.parallels, "--parallels") if args.parallels is not None else PARALLELS
    check_output_path(args.out, "--out")
    out = Path(args.out)
    if out.suffix.lower() not in (".mid", ".midi", ".musicxml", ".xml", ".mxl"):
        raise ValueError(f"--out must end in .mid, .midi, .musicxml, .xml or .mxl, got {out.name!r}")
    prime = read_prime(args.prime) if args.prime is not None else None
    composer = Composer.load(args.run_dir)
    started = time.perf_counter()
    grid = composer.compose(args.bars, temperature=args.temperature, top_p=args.top_p, prime=prime,
                            harmonize=args.harmonize, key=args.key, seed=args.seed,
                            parallels=parallels)  # fmt: skip
    seconds = time.perf_counter() - started
    write_grid(grid, out)
    stats = piece_statistics(grid.sounding(), grid.tokens < 128, composer.ranges)
    print(f"{out}: {len(grid) // grid.steps_per_bar} bars, {len(grid)} steps in {seconds:.2f} s,"
          f" key {key_name(estimate_key(grid.sounding()))}, in key {stats['in_key']:.3f},"
          f" parallel fifths {stats['fifths_per_100']:.2f} and octaves {stats['octaves_per_100']:.2f} per 100 steps")
    if not args.no_png:
        png = out.with_suffix(".png")
        save_figure(piano_roll(grid, out.stem), png)
        print(f"piano roll: {png}")
    return 0


COMPOSE = Command(
    help="compose a piece (MIDI or MusicXML, and a piano roll) with a trained music model",
    example="rnnkit compose runs/music-20261203 --out piece.mid --bars 16 --temperature 0.9 --seed 1",
    add_arguments=_arguments,
    run=_compose,
)
