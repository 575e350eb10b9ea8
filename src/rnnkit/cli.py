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
    overrides: bool = False  # accepts --section.name=value settings, passed as args.overrides
    help_action: type[argparse.Action] | None = None  # -h/--help in place of argparse's


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
        if name in COMMANDS:
            raise ValueError(f"subcommand {name!r} is already registered")
        COMMANDS[name] = Command(help=help, add_arguments=add_arguments, run=run, example=example,
                                 overrides=overrides, help_action=help_action)
        return run

    return register


# -----------------------------------------------------------------------------
# subcommands


def _demo_arguments(parser: argparse.ArgumentParser) -> None:
    from rnnkit.tasks.compare import DemoConfig

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


def _text_demo_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--minutes", type=float, default=3.0, help="training time (default: %(default)s)")
    parser.add_argument("--run-dir", metavar="DIR", default=None,
                        help="where the run is written (default: runs/demo-TIMESTAMP)")
    parser.add_argument("--seed", type=int, default=0, help="seed (default: %(default)s)")
    parser.add_argument("--quiet", action="store_true", help="no progress output")


@command(
    "demo",
    help="the main job: train a character language model on text shipped with Python, then write a sample",
    example="rnnkit demo --minutes 3",
    add_arguments=_text_demo_arguments,
)
def _text_demo(args: argparse.Namespace) -> int:
    import time

    from rnnkit.tasks.runner import train_task

    if not args.minutes > 0:
        raise ValueError(f"minutes must be a positive number, got {args.minutes}")
    run_dir = args.run_dir or f"runs/demo-{time.strftime('%Y%m%d-%H%M%S')}"
    if not args.quiet:
        print(f"rnnkit demo: a 2-layer LSTM character model on Python's own documentation text,"
              f" {args.minutes:g} min of training on {_threads()} CPU thread(s); then a sample.",
              file=sys.stderr, flush=True)
    overrides = [f"train.max_minutes={args.minutes}", f"train.seed={args.seed}", "train.lr=3e-3",
                 "train.schedule=constant", "train.warmup_steps=50", "train.eval_every=200",
                 "model.encoder.hidden_size=256", "task.bptt=64", "task.batch_size=32",
                 "task.sample_prime=The ", "task.sample_length=300"]  # fmt: skip
    outcome = train_task("text", overrides=overrides, run_dir=run_dir, quiet=args.quiet)
    print(outcome.report)
    print(f"\nrun directory: {outcome.run_dir}\n  summary.md, metrics.jsonl, plots/loss.png, model.safetensors\n"
          f"more text: rnnkit generate {outcome.run_dir} --prime 'The ' --length 300")
    return 0


def _threads() -> int:
    import torch

    return torch.get_num_threads()


@command(
    "compare",
    help="train an LSTM and a tanh RNN side by side on the adding problem",
    example="rnnkit compare --length 50 --steps 500 --seed 1",
    add_arguments=_demo_arguments,
)
def _compare(args: argparse.Namespace) -> int:
    from rnnkit.tasks.compare import DemoConfig, format_table, run_demo

    config = DemoConfig(length=args.length, steps=args.steps,
                        hidden_size=args.hidden_size, seed=args.seed)
    if not args.quiet:
        print(f"adding problem, T={config.length}: LSTM vs tanh RNN, hidden {config.hidden_size}, "
              f"{config.steps} steps of batch {config.batch_size} each "
              f"(baseline MSE of predicting 1.0: 0.167)", file=sys.stderr, flush=True)
    results = run_demo(config, progress="none" if args.quiet else "auto")
    print(format_table(results))
    return 0


class _TrainHelp(argparse.Action):
    """``--help``: the usage, and after a TASK (``rnnkit train text --help``), that task's settings
    with their defaults."""

    def __init__(self, option_strings, dest=argparse.SUPPRESS, default=argparse.SUPPRESS, help=None):
        super().__init__(option_strings, dest=dest, default=default, nargs=0, help=help)

    def __call__(self, parser, namespace, values, option_string=None):
        from rnnkit.tasks.runner import settings_help

        parser.print_help()
        task = getattr(namespace, "task", None)
        if task:
            print(f"\nsettings of {task}, with their defaults (set any as --SECTION.NAME=VALUE):")
            print(settings_help(task))
        parser.exit()


