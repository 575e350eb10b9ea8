r"""``rnnkit gradients``: how fast the gradient fades with distance, per cell, before and after training.

Each cell (by default a tanh RNN, an LSTM and a GRU) gets the same model around it, the same
hidden size, the same seed and the same batches of a generated long-range task (the adding problem,
or copy memory). For each one, twice -- at initialisation and after a fixed number of training
steps -- on one fixed batch of held-out sequences:

* the hidden-state gradient :math:`\lVert \partial L / \partial h_t \rVert` against the distance
  :math:`d = T - 1 - t` from the last step, as ratios :math:`r(d)` to :math:`d = 0`, and the
  per-step decay rate fitted to them (:meth:`~rnnkit.training.diagnostics.GradientFlow.decay`;
  < 1 vanishing, > 1 exploding);
* the mean and largest spectral norm of the one-step state Jacobian
  :math:`\partial s_t / \partial s_{t-1}` along the same sequences
  (:func:`~rnnkit.training.recurrent_jacobian_norms`), the factor each step multiplies the
  gradient by at most (Pascanu et al. 2013, sec. 2.1);
* the task's validation score (MSE for adding, recall accuracy for copy).

Nothing in the report is fixed in advance: every number comes from the run.

>>> report = run_gradients(GradientsConfig(length=6, steps=2, hidden_size=4, cells=("gru",),
...                                        train_size=64, val_size=32, probe_size=8))
>>> report.results[0].cell, len(report.results[0].before.ratios)
('gru', 6)
"""

from __future__ import annotations

import math
import numbers
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any, TextIO

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from .._io import save_figure, write_json
from .._validation import check_int_at_least
from ..apps import get_app
from ..apps.base import finite
from ..apps.longrange import AddingConfig, CopyConfig
from ..data.synthetic import adding_problem, copy_memory
from ..layers import LAYERS
from ..training import Trainer, TrainConfig, hidden_gradient_norms, recurrent_jacobian_norms

__all__ = ["GradientsConfig", "FlowMeasurement", "CellResult", "GradientsReport", "run_gradients",
           "format_table", "output_dir", "write_report"]  # fmt: skip

TASK_NAMES = ("adding", "copy")
COPY_LENGTH = 10  # symbols recalled in copy memory (the paper's K)


# -----------------------------------------------------------------------------
# configuration


@dataclass(frozen=True)
class GradientsConfig:
    """Settings of one ``rnnkit gradients`` run; the CLI sets task, length, steps, hidden_size, cells and seed."""

    task: str = "adding"
    length: int = 50  # adding: steps per sequence T; copy: the lag (sequences are lag + 20 long)
    steps: int = 1000  # training steps per cell, between the two measurements
    hidden_size: int = 64
    cells: tuple[str, ...] = ("rnn_tanh", "lstm", "gru")
    seed: int = 0  # model init, training order, data
    batch_size: int = 64
    lr: float = 1e-2  # Adam, as in `rnnkit compare` and benchmarks/long_range.py
    clip_norm: float = 1.0
    train_size: int = 10_000
    val_size: int = 1_000
    probe_size: int = 256  # held-out sequences the gradients are measured on
    jacobian_sequences: int = 8  # of those, the ones the Jacobians are taken along
    threads: int = 1  # the same numbers on any machine, and no busy-waiting on a shared CPU

    def __post_init__(self) -> None:
        if self.task not in TASK_NAMES:
            raise ValueError(f"task must be one of {', '.join(map(repr, TASK_NAMES))}, got {self.task!r}")
        check_int_at_least("length", self.length, 2 if self.task == "adding" else 1)
        for name in ("steps", "hidden_size", "batch_size", "train_size", "val_size", "probe_size",
                     "jacobian_sequences", "threads"):  # fmt: skip
            check_int_at_least(name, getattr(self, name), 1)
        check_int_at_least("seed", self.seed, 0)
        if self.jacobian_sequences > self.probe_size:
            raise ValueError(f"jacobian_sequences must be at most probe_size ({self.probe_size}),"
                             f" got {self.jacobian_sequences}")  # fmt: skip
        for name in ("lr", "clip_norm"):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, numbers.Real):
                raise TypeError(f"{name} must be a number > 0, got {type(value).__name__} {value!r}")
            if not value > 0:  # also rejects NaN
                raise ValueError(f"{name} must be a number > 0, got {value!r}")
        if isinstance(self.cells, str) or not self.cells:
            raise ValueError(f"cells must be a non-empty list of cell names, got {self.cells!r}")
        for cell in self.cells:
            if cell not in LAYERS:
                raise ValueError(f"cells must be among {', '.join(map(repr, LAYERS))}, got {cell!r}")
        if len(set(self.cells)) != len(self.cells):
            raise ValueError(f"cells must not repeat, got {', '.join(self.cells)}")

    @property
    def sequence_length(self) -> int:
        """Steps each sequence has: ``T`` for adding, ``lag + 2K`` for copy memory."""
        return self.length if self.task == "adding" else self.length + 2 * COPY_LENGTH

    @property
    def distances(self) -> tuple[int, ...]:
        """The distances the table shows: 1, 10, 50 and the farthest, those the sequences have."""
        farthest = self.sequence_length - 1
        return tuple(sorted({d for d in (1, 10, 50) if d < farthest} | {farthest}))


