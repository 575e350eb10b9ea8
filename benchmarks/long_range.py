"""The longest lag each cell solves within a fixed budget of optimizer steps.

For each cell, train on a generated long-range task at increasing lengths and stop the cell's
ladder at its first failure. The budget is counted in steps, not seconds, so a run repeats on
any machine up to float rounding (one intra-op thread, fixed seeds); only the wall times in the
report are the machine's. Every ``eval_every`` steps the model is scored on a held-out set; the first score
that passes ends the attempt early ("steps to solve"), and an attempt that never passes within
``steps`` is a failure.

- adding problem (Hochreiter & Schmidhuber 1997): solved when the validation MSE is below
  ``solved_mse`` (0.01, 1/16 of the 0.167 of always predicting 1.0);
- copy memory (Arjovsky et al. 2016): solved when the recall accuracy of the ten symbols is at
  least ``solved_accuracy`` (0.99).

Writes ``long_range.json`` (settings, machine, every attempt) and ``long_range.md`` (the table)
to ``--out``, rewritten after every attempt so an interrupted run keeps what it measured.

    PYTHONPATH=src python benchmarks/long_range.py --out runs/long-range
    PYTHONPATH=src python benchmarks/long_range.py --cells rnn_tanh,lstm,gru,mingru --out runs/long-range-adding

The second is the table in docs/long-range.md: 27.5 min on a 2-core VM shared with other jobs.
minGRU and minLSTM cost two to three times the LSTM per step on a CPU.
    PYTHONPATH=src python benchmarks/long_range.py --task copy --lengths 10,20,50 --out runs/long-range-copy
"""

from __future__ import annotations

import argparse
import math
import os
import platform
import sys
import time
from dataclasses import asdict, dataclass, field

import torch

from rnnkit._io import atomic_write_text, write_json
from rnnkit.apps import get_app
from rnnkit.apps.longrange import AddingConfig, CopyConfig
from rnnkit.data.synthetic import ADDING_BASELINE_MSE
from rnnkit.layers import LAYERS
from rnnkit.training import Trainer, TrainConfig

# -----------------------------------------------------------------------------
# settings


@dataclass(frozen=True)
class Budget:
    """What every attempt gets, whatever the cell and the length."""

    task: str = "adding"
    cells: tuple[str, ...] = ("rnn_tanh", "lstm", "gru", "mingru", "minlstm")
    lengths: tuple[int, ...] = (10, 25, 50, 100, 200, 400)  # adding: T; copy: the lag
    steps: int = 2000  # optimizer steps, the most an attempt may take
    batch_size: int = 64
    hidden_size: int = 64
    lr: float = 1e-2  # Adam (the demo's rate; 3e-3 took about twice the steps in a pilot at T=200)
    clip_norm: float = 1.0
    eval_every: int = 250
    train_size: int = 20_000
    val_size: int = 1_000
    solved_mse: float = 0.01  # adding
    solved_accuracy: float = 0.99  # copy
    seed: int = 0
    threads: int = 1


@dataclass
class Attempt:
    cell: str
    length: int
    solved: bool
    steps_to_solve: int | None
    steps: int  # steps run
    val_loss: float  # at the last evaluation
    val_accuracy: float | None  # copy only
    seconds: float
    parameters: int
    curve: list[dict[str, float]] = field(default_factory=list)  # every evaluation


class _Solved(Exception):
    """Raised from the trainer's callback to end an attempt once it passes."""


# -----------------------------------------------------------------------------
# one attempt: one cell at one length


