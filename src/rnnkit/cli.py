"""The ``rnnkit`` command line.

Subcommands live in a registry: a subcommand is a ``run(args) -> int`` function decorated
with ``@command(name, help=..., example=..., add_arguments=...)``, and ``main`` builds the
parser from whatever is registered, so a new subcommand touches nothing else here.

Errors a user can cause (bad values, missing files) end as one line on stderr,
``rnnkit: error: ...``, with exit code 2; Ctrl-C exits with 130.
"""

from __future__ import annotations

import argparse
import sys
from dataclasses import dataclass
from typing import Callable, NoReturn, Sequence

__all__ = ["COMMANDS", "Command", "command", "main"]


# -----------------------------------------------------------------------------
# registry


@dataclass(frozen=True)
class Command:
    help: str
    add_arguments: Callable[[argparse.ArgumentParser], None]
    run: Callable[[argparse.Namespace], int]
    example: str  # shown under the subcommand's --help


COMMANDS: dict[str, Command] = {}


def command(
    name: str,
    *,
    help: str,
    example: str,
    add_arguments: Callable[[argparse.ArgumentParser], None] = lambda parser: None,
) -> Callable[[Callable[[argparse.Namespace], int]], Callable[[argparse.Namespace], int]]:
    """Register ``run`` as the subcommand ``name``."""

    def register(run: Callable[[argparse.Namespace], int]) -> Callable[[argparse.Namespace], int]:
        if name in COMMANDS:
            raise ValueError(f"subcommand {name!r} is already registered")
        COMMANDS[name] = Command(help=help, add_arguments=add_arguments, run=run, example=example)
        return run

    return register


# -----------------------------------------------------------------------------
# subcommands


def _demo_arguments(parser: argparse.ArgumentParser) -> None:
    from rnnkit.tasks.demo import DemoConfig

    default = DemoConfig()
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


@command(
    "demo",
    help="train an LSTM and a tanh RNN side by side on the adding problem",
    example="rnnkit demo --length 50 --steps 500 --seed 1",
    add_arguments=_demo_arguments,
)
def _demo(args: argparse.Namespace) -> int:
    from rnnkit.tasks.demo import DemoConfig, format_table, run_demo

    config = DemoConfig(length=args.length, steps=args.steps,
                        hidden_size=args.hidden_size, seed=args.seed)
    if not args.quiet:
        print(f"adding problem, T={config.length}: LSTM vs tanh RNN, hidden {config.hidden_size}, "
              f"{config.steps} steps of batch {config.batch_size} each "
              f"(baseline MSE of predicting 1.0: 0.167)", file=sys.stderr, flush=True)
    results = run_demo(config, progress="none" if args.quiet else "auto")
    print(format_table(results))
    return 0


# -----------------------------------------------------------------------------
# parser and entry point


class _Parser(argparse.ArgumentParser):
    """An ArgumentParser whose usage errors are one line, like every other error here."""

    def error(self, message: str) -> NoReturn:
        self.exit(2, f"rnnkit: error: {message} (see '{self.prog} --help')\n")


def _version() -> str:
    from importlib.metadata import PackageNotFoundError, version

    try:
        return version("rnnkit")
    except PackageNotFoundError:  # running from a source tree that is not installed
        from rnnkit import __version__

        return __version__


def build_parser() -> argparse.ArgumentParser:
    parser = _Parser(
        prog="rnnkit",
        description="Recurrent neural networks on PyTorch.",
        epilog="example:\n  rnnkit demo\n\n"
               "Run 'rnnkit COMMAND --help' for a command's options.",
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("--version", action="version", version=f"rnnkit {_version()}")
    subparsers = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)
    for name, cmd in COMMANDS.items():
        sub = subparsers.add_parser(
            name,
            help=cmd.help,
            description=cmd.help[:1].upper() + cmd.help[1:] + ".",
            epilog=f"example:\n  {cmd.example}",
            formatter_class=argparse.RawDescriptionHelpFormatter,
        )
        cmd.add_arguments(sub)
        sub.set_defaults(_run=cmd.run)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Run the command line with ``argv`` (default: ``sys.argv[1:]``); return the exit code."""
    try:
        try:
            args = build_parser().parse_args(argv)
        except SystemExit as exit_:  # --help, --version and usage errors
            return exit_.code if isinstance(exit_.code, int) else 0 if exit_.code is None else 2
        return args._run(args)
    except (ValueError, TypeError, FileNotFoundError) as error:
        message = " ".join(str(error).splitlines()) or type(error).__name__
        print(f"rnnkit: error: {message}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("rnnkit: interrupted", file=sys.stderr)
        return 130


if __name__ == "__main__":
    sys.exit(main())