def _train_arguments(parser: argparse.ArgumentParser) -> None:
    from rnnkit.tasks import TASKS

    tasks = "\n".join(f"  {name:<10} {task.help}" for name, task in TASKS.items())
    parser.description += f"\n\ntasks:\n{tasks}"
    parser.add_argument("task", nargs="?", choices=list(TASKS), metavar="TASK",
                        help="what to train (omit with --resume)")
    parser.add_argument("--config", metavar="FILE", help="settings file (YAML or JSON) with task/model/train sections")
    parser.add_argument("--run-dir", metavar="DIR",
                        help="where the run is written (default: runs/TASK-TIMESTAMP)")
    parser.add_argument("--resume", action="store_true", help="continue the interrupted run in --run-dir")
    parser.add_argument("--quiet", action="store_true", help="no progress output")
    flags = {}
    for name, task in TASKS.items():
        for flag, setting in task.arguments.items():
            flags.setdefault(flag, []).append(f"{name}: {setting}")
    for flag, uses in flags.items():
        parser.add_argument(flag, dest="task_" + flag.lstrip("-").replace("-", "_"), metavar="VALUE",
                            help="sets " + "; ".join(uses))
    parser.epilog += ("\n\nAny setting can be changed as --SECTION.NAME=VALUE, e.g. --train.lr=3e-3,"
                      " --model.encoder.hidden_size=256, --task.length=200."
                      " 'rnnkit train TASK --help' lists a task's settings and defaults.")


@command(
    "train",
    help="train a model on a task; settings from a file and --section.name=value overrides",
    example="rnnkit train adding --task.length=100 --model.encoder.cell=gru --train.max_minutes=5",
    add_arguments=_train_arguments,
    overrides=True,
    help_action=_TrainHelp,
)
def _train(args: argparse.Namespace) -> int:
    from rnnkit.config import RawValue
    from rnnkit.tasks import TASKS
    from rnnkit.tasks.runner import train_task

    values = {}
    for key, value in vars(args).items():
        if key.startswith("task_") and value is not None:
            flag = "--" + key[len("task_"):].replace("_", "-")
            arguments = TASKS[args.task].arguments if args.task else {}
            if flag not in arguments:
                raise ValueError(f"{flag} is not an option of task {args.task!r}")
            values[arguments[flag]] = RawValue(value)  # typed by the setting: --horizon 12 is an int
    outcome = train_task(args.task, config_file=args.config, overrides=args.overrides, values=values,
                         run_dir=args.run_dir, resume=args.resume, quiet=args.quiet)
    result = outcome.result
    if outcome.report:
        print(outcome.report)
    print(f"{result.steps} steps in {result.seconds / 60:.1f} min, stopped by {result.stopped_by};"
          f" run directory: {outcome.run_dir} (summary.md, metrics.jsonl, plots/loss.png)")
    return 0


def _generate_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("run_dir", metavar="RUN_DIR", help="a run directory of 'rnnkit train text'")
    parser.add_argument("--prime", default="\n", help="text the model reads before it writes (default: a newline)")
    parser.add_argument("--length", type=int, default=500, help="tokens to generate (default: %(default)s)")
    parser.add_argument("--temperature", type=float, default=0.8,
                        help="sampling temperature; 0 is greedy (default: %(default)s)")
    parser.add_argument("--top-k", type=int, default=None, help="sample among the k most likely tokens")
    parser.add_argument("--top-p", type=float, default=None, help="sample within the smallest set of mass p")
    parser.add_argument("--seed", type=int, default=None, help="seed for reproducible samples")


@command(
    "generate",
    help="write text with a trained text model",
    example="rnnkit generate runs/text-20261122-101500 --prime 'ROMEO:' --length 300 --temperature 0.7",
    add_arguments=_generate_arguments,
)
def _generate(args: argparse.Namespace) -> int:
    from rnnkit.tasks.text import generate_text

    started = False

    def show(piece: str) -> None:
        nonlocal started
        if not started:  # the prime appears once the model has loaded and begun to write
            sys.stdout.write(args.prime)
            started = True
        sys.stdout.write(piece)
        sys.stdout.flush()

    generate_text(args.run_dir, prime=args.prime, length=args.length, temperature=args.temperature,
                  top_k=args.top_k, top_p=args.top_p, seed=args.seed, on_text=show)  # fmt: skip
    sys.stdout.write("\n")
    return 0


def _predict_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("run_dir", metavar="RUN_DIR", help="a run directory of 'rnnkit train classify'")
    parser.add_argument("file", metavar="FILE", nargs="?", default="-",
                        help="one example per line, or a .csv with the training text column;"
                             " '-' or omitted: lines from stdin, each answered as it arrives")