def run_attempt(budget: Budget, cell: str, length: int) -> Attempt:
    task = get_app(budget.task)
    if budget.task == "adding":
        task_config = AddingConfig(length=length, train_size=budget.train_size, val_size=budget.val_size,
                                   batch_size=budget.batch_size, solved_mse=budget.solved_mse)  # fmt: skip
    else:
        task_config = CopyConfig(lag=length, train_size=budget.train_size, val_size=budget.val_size,
                                 batch_size=budget.batch_size, solved_accuracy=budget.solved_accuracy)  # fmt: skip
    torch.manual_seed(budget.seed)  # the model's initial weights, as `rnnkit train` does
    prepared = task.prepare(task_config, {"encoder": {"cell": cell, "hidden_size": budget.hidden_size}}, budget.seed)
    epochs = math.ceil(budget.steps / len(prepared.train))
    config = TrainConfig(max_steps=budget.steps, max_epochs=epochs, lr=budget.lr, clip_norm=budget.clip_norm,
                         seed=budget.seed, device="cpu", log_every=budget.eval_every)  # fmt: skip

    curve: list[dict[str, float]] = []

    def passed(metrics: dict[str, float]) -> bool:
        if budget.task == "adding":
            return metrics["val_loss"] < budget.solved_mse
        return metrics["val_accuracy"] >= budget.solved_accuracy

    def evaluate(trainer: Trainer, step: int) -> None:
        # the trainer gets no validation set: this callback is the only evaluation
        if step % budget.eval_every and step != budget.steps:
            return
        metrics = trainer.evaluate(prepared.val)
        curve.append({"step": step, **metrics})
        if passed(metrics):
            raise _Solved

    trainer = Trainer(prepared.model, prepared.objective, config, run_dir=None, quiet=True, callbacks=[evaluate])
    started = time.perf_counter()
    try:
        trainer.fit(prepared.train)
        solved = False
    except _Solved:
        solved = True
    seconds = time.perf_counter() - started
    last = curve[-1]
    return Attempt(
        cell=cell, length=length, solved=solved, steps_to_solve=int(last["step"]) if solved else None,
        steps=int(last["step"]), val_loss=last["val_loss"], val_accuracy=last.get("val_accuracy"),
        seconds=seconds, parameters=sum(p.numel() for p in prepared.model.parameters()), curve=curve,
    )  # fmt: skip


# -----------------------------------------------------------------------------
# report


def machine() -> dict[str, object]:
    return {
        "platform": platform.platform(),
        "processor": platform.processor() or platform.machine(),
        "cpu_count": os.cpu_count(),
        "python": platform.python_version(),
        "torch": torch.__version__,
        "threads": torch.get_num_threads(),
    }


def format_table(budget: Budget, attempts: list[Attempt]) -> str:
    """Markdown: one row per cell, the longest length solved, then each attempt's score."""
    metric = "val MSE" if budget.task == "adding" else "recall accuracy"
    name = "T" if budget.task == "adding" else "lag"
    header = ["cell", "parameters", f"longest {name} solved", *(f"{name}={n}" for n in budget.lengths), "time"]
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    for cell in budget.cells:
        mine = {a.length: a for a in attempts if a.cell == cell}
        if not mine:
            continue
        solved = [n for n, a in mine.items() if a.solved]
        cells = []
        for n in budget.lengths:
            a = mine.get(n)
            if a is None:
                cells.append("--")
                continue
            score = f"{a.val_loss:.4f}" if budget.task == "adding" else f"{a.val_accuracy:.1%}"
            cells.append(f"{score} at {a.steps_to_solve}" if a.solved else f"{score} (failed)")
        seconds = sum(a.seconds for a in mine.values())
        row = [cell, f"{next(iter(mine.values())).parameters:,}", str(max(solved)) if solved else "none", *cells,
               f"{seconds:.0f} s"]  # fmt: skip
        lines.append("| " + " | ".join(row) + " |")
    note = (f"Each entry: {metric} at the first evaluation that passed and the step it came at, or the"
            f" score after {budget.steps} steps (failed); -- not tried (the ladder stops at a failure).")  # fmt: skip
    return "\n".join(lines) + "\n\n" + note + "\n"


