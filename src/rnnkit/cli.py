"""The ``rnnkit`` command line: parsing, and errors as one line.

The subcommands are :class:`~rnnkit.apps.commands.Command` objects in :data:`COMMANDS`: ``train``
(:mod:`rnnkit.apps.train`), each app's own (``App.commands()`` of every app in
:data:`rnnkit.apps.APPS`: ``demo``, ``generate``, ``predict``, ``forecast``, ``detect``), the
experiments' (``compare``, ``gradients``) and ``bench``. ``@command(name, help=..., example=...,
add_arguments=...)`` registers one more; ``main`` builds the parser from whatever is registered.

Errors a user can cause (bad values, missing files) end as one line on stderr,
``rnnkit: error: ...``, with exit code 2; Ctrl-C exits with 130, SIGTERM with 143 (after training
has saved a checkpoint).
"""

from __future__ import annotations

import argparse
import sys
from typing import Callable, NoReturn, Sequence

from rnnkit.apps import APPS
from rnnkit.apps.commands import Command, add_command
from rnnkit.apps.train import EVALUATE, TRAIN
from rnnkit.bench import COMMAND as BENCH_COMMAND
from rnnkit.deploy.commands import COMMANDS as DEPLOY
from rnnkit.experiments.commands import COMMANDS as EXPERIMENTS

__all__ = ["COMMANDS", "Command", "command", "main"]


# -----------------------------------------------------------------------------
# registry


COMMANDS: dict[str, Command] = {}


def command(
    name: str,
    *,
    help: str,
    example: str,
    add_arguments: Callable[[argparse.ArgumentParser], None] = lambda parser: None,
    overrides: bool = False,
    help_action: type[argparse.Action] | None = None,
) -> Callable[[Callable[[argparse.Namespace], int]], Callable[[argparse.Namespace], int]]:
    """Register ``run`` as the subcommand ``name``."""

    def register(run: Callable[[argparse.Namespace], int]) -> Callable[[argparse.Namespace], int]:
        _register(name, Command(help=help, add_arguments=add_arguments, run=run, example=example,
                                overrides=overrides, help_action=help_action))  # fmt: skip
        return run

    return register


def _register(name: str, cmd: Command) -> None:
    if name in COMMANDS:
        raise ValueError(f"subcommand {name!r} is already registered")
    COMMANDS[name] = cmd


def _register_builtin() -> None:
    """``train``, each app's own commands in the order of ``APPS``, the experiments', ``bench``."""
    _register("train", TRAIN)
    _register("evaluate", EVALUATE)
    for app in APPS:
        for name, cmd in app.commands().items():
            _register(name, cmd)
    for name, cmd in {**EXPERIMENTS, "bench": BENCH_COMMAND, **DEPLOY}.items():
        _register(name, cmd)


_register_builtin()


# -----------------------------------------------------------------------------
# parser and entry point


def _split_overrides(extras: list[str]) -> tuple[list[str], list[str]]:
    """``--a.b=c`` and ``--a.b c`` tokens as ``a.b=c`` overrides; everything else is left over.
    Hyphens in the name are underscores, as in argparse's options: ``--task.source-column`` is
    ``task.source_column`` (no setting's name has a hyphen)."""
    overrides, rest, i = [], [], 0
    while i < len(extras):
        token = extras[i]
        key = token[2:].split("=", 1)[0]
        if token.startswith("--") and "." in key:
            key = key.replace("-", "_")
            if "=" in token:
                overrides.append(f"{key}={token[2:].split('=', 1)[1]}")
            elif i + 1 < len(extras):
                overrides.append(f"{key}={extras[i + 1]}")
                i += 1
            else:
                rest.append(token)
        else:
            rest.append(token)
        i += 1
    return overrides, rest


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
        epilog="examples:\n  rnnkit demo\n  rnnkit train text --data input.txt\n  rnnkit generate RUN_DIR --prime 'The '\n\n"
               "Run 'rnnkit COMMAND --help' for a command's options.",
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("--version", action="version", version=f"rnnkit {_version()}")
    subparsers = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)
    for name, cmd in COMMANDS.items():
        add_command(subparsers, name, cmd)
    return parser


def _one_line_warning(message, category, filename, lineno, line=None) -> str:
    """Python warnings as the command line's other messages: one line, no source location."""
    text = " ".join(str(message).splitlines())
    return f"rnnkit: warning: {text}\n"


def main(argv: Sequence[str] | None = None) -> int:
    """Run the command line with ``argv`` (default: ``sys.argv[1:]``); return the exit code."""
    import warnings

    # the format, not the display: code that records warnings (catch_warnings, pytest) still does
    formatted, warnings.formatwarning = warnings.formatwarning, _one_line_warning
    try:
        return _main(argv)
    finally:
        warnings.formatwarning = formatted


def _main(argv: Sequence[str] | None) -> int:
    try:
        parser = build_parser()
        try:
            args, extras = parser.parse_known_args(argv)
            overrides, rest = _split_overrides(extras)
            if rest or (overrides and not getattr(args, "_overrides", False)):
                parser.error(f"unrecognized arguments: {' '.join(rest or ['--' + o for o in overrides])}")
        except SystemExit as exit_:  # --help, --version and usage errors
            return exit_.code if isinstance(exit_.code, int) else 0 if exit_.code is None else 2
        args.overrides = overrides
        return args._run(args)
    except (ValueError, TypeError, FileNotFoundError) as error:
        message = " ".join(str(error).splitlines()) or type(error).__name__
        print(f"rnnkit: error: {message}", file=sys.stderr)
        return 2
    except _interrupted() as interrupted:  # checkpointed first; the exit a shell gives that signal
        print(f"rnnkit: {interrupted}", file=sys.stderr)
        return 128 + interrupted.signal_number
    except _training_error() as error:
        print(f"rnnkit: error: {error}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        print("rnnkit: interrupted", file=sys.stderr)
        return 130


def _interrupted() -> type[BaseException]:
    from rnnkit.training import TrainingInterrupted

    return TrainingInterrupted


def _training_error() -> type[BaseException]:
    from rnnkit.training import TrainingError

    return TrainingError


if __name__ == "__main__":
    sys.exit(main())
