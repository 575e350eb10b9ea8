"""``rnnkit compare``: an LSTM learns the adding problem where a tanh RNN of the same width fails.

Both models read the same generated batches (``rnnkit.data.synthetic.adding_problem``),
each with a linear head on its last step's output, and are trained with the same optimizer
for the same number of steps. At the end both are scored on one held-out generated set
against the 1/6 MSE of always predicting 1.0.

>>> results = run_compare(CompareConfig(length=10, steps=3, test_size=64), progress="none")
>>> print(format_table(results))  # doctest: +SKIP
"""

from __future__ import annotations

import math
import numbers
import sys
import time
from dataclasses import dataclass
from typing import Literal, TextIO

import torch
from torch import nn

from .._validation import check_int_at_least
from ..data.synthetic import ADDING_BASELINE_MSE, adding_problem
from ..layers import LSTM, RNN

__all__ = ["CompareConfig", "CompareResult", "run_compare", "format_table"]

Progress = Literal["auto", "bar", "log", "none"]


# -----------------------------------------------------------------------------
# configuration


@dataclass(frozen=True)
class CompareConfig:
    """Settings of the comparison; the CLI's options map onto these fields."""

    length: int = 100  # steps per sequence T
    steps: int = 2000  # optimizer steps per model; the LSTM solves T=100 by ~1400 (seeds 0-3)
    hidden_size: int = 64
    batch_size: int = 64
    lr: float = 1e-2  # Adam
    clip: float = 1.0  # max global gradient norm
    test_size: int = 2000  # held-out sequences, drawn from their own seed
    seed: int = 0
    solved_mse: float = 0.01  # a model "solves" the task below this test MSE
    # One intra-op thread: the same numbers on any machine, and on a 2-core CPU a second
    # thread gains ~25% when idle but busy-waits to a crawl beside other work.
    threads: int = 1

    def __post_init__(self) -> None:
        check_int_at_least("length", self.length, 2)
        check_int_at_least("steps", self.steps, 1)
        check_int_at_least("hidden_size", self.hidden_size, 1)
        check_int_at_least("batch_size", self.batch_size, 1)
        check_int_at_least("test_size", self.test_size, 1)
        check_int_at_least("seed", self.seed, 0)
        check_int_at_least("threads", self.threads, 1)
        for name in ("lr", "clip", "solved_mse"):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, numbers.Real):
                raise TypeError(f"{name} must be a number > 0, got {type(value).__name__} {value!r}")
            if not value > 0:  # also rejects NaN
                raise ValueError(f"{name} must be a number > 0, got {value!r}")


@dataclass(frozen=True)
class CompareResult:
    model: str
    parameters: int
    train_mse: float  # mean over the last 10% of steps
    test_mse: float
    solved: bool
    seconds: float  # training time of this model alone

    @property
    def relative_mse(self) -> float:
        """Test MSE as a fraction of the predict-1.0 baseline (1.0 = learned nothing)."""
        return self.test_mse / ADDING_BASELINE_MSE


# -----------------------------------------------------------------------------
# model