def write_report(out: str, budget: Budget, attempts: list[Attempt], started: float, done: bool) -> None:
    data = {
        "budget": asdict(budget),
        "machine": machine(),
        "complete": done,
        "wall_seconds": round(time.perf_counter() - started, 1),
        "longest_solved": {
            cell: max((a.length for a in attempts if a.cell == cell and a.solved), default=None)
            for cell in budget.cells
            if any(a.cell == cell for a in attempts)
        },
        "attempts": [asdict(a) for a in attempts],
    }
    write_json(os.path.join(out, "long_range.json"), data)
    atomic_write_text(os.path.join(out, "long_range.md"), format_table(budget, attempts))


# -----------------------------------------------------------------------------
# the ladder


def parse_args(argv: list[str] | None) -> tuple[Budget, str]:
    default = Budget()
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--task", choices=["adding", "copy"], default=default.task)
    parser.add_argument("--cells", default=",".join(default.cells), help="comma-separated registered cells")
    parser.add_argument("--lengths", default=None, help="comma-separated, increasing (default adding: "
                        f"{','.join(map(str, default.lengths))}; copy: 10,20,50)")  # fmt: skip
    for name in ("steps", "batch_size", "hidden_size", "eval_every", "train_size", "val_size", "seed"):
        parser.add_argument(f"--{name.replace('_', '-')}", type=int, default=getattr(default, name))
    parser.add_argument("--lr", type=float, default=default.lr)
    parser.add_argument("--out", default=f"runs/long-range-{time.strftime('%Y%m%d-%H%M%S')}")
    args = parser.parse_args(argv)
    lengths = args.lengths or ("10,20,50" if args.task == "copy" else ",".join(map(str, default.lengths)))
    try:
        lengths = tuple(int(n) for n in lengths.split(","))
    except ValueError:
        parser.error(f"--lengths must be comma-separated integers, got {args.lengths!r}")
    if list(lengths) != sorted(set(lengths)) or lengths[0] < 1:
        parser.error(f"--lengths must be increasing positive integers, got {args.lengths}")
    unknown = [c for c in args.cells.split(",") if c not in LAYERS]
    if unknown:
        parser.error(f"--cells must be among {', '.join(LAYERS)}, got {', '.join(unknown)}")
    budget = Budget(task=args.task, cells=tuple(args.cells.split(",")), lengths=lengths, steps=args.steps,
                    batch_size=args.batch_size, hidden_size=args.hidden_size, lr=args.lr,
                    eval_every=args.eval_every, train_size=args.train_size, val_size=args.val_size,
                    seed=args.seed)  # fmt: skip
    return budget, args.out


def main(argv: list[str] | None = None) -> int:
    budget, out = parse_args(argv)
    torch.set_num_threads(budget.threads)  # the same numbers on any machine; see CompareConfig.threads
    os.makedirs(out, exist_ok=True)
    started = time.perf_counter()
    attempts: list[Attempt] = []
    print(f"{budget.task}: {', '.join(budget.cells)} at {budget.lengths}, at most {budget.steps} steps of batch"
          f" {budget.batch_size}, hidden {budget.hidden_size}, Adam lr {budget.lr}; writing {out}", flush=True)
    for cell in budget.cells:
        for length in budget.lengths:
            attempt = run_attempt(budget, cell, length)
            attempts.append(attempt)
            write_report(out, budget, attempts, started, done=False)
            score = f"val MSE {attempt.val_loss:.4f} ({attempt.val_loss / ADDING_BASELINE_MSE:.1%} of baseline)" \
                if budget.task == "adding" else f"recall accuracy {attempt.val_accuracy:.1%}"
            verdict = f"solved at step {attempt.steps_to_solve}" if attempt.solved else "failed"
            print(f"{cell:>9} {length:>4}: {score}, {verdict}, {attempt.seconds:.0f} s", flush=True)
            if not attempt.solved:
                break
    write_report(out, budget, attempts, started, done=True)
    print(format_table(budget, attempts))
    return 0


if __name__ == "__main__":
    sys.exit(main())