# -----------------------------------------------------------------------------
# results


@dataclass(frozen=True)
class FlowMeasurement:
    """One cell at one moment (initialisation or trained)."""

    norms: list[float]  # ||dL/dh|| by distance d = 0 .. T-1 from the last step (RMS over sequences)
    ratios: list[float]  # norms / norms[0]
    rate: float  # fitted per-step factor of the ratios; NaN when it cannot be fitted
    jacobian_mean: float  # spectral norm of d s_t / d s_{t-1}, mean over steps and sequences
    jacobian_max: float
    val_loss: float  # adding: MSE; copy: cross-entropy per step
    val_accuracy: float | None  # copy: recall accuracy of the ten symbols

    def ratio(self, distance: int) -> float:
        return self.ratios[distance]


@dataclass(frozen=True)
class CellResult:
    cell: str
    parameters: int
    before: FlowMeasurement
    after: FlowMeasurement
    seconds: float  # training time


@dataclass(frozen=True)
class GradientsReport:
    config: GradientsConfig
    results: list[CellResult]

    def to_dict(self) -> dict[str, Any]:
        """Everything, as strict JSON allows (NaN becomes null)."""
        config = self.config
        return finite({
            "config": asdict(config),
            "sequence_length": config.sequence_length,
            "distances": list(config.distances),
            "cells": {
                r.cell: {
                    "parameters": r.parameters,
                    "train_seconds": round(r.seconds, 2),
                    "init": asdict(r.before),
                    "trained": asdict(r.after),
                }
                for r in self.results
            },
        })  # fmt: skip


# -----------------------------------------------------------------------------
# measuring


def _probe_loss(task: str, model_output: Any, targets: Tensor) -> Tensor:
    """The loss whose gradient is followed back: the task's own, on the steps that are scored."""
    if task == "adding":
        return F.mse_loss(model_output.squeeze(-1), targets)  # (B, 1) -> (B,)
    logits, _ = model_output  # (B, T, C)
    # only the recall window: the gradient that has to cross the lag to reach the symbols
    recall = logits[:, -COPY_LENGTH:]  # (B, K, C)
    return F.cross_entropy(recall.flatten(0, 1), targets[:, -COPY_LENGTH:].flatten())


@torch.no_grad()
def _evaluate(model: nn.Module, objective, batches) -> dict[str, float]:
    """Mean validation loss and metrics, weighted by items, as ``Trainer.evaluate`` computes them."""
    model.eval()
    totals: dict[str, float] = {}
    count = 0
    for batch in batches.epoch(0):
        out = objective(model, batch, None)
        count += out.count
        totals["loss"] = totals.get("loss", 0.0) + out.loss.item() * out.count
        for name, value in out.metrics.items():
            totals[name] = totals.get(name, 0.0) + value * out.count
    return {name: total / count for name, total in totals.items()}