@command(
    "predict",
    help="label text with a trained classifier; prints label and probability per example (TSV)",
    example="rnnkit predict runs/classify-20261122-101500 reviews.txt",
    add_arguments=_predict_arguments,
)
def _predict(args: argparse.Namespace) -> int:
    from rnnkit.tasks.classify import Classifier, read_texts

    classifier = Classifier.load(args.run_dir)
    streaming = args.file == "-"
    texts = sys.stdin if streaming else read_texts(args.file, classifier.text_column)
    try:
        for label, probability in classifier.predict(texts, batch_size=1 if streaming else 256):
            sys.stdout.write(f"{label}\t{probability:.4f}\n")
            if streaming:
                sys.stdout.flush()
        sys.stdout.flush()
    except BrokenPipeError:  # the reader stopped early (| head): not an error; silence the exit-time flush
        import os

        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
    return 0


def _gradients_arguments(parser: argparse.ArgumentParser) -> None:
    from rnnkit.tasks.gradients import GradientsConfig

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


@command(
    "gradients",
    help="train a tanh RNN, an LSTM and a GRU on a long-range task; plot and tabulate how their gradients decay",
    example="rnnkit gradients --length 100 --steps 1000 --cells rnn_tanh,lstm,gru --out runs/gradients",
    add_arguments=_gradients_arguments,
)
def _gradients(args: argparse.Namespace) -> int:
    import time

    from rnnkit.tasks.gradients import GradientsConfig, format_table, output_dir, run_gradients, write_report

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


def _bench_arguments(parser: argparse.ArgumentParser) -> None:
    from rnnkit.bench import add_arguments

    add_arguments(parser)


@command(
    "bench",
    help="time rnnkit's layers against torch.nn and a plain autograd loop, side by side",
    example="rnnkit bench --quick --json bench.json",
    add_arguments=_bench_arguments,
)
def _bench(args: argparse.Namespace) -> int:
    from rnnkit.bench import main as bench_main

    return bench_main(args)


def _forecast_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("run_dir", metavar="RUN_DIR", help="a run directory of 'rnnkit train forecast'")
    parser.add_argument("--data", metavar="FILE", help="a CSV with the run's columns (default: the training series)")
    parser.add_argument("--plot", metavar="PNG", help="where the plot goes (default: RUN_DIR/forecast.png)")


@command(
    "forecast",
    help="forecast the steps after a series with a trained forecaster; prints CSV with intervals, writes a PNG",
    example="rnnkit forecast runs/forecast-20261122-101500 --data sales.csv",
    add_arguments=_forecast_arguments,
)
def _forecast(args: argparse.Namespace) -> int:
    from pathlib import Path

    from rnnkit.tasks.forecast import PLOT_FILE, forecast_run

    plot = args.plot or str(Path(args.run_dir) / PLOT_FILE)
    result = forecast_run(args.run_dir, args.data, plot=plot)
    sys.stdout.write(result.to_csv(float_format="%.4f"))
    print(f"plot: {plot}", file=sys.stderr)
    return 0


def _detect_arguments(parser: argparse.ArgumentParser) -> None:
    from rnnkit.tasks.anomaly import THRESHOLDS
    from rnnkit.tasks.detect import DETECTORS

    parser.add_argument("run_dir", metavar="RUN_DIR", nargs="?",
                        help="a run directory of 'rnnkit train detect' (default: a detector that needs no training)")
    parser.add_argument("--data", metavar="FILE",
                        help="a CSV with time and value columns (default: numbers on stdin, one a line, scored as they arrive)")
    parser.add_argument("--detector", choices=DETECTORS, default=None,
                        help="without RUN_DIR: the windowed Gaussian (default), or an LSTM fitted on the first 15%% of"
                             " the --data file")
    parser.add_argument("--threshold-method", choices=list(THRESHOLDS), default=None,
                        help="how an LSTM's errors are thresholded (default: the run's; 'gaussian' for --detector lstm)")
    parser.add_argument("--time-column", default=None, help="(default: the run's, or 'timestamp')")
    parser.add_argument("--target", default=None, help="(default: the run's, or 'value')")
    parser.add_argument("--threshold", type=float, default=None,
                        help="without RUN_DIR: the z above which a point is flagged (default: 4)")
    parser.add_argument("--plot", metavar="PNG",
                        help="where the plot of a --data file goes (default: RUN_DIR/detections.png; none without RUN_DIR)")


