"""``rnnkit compare`` and ``rnnkit gradients``: the experiments' commands (their modules load when run)."""

from __future__ import annotations

import argparse
import sys
import time

from ..apps.commands import Command


def _compare_arguments(parser: argparse.ArgumentParser) -> None:
    from .compare import CompareConfig

    default = CompareConfig()
    parser.add_argument("--length", type=int, default=default.length,
                        help="steps per sequence T (default: %(default)s)")
    parser.add_argument("--steps", type=int, default=default.steps,
                        help="training steps per model (default: %(default)s)")
    parser.add_argument("--hidden-size", type=int, default=default.hidden_size,
                        help="hidden units of both models (default: %(default)s)")
    parser.add_argument("--seed", type=int, default=default.seed,
                        help="seed of model init, training and test data (default: %(default)s)")
    parser.add_argument("--quiet", action="store_true",
                        help="no progress output; print only the results table")


def _compare(args: argparse.Namespace) -> int:
    from .compare import CompareConfig, format_table, run_compare

    config = CompareConfig(length=args.length, steps=args.steps, hidden_size=args.hidden_size, seed=args.seed)
    if not args.quiet:
        print(f"adding problem, T={config.length}: LSTM vs tanh RNN, hidden {config.hidden_size}, "
              f"{config.steps} steps of batch {config.batch_size} each "
              f"(baseline MSE of predicting 1.0: 0.167)", file=sys.stderr, flush=True)
    results = run_compare(config, progress="none" if args.quiet else "auto")
    print(format_table(results))
    return 0


COMPARE = Command(
    help="train an LSTM and a tanh RNN side by side on the adding problem",
    example="rnnkit compare --length 50 --steps 500 --seed 1",
    add_arguments=_compare_arguments,
    run=_compare,
)


def _gradients_arguments(parser: argparse.ArgumentParser) -> None:
    from .gradients import GradientsConfig

    default = GradientsConfig()
    parser.add_argument("--task", choices=["adding", "copy"], default=default.task,
                        help="the long-range task (default: %(default)s)")
    parser.add_argument("--length", type=int, default=default.length,
                        help="adding: steps per sequence T; copy: the lag (default: %(default)s)")
    parser.add_argument("--steps", type=int, default=default.steps,
                        help="training steps per cell between the two measurements (default: %(default)s)")
    parser.add_argument("--hidden-size", type=int, default=default.hidden_size,
                        help="hidden units of every cell (default: %(default)s)")
    parser.add_argument("--seed", type=int, default=default.seed,
                        help="seed of model init, training and data (default: %(default)s)")
    parser.add_argument("--cells", default=",".join(default.cells),
                        help="comma-separated registered cells (default: %(default)s)")
    parser.add_argument("--out", metavar="DIR",
                        help="where gradient_flow.png and gradient_flow.json go (default: runs/gradients-TIMESTAMP)")
    parser.add_argument("--quiet", action="store_true", help="no progress lines; print only the table")


def _gradients(args: argparse.Namespace) -> int:
    from .gradients import GradientsConfig, format_table, output_dir, run_gradients, write_report

    cells = tuple(c.strip() for c in args.cells.split(",") if c.strip())
    config = GradientsConfig(task=args.task, length=args.length, steps=args.steps,
                             hidden_size=args.hidden_size, seed=args.seed, cells=cells)
    out = output_dir(args.out or f"runs/gradients-{time.strftime('%Y%m%d-%H%M%S')}")
    if not args.quiet:
        print(f"{config.task}, length {config.length}: {', '.join(cells)}, hidden {config.hidden_size},"
              f" {config.steps} steps each; measuring dL/dh before and after", file=sys.stderr, flush=True)
    report = run_gradients(config, stream=None if args.quiet else sys.stderr)
    paths = write_report(report, out)
    print(format_table(report))
    print(f"figure: {paths['png']}; all numbers: {paths['json']}")
    return 0


GRADIENTS = Command(
    help="train a tanh RNN, an LSTM and a GRU on a long-range task; plot and tabulate how their gradients decay",
    example="rnnkit gradients --length 100 --steps 1000 --cells rnn_tanh,lstm,gru --out runs/gradients",
    add_arguments=_gradients_arguments,
    run=_gradients,
)

COMMANDS = {"compare": COMPARE, "gradients": GRADIENTS}
