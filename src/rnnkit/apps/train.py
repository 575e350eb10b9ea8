"""``rnnkit train NAME``: an app of :data:`rnnkit.apps.APPS` by its name, through the runner.

The runner (:mod:`rnnkit.apps.runner`) takes an :class:`~rnnkit.apps.App` itself; this module
is what knows the apps by name -- the command line's, and a resumed run's (its ``config.json``
names its app). Nothing in an app imports it.
"""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any

from .._io import read_json, run_file, write_json
from ..config import RawValue
from . import APPS, App, Run, get_app
from .base import finite
from .commands import Command, check_output_path, closed_stdout_is_fine
from .runner import Outcome, settings_help, train_app


def train(
    app: App | str | None,
    *,
    config_file: str | Path | None = None,
    overrides: list[str] = (),
    values: dict[str, Any] | None = None,
    run_dir: str | Path | None = None,
    resume: bool = False,
    quiet: bool = False,
) -> Outcome:
    """:func:`~rnnkit.apps.runner.train_app` of the app ``app`` names (``None`` with ``resume``:
    the app the run directory's ``config.json`` names)."""
    if app is None:
        if not resume:
            raise ValueError("a task name is needed unless --resume continues a run")
        if run_dir is None:
            raise ValueError("--resume needs --run-dir: the run directory to continue")
        if not (Path(run_dir) / "config.json").is_file():
            raise ValueError(f"nothing to resume in {run_dir}: it has no config.json from an earlier run")
        app = read_json(run_file(run_dir, "config.json")).get("task_name")
    app = app if isinstance(app, App) else get_app(app)
    return train_app(app, config_file=config_file, overrides=overrides, values=values, run_dir=run_dir,
                     resume=resume, quiet=quiet)  # fmt: skip


# -----------------------------------------------------------------------------
# the command: `rnnkit train NAME`


class _TrainHelp(argparse.Action):
    """``--help``: the usage, and after a TASK (``rnnkit train text --help``), that task's settings
    with their defaults."""

    def __init__(self, option_strings, dest=argparse.SUPPRESS, default=argparse.SUPPRESS, help=None):
        super().__init__(option_strings, dest=dest, default=default, nargs=0, help=help)

    def __call__(self, parser, namespace, values, option_string=None):
        parser.print_help()
        task = getattr(namespace, "task", None)
        if task:
            print(f"\nsettings of {task}, with their defaults (set any as --SECTION.NAME=VALUE):")
            print(settings_help(get_app(task)))
        parser.exit()


def _train_arguments(parser: argparse.ArgumentParser) -> None:
    tasks = "\n".join(f"  {app.name:<10} {app.help}" for app in APPS)
    parser.description += f"\n\ntasks:\n{tasks}"
    parser.add_argument("task", nargs="?", choices=[app.name for app in APPS], metavar="TASK",
                        help="what to train (omit with --resume)")
    parser.add_argument("--config", metavar="FILE", help="settings file (YAML or JSON) with task/model/train sections")
    parser.add_argument("--run-dir", metavar="DIR",
                        help="where the run is written (default: runs/TASK-TIMESTAMP)")
    parser.add_argument("--resume", action="store_true", help="continue the interrupted run in --run-dir")
    parser.add_argument("--quiet", action="store_true", help="no progress output")
    flags = {}
    for app in APPS:
        for flag, setting in app.arguments.items():
            flags.setdefault(flag, []).append(f"{app.name}: {setting}")
    for flag, uses in flags.items():
        parser.add_argument(flag, dest="task_" + flag.lstrip("-").replace("-", "_"), metavar="VALUE",
                            help="sets " + "; ".join(uses))
    parser.epilog += ("\n\nAny setting can be changed as --SECTION.NAME=VALUE, e.g. --train.lr=3e-3,"
                      " --model.encoder.hidden_size=256, --task.length=200."
                      " 'rnnkit train TASK --help' lists a task's settings and defaults.")


def _train(args: argparse.Namespace) -> int:
    values = {}
    for key, value in vars(args).items():
        if key.startswith("task_") and value is not None:
            flag = "--" + key[len("task_"):].replace("_", "-")
            arguments = get_app(args.task).arguments if args.task else {}
            if flag not in arguments:
                raise ValueError(f"{flag} is not an option of task {args.task!r}")
            values[arguments[flag]] = RawValue(value)  # typed by the setting: --horizon 12 is an int
    outcome = train(args.task, config_file=args.config, overrides=args.overrides, values=values,
                    run_dir=args.run_dir, resume=args.resume, quiet=args.quiet)  # fmt: skip
    result = outcome.result
    if outcome.report:
        print(outcome.report)
    print(f"{result.steps} steps in {result.seconds / 60:.1f} min, stopped by {result.stopped_by};"
          f" run directory: {outcome.run_dir} (summary.md, metrics.jsonl, plots/loss.png)")
    return 0


TRAIN = Command(
    help="train a model on a task; settings from a file and --section.name=value overrides",
    example="rnnkit train adding --task.length=100 --model.encoder.cell=gru --train.max_minutes=5",
    add_arguments=_train_arguments,
    run=_train,
    overrides=True,
    help_action=_TrainHelp,
)


# -----------------------------------------------------------------------------
# `rnnkit evaluate RUN_DIR [--data FILE]`


def evaluate(run_dir: str | Path, data: str | Path | None = None) -> tuple[dict[str, Any], str]:
    """The trained run's figures: on its own held-out data (the app's ``evaluate``, as training
    reported them), or on every example of ``data`` (``evaluate_file``). Writes nothing. Returns
    the results and the text to print."""
    run_dir = Path(run_dir)
    if not (run_dir / "config.json").is_file():
        raise FileNotFoundError(f"{run_dir} is not a run directory: it has no config.json")
    app = get_app(read_json(run_file(run_dir, "config.json")).get("task_name"))
    run = Run.from_dir(run_dir, app)
    if data is None:
        results = app.evaluate(run)
        return results, app.report(run, results)
    if not Path(data).is_file():
        raise FileNotFoundError(f"--data {data} does not exist")
    results = app.evaluate_file(run, data)
    lines = [f"{app.name} run {run_dir} on {data}:"]
    for key, value in results.items():
        lines.append(f"  {key}: {_shown(value)}")
    return results, "\n".join(lines)


def _shown(value: Any) -> str:
    if isinstance(value, float):
        return f"{value:.4f}"
    if isinstance(value, dict):
        return ", ".join(f"{k} {_shown(v)}" for k, v in value.items())
    return str(value)


def _evaluate_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("run_dir", metavar="RUN_DIR", help="a run directory of 'rnnkit train'")
    parser.add_argument("--data", metavar="FILE", help="score every example of FILE, in the format the app trained on"
                                                       " (default: the run's own held-out data)")
    parser.add_argument("--json", metavar="FILE", help="also write the results as JSON to FILE")


def _evaluate(args: argparse.Namespace) -> int:
    check_output_path(args.json, "--json")
    results, text = evaluate(args.run_dir, args.data)
    with closed_stdout_is_fine():
        print(text, flush=True)
    if args.json:
        write_json(args.json, finite(results))
    return 0


EVALUATE = Command(
    help="score a trained run: on its own held-out data, or on every example of a new file (--data)",
    example="rnnkit evaluate runs/classify-20261122-101500 --data new_reviews.csv --json scores.json",
    add_arguments=_evaluate_arguments,
    run=_evaluate,
)