class LastStepRegressor(nn.Module):
    """A recurrent layer followed by a linear head on the output of the last step."""

    def __init__(self, rnn: nn.Module, hidden_size: int) -> None:
        super().__init__()
        self.rnn = rnn
        self.head = nn.Linear(hidden_size, 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        output, _ = self.rnn(x)  # (B, T, H)
        return self.head(output[:, -1]).squeeze(-1)  # (B,)


def build_models(config: CompareConfig) -> dict[str, LastStepRegressor]:
    H = config.hidden_size
    torch.manual_seed(config.seed)
    lstm = LastStepRegressor(LSTM(2, H, batch_first=True), H)
    rnn = LastStepRegressor(RNN(2, H, nonlinearity="tanh", batch_first=True), H)
    return {"LSTM": lstm, "RNN (tanh)": rnn}


# -----------------------------------------------------------------------------
# training


class _Reporter:
    """tqdm bar on a terminal, a log line every ~10% of steps elsewhere, or nothing."""

    def __init__(self, total: int, mode: Progress, stream: TextIO) -> None:
        if mode == "auto":
            mode = "bar" if stream.isatty() else "log"
        self.mode, self.total, self.stream = mode, total, stream
        self.every = max(1, total // 10)
        self.start = time.perf_counter()
        self.bar = None
        if mode == "bar":
            from tqdm.auto import tqdm

            self.bar = tqdm(total=total, file=stream, unit="step", dynamic_ncols=True)

    def update(self, step: int, losses: dict[str, float]) -> None:
        text = "  ".join(f"{name} {loss:.4f}" for name, loss in losses.items())
        if self.bar is not None:
            self.bar.update(1)
            if step % 10 == 0 or step == self.total:
                self.bar.set_postfix_str(f"loss: {text}", refresh=False)
        elif self.mode == "log" and (step % self.every == 0 or step == self.total):
            rate = step / max(time.perf_counter() - self.start, 1e-9)
            print(f"step {step:>6}/{self.total}  loss: {text}  {rate:.1f} steps/s",
                  file=self.stream, flush=True)

    def close(self) -> None:
        if self.bar is not None:
            self.bar.close()


def run_compare(
    config: CompareConfig = CompareConfig(),
    *,
    progress: Progress = "auto",
    stream: TextIO | None = None,
) -> list[CompareResult]:
    """Train both models on the adding problem and score them on a held-out set.

    Deterministic for a given config: model init, training batches and the test set each
    come from their own seed, and ``config.threads`` fixes the order of float reductions.
    """
    if progress not in ("auto", "bar", "log", "none"):
        raise ValueError(f"progress must be one of 'auto', 'bar', 'log', 'none', got {progress!r}")
    stream = sys.stderr if stream is None else stream

    previous_threads = torch.get_num_threads()
    torch.set_num_threads(config.threads)
    try:
        return _train_and_score(config, progress, stream)
    finally:
        torch.set_num_threads(previous_threads)


def _train_and_score(config: CompareConfig, progress: Progress, stream: TextIO) -> list[CompareResult]:
    models = build_models(config)
    optimizers = {name: torch.optim.Adam(m.parameters(), lr=config.lr) for name, m in models.items()}
    train_gen = torch.Generator().manual_seed(config.seed + 1)
    test_gen = torch.Generator().manual_seed(config.seed + 2)
    x_test, y_test = adding_problem(config.test_size, config.length, generator=test_gen)

    seconds = dict.fromkeys(models, 0.0)
    tail = max(1, config.steps // 10)  # steps averaged into train_mse
    tail_loss = dict.fromkeys(models, 0.0)
    reporter = _Reporter(config.steps, progress, stream)
    try:
        for step in range(1, config.steps + 1):
            x, y = adding_problem(config.batch_size, config.length, generator=train_gen)
            losses = {}
            for name, model in models.items():  # both models see the same batch
                t0 = time.perf_counter()
                loss = nn.functional.mse_loss(model(x), y)
                optimizers[name].zero_grad(set_to_none=True)
                loss.backward()
                nn.utils.clip_grad_norm_(model.parameters(), config.clip)
                optimizers[name].step()
                seconds[name] += time.perf_counter() - t0
                losses[name] = loss.item()
                if step > config.steps - tail:
                    tail_loss[name] += losses[name] / tail
            reporter.update(step, losses)
    finally:
        reporter.close()

    results = []
    for name, model in models.items():
        model.eval()
        with torch.no_grad():
            test_mse = nn.functional.mse_loss(model(x_test), y_test).item()
        results.append(
            CompareResult(
                model=name,
                parameters=sum(p.numel() for p in model.parameters()),
                train_mse=tail_loss[name],
                test_mse=test_mse,
                solved=math.isfinite(test_mse) and test_mse < config.solved_mse,
                seconds=seconds[name],
            )
        )
    return results


# -----------------------------------------------------------------------------
# report


def format_table(results: list[CompareResult]) -> str:
    """A plain-text table of the results, one row per model."""
    header = ("model", "parameters", "test MSE", "vs baseline", "solved", "train time")
    rows = [
        (
            r.model,
            f"{r.parameters:,}",
            f"{r.test_mse:.4f}",
            f"{100 * r.relative_mse:.1f}%",
            "yes" if r.solved else "no",
            f"{r.seconds:.1f} s",
        )
        for r in results
    ]
    widths = [max(len(row[i]) for row in (header, *rows)) for i in range(len(header))]

    def line(cells: tuple[str, ...]) -> str:
        first = cells[0].ljust(widths[0])
        rest = (cell.rjust(width) for cell, width in zip(cells[1:], widths[1:]))
        return "  ".join((first, *rest))

    rule = "  ".join("-" * w for w in widths)
    return "\n".join([line(header), rule, *(line(row) for row in rows)])