def _measure(config: GradientsConfig, model: nn.Module, objective, val, probe: tuple[Tensor, Tensor]) -> FlowMeasurement:
    x, y = probe
    model.eval()  # no dropout: the same function the evaluation scores
    flow = hidden_gradient_norms(model, lambda out: _probe_loss(config.task, out, y), x)
    decay = flow.decay("encoder")  # the encoder's last layer, forward direction
    # the Jacobians follow the encoder's own inputs: the features, or the embedded tokens
    with torch.no_grad():
        features = model.input(x[: config.jacobian_sequences])  # (S, T, F)
    jacobians = recurrent_jacobian_norms(model.encoder, features)  # (num_slots, T, S)
    jacobians = jacobians[~jacobians.isnan()]
    metrics = _evaluate(model, objective, val)
    return FlowMeasurement(
        norms=decay.norms.double().tolist(),
        ratios=decay.ratios.double().tolist(),
        rate=decay.rate,
        jacobian_mean=float(jacobians.mean()),
        jacobian_max=float(jacobians.max()),
        val_loss=metrics["loss"],
        val_accuracy=metrics.get("accuracy"),
    )


# -----------------------------------------------------------------------------
# the run


def run_gradients(config: GradientsConfig = GradientsConfig(), *, stream: TextIO | None = None) -> GradientsReport:
    """Measure, train and measure again each of ``config.cells``; progress lines go to ``stream``."""
    if not isinstance(config, GradientsConfig):
        raise TypeError(f"config must be a GradientsConfig, got {type(config).__name__}")
    previous_threads = torch.get_num_threads()
    torch.set_num_threads(config.threads)
    try:
        return GradientsReport(config, [_run_cell(config, cell, stream) for cell in config.cells])
    finally:
        torch.set_num_threads(previous_threads)


def _run_cell(config: GradientsConfig, cell: str, stream: TextIO | None) -> CellResult:
    task = get_app(config.task)
    if config.task == "adding":
        task_config = AddingConfig(length=config.length, train_size=config.train_size,
                                   val_size=config.val_size, batch_size=config.batch_size)  # fmt: skip
    else:
        task_config = CopyConfig(lag=config.length, train_size=config.train_size,
                                 val_size=config.val_size, batch_size=config.batch_size)  # fmt: skip
    torch.manual_seed(config.seed)  # the initial weights; every cell starts from the same seed
    prepared = task.prepare(task_config, {"encoder": {"cell": cell, "hidden_size": config.hidden_size}}, config.seed)
    model = prepared.model
    # the probe batch has its own seed, apart from the training and validation data
    generator = torch.Generator().manual_seed(config.seed + 1_000_003)
    if config.task == "adding":
        probe = adding_problem(config.probe_size, config.length, generator=generator)
    else:
        probe = copy_memory(config.probe_size, config.length, copy_length=COPY_LENGTH, generator=generator)

    before = _measure(config, model, prepared.objective, prepared.val, probe)
    train = TrainConfig(
        max_steps=config.steps, max_epochs=math.ceil(config.steps / len(prepared.train)), lr=config.lr,
        clip_norm=config.clip_norm, seed=config.seed, device="cpu", log_every=max(1, config.steps),
    )  # fmt: skip
    result = Trainer(model, prepared.objective, train, run_dir=None, quiet=True).fit(prepared.train)
    after = _measure(config, model, prepared.objective, prepared.val, probe)

    parameters = sum(p.numel() for p in model.parameters())
    if stream is not None:
        score = _score_text(config.task, before) + " -> " + _score_text(config.task, after)
        rates = f"decay rate {before.rate:.3f} -> {after.rate:.3f}"
        print(f"{cell}: {result.steps} steps in {result.seconds:.1f} s; {score}; {rates}", file=stream, flush=True)
    return CellResult(cell, parameters, before, after, result.seconds)


