"""Subcommands of the ``rnnkit`` command line, as data: what an app or an experiment adds.

A :class:`Command` is a ``run(args) -> int`` function with its help, its example and the
function that declares its arguments; :func:`add_command` turns one into an argparse subparser
(description, example epilog, ``set_defaults(_run=...)``). ``rnnkit.cli`` builds its parser from
these, so the modules that own a command never import the command line (imports go one way).
"""

from __future__ import annotations

import argparse
import contextlib
import os
import sys
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path


@dataclass(frozen=True)
class Command:
    help: str
    add_arguments: Callable[[argparse.ArgumentParser], None]
    run: Callable[[argparse.Namespace], int]
    example: str  # shown under the subcommand's --help
    overrides: bool = False  # accepts --section.name=value settings, passed as args.overrides
    help_action: type[argparse.Action] | None = None  # -h/--help in place of argparse's


def add_command(subparsers, name: str, command: Command) -> argparse.ArgumentParser:
    """``command`` as the subparser ``name`` of ``subparsers`` (from ``add_subparsers``)."""
    sub = subparsers.add_parser(
        name,
        help=command.help,
        description=command.help[:1].upper() + command.help[1:] + ".",
        epilog=f"example:\n  {command.example}",
        formatter_class=argparse.RawDescriptionHelpFormatter,
        add_help=command.help_action is None,
    )
    if command.help_action is not None:
        sub.add_argument("-h", "--help", action=command.help_action, help="show this help message and exit")
    command.add_arguments(sub)
    sub.set_defaults(_run=command.run, _overrides=command.overrides)
    return sub


@contextlib.contextmanager
def closed_stdout_is_fine() -> Iterator[None]:
    """Writing to a reader that stopped early (``| head``) ends the output, not with an error:
    the rest of stdout goes to the null device, which also silences the exit-time flush."""
    try:
        yield
    except BrokenPipeError:
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())


def check_output_path(path, flag: str) -> None:
    """A file a command is told to write: its directory must exist (no directory is made for a
    mistyped path) and the path must not be a directory."""
    if path is None:
        return
    path = Path(path)
    if path.is_dir():
        raise ValueError(f"{flag} must name a file, got the directory {path}")
    if not path.parent.is_dir():
        raise FileNotFoundError(f"{flag}: the directory {path.parent} does not exist (got {path})")