@command(
    "detect",
    help="flag anomalies in a series (CSV, or numbers streamed on stdin) with a trained or an untrained detector;"
         " prints CSV with scores",
    example="rnnkit detect runs/detect-20261123-013000 --data cpu.csv",
    add_arguments=_detect_arguments,
)
def _detect(args: argparse.Namespace) -> int:
    from pathlib import Path

    from rnnkit.tasks import detect

    if args.run_dir is not None:
        for flag, value in (("--detector", args.detector), ("--threshold", args.threshold)):
            if value is not None:
                raise ValueError(f"{flag} applies without RUN_DIR; a trained detector keeps its own settings")
        if args.data is None:
            from rnnkit.tasks.anomaly import RNNDetector

            scorer = RNNDetector.load(args.run_dir, threshold=args.threshold_method).scorer()
            return _stream_scores(scorer)
        plot = args.plot or str(Path(args.run_dir) / detect.PLOT_FILE)
        result = detect.detect_run(args.run_dir, args.data, time_column=args.time_column, target=args.target,
                                   threshold=args.threshold_method, plot=plot)  # fmt: skip
        sys.stdout.write(result.to_csv(float_format="%.4f"))
        print(f"{int(result['anomaly'].sum())} of {len(result)} rows flagged; plot: {plot}", file=sys.stderr)
        return 0
    detector = args.detector or "gaussian"
    threshold = 4.0 if args.threshold is None else args.threshold
    if args.threshold_method is not None and detector != "lstm":
        raise ValueError("--threshold-method applies to an LSTM detector: give RUN_DIR or --detector lstm")
    if args.data is None:
        if detector != "gaussian":
            raise ValueError("numbers on stdin are scored by the windowed Gaussian or a trained detector (RUN_DIR);"
                             " an LSTM needs training first: rnnkit train detect --data FILE.csv")
        from rnnkit.tasks.anomaly import WindowedGaussian

        return _stream_scores(WindowedGaussian(threshold=threshold))
    result = detect.detect_csv(args.data, detector=detector, time_column=args.time_column or "timestamp",
                               target=args.target or "value", threshold=threshold,
                               method=args.threshold_method or "gaussian", plot=args.plot)  # fmt: skip
    sys.stdout.write(result.to_csv(float_format="%.4f"))
    return 0


def _stream_scores(scorer) -> int:
    """Numbers on stdin through ``scorer``; one ``value,score,anomaly`` line out per line in."""
    from rnnkit.tasks.detect import detect_lines

    try:
        detect_lines(sys.stdin, sys.stdout, scorer, warnings=sys.stderr)
    except BrokenPipeError:  # the reader stopped early (| head): not an error; silence the exit-time flush
        import os

        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
    return 0


# -----------------------------------------------------------------------------
# parser and entry point


def _split_overrides(extras: list[str]) -> tuple[list[str], list[str]]:
    """``--a.b=c`` and ``--a.b c`` tokens as ``a.b=c`` overrides; everything else is left over."""
    overrides, rest, i = [], [], 0
    while i < len(extras):
        token = extras[i]
        key = token[2:].split("=", 1)[0]
        if token.startswith("--") and "." in key:
            if "=" in token:
                overrides.append(token[2:])
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
        sub = subparsers.add_parser(
            name,
            help=cmd.help,
            description=cmd.help[:1].upper() + cmd.help[1:] + ".",
            epilog=f"example:\n  {cmd.example}",
            formatter_class=argparse.RawDescriptionHelpFormatter,
            add_help=cmd.help_action is None,
        )
        if cmd.help_action is not None:
            sub.add_argument("-h", "--help", action=cmd.help_action, help="show this help message and exit")
        cmd.add_arguments(sub)
        sub.set_defaults(_run=cmd.run)
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
            if rest or (overrides and not COMMANDS[args.command].overrides):
                parser.error(f"unrecognized arguments: {' '.join(rest or ['--' + o for o in overrides])}")
        except SystemExit as exit_:  # --help, --version and usage errors
            return exit_.code if isinstance(exit_.code, int) else 0 if exit_.code is None else 2
        args.overrides = overrides
        return args._run(args)
    except (ValueError, TypeError, FileNotFoundError) as error:
        message = " ".join(str(error).splitlines()) or type(error).__name__
        print(f"rnnkit: error: {message}", file=sys.stderr)
        return 2
    except _interrupted() as interrupted:
        print(f"rnnkit: {interrupted}", file=sys.stderr)
        return 130
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