def _score_text(task: str, m: FlowMeasurement) -> str:
    if task == "adding":
        return f"val MSE {m.val_loss:.4f}"
    return f"recall {m.val_accuracy:.1%}"


# -----------------------------------------------------------------------------
# report


def format_table(report: GradientsReport) -> str:
    """A plain-text table: a row per cell and moment (init, trained)."""
    config = report.config
    T = config.sequence_length
    metric = "val MSE" if config.task == "adding" else "recall"
    header = ("cell", "stage", *(f"r({d})" for d in config.distances), "rate/step", "|J| mean", "|J| max", metric)
    rows = []
    for r in report.results:
        for stage, m in (("init", r.before), (f"{config.steps} steps", r.after)):
            score = f"{m.val_loss:.4f}" if config.task == "adding" else f"{m.val_accuracy:.1%}"
            rows.append((r.cell, stage, *(f"{m.ratio(d):.2e}" for d in config.distances),
                         f"{m.rate:.3f}", f"{m.jacobian_mean:.3f}", f"{m.jacobian_max:.3f}", score))  # fmt: skip
    widths = [max(len(row[i]) for row in (header, *rows)) for i in range(len(header))]

    def line(cells: tuple[str, ...]) -> str:
        return "  ".join([cells[0].ljust(widths[0]), cells[1].ljust(widths[1]),
                          *(c.rjust(w) for c, w in zip(cells[2:], widths[2:]))]).rstrip()  # fmt: skip

    title = (f"{'adding problem, T' if config.task == 'adding' else 'copy memory, lag'}={config.length}"
             f" ({T} steps), hidden {config.hidden_size}, seed {config.seed}:"
             f" r(d) = ||dL/dh|| at distance d from the last step / at distance 0")  # fmt: skip
    rule = "  ".join("-" * w for w in widths)
    return "\n".join([title, line(header), rule, *(line(row) for row in rows)])


def output_dir(out: str | Path) -> Path:
    """Create ``out`` (and its parents) if needed; fail before a run, not after it."""
    out = Path(out)
    if out.exists() and not out.is_dir():
        raise ValueError(f"out must be a directory, got the file {str(out)!r}")
    out.mkdir(parents=True, exist_ok=True)
    return out


def write_report(report: GradientsReport, out: str | Path) -> dict[str, Path]:
    """Write ``gradient_flow.json`` and ``gradient_flow.png`` (before | after) into ``out``."""
    out = output_dir(out)
    paths = {"json": out / "gradient_flow.json", "png": out / "gradient_flow.png"}
    write_json(paths["json"], report.to_dict())
    _plot(report, paths["png"])
    return paths


def _plot(report: GradientsReport, path: Path) -> None:
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    config = report.config
    figure = Figure(figsize=(10.0, 4.2), layout="constrained")
    FigureCanvasAgg(figure)  # the Agg canvas, without pyplot's global state
    panels = figure.subplots(1, 2, sharey=True)
    for axes, stage, title in ((panels[0], "before", "at initialisation"),
                               (panels[1], "after", f"after {config.steps} training steps")):  # fmt: skip
        for r in report.results:
            m = getattr(r, stage)
            ratios = [v if v > 0 else math.nan for v in m.ratios]  # a log axis cannot show 0
            axes.semilogy(range(len(ratios)), ratios, label=f"{r.cell} (rate {m.rate:.3f})")
        axes.set_title(title)
        axes.set_xlabel("distance d from the last step (steps)")
        axes.grid(True, which="both", alpha=0.3)
        axes.legend()
    panels[0].set_ylabel(r"$\|\partial L/\partial h_{T-1-d}\| \,/\, \|\partial L/\partial h_{T-1}\|$")
    task = f"adding problem, T={config.length}" if config.task == "adding" else f"copy memory, lag {config.length}"
    figure.suptitle(f"Gradient flow through time: {task}, hidden {config.hidden_size}, seed {config.seed}")
    save_figure(figure, path, dpi=110)
