"""The long-range memory tasks as trainable tasks: ``rnnkit train adding`` and ``rnnkit train copy``."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import torch

from ..config import from_dict
from ..models import ManyToMany, ManyToManyConfig, ManyToOne, ManyToOneConfig
from ..training import SupervisedObjective, TensorBatches
from ._registry import Prepared, Task, register_task
from ..data.synthetic import ADDING_BASELINE_MSE, adding_problem, copy_memory, copy_memory_baseline


@dataclass(frozen=True)
class AddingConfig:
    """The adding problem (Hochreiter & Schmidhuber 1997): sum the two marked values of T."""

    length: int = 100
    train_size: int = 10_000
    val_size: int = 1_000
    batch_size: int = 64
    solved_mse: float = 0.01


@dataclass(frozen=True)
class CopyConfig:
    """Copy memory (Arjovsky et al. 2016): reproduce 10 symbols after ``lag`` blanks."""

    lag: int = 50
    train_size: int = 10_000
    val_size: int = 1_000
    batch_size: int = 64
    solved_accuracy: float = 0.99


def _prepare_adding(task: AddingConfig, model_settings: dict[str, Any], seed: int) -> Prepared:
    generator = torch.Generator().manual_seed(seed)
    x, y = adding_problem(task.train_size, task.length, generator=generator)
    xv, yv = adding_problem(task.val_size, task.length, generator=generator)
    settings = {**model_settings, "input": {"features": 2}, "outputs": 1, "pooling": "last"}
    model = ManyToOne(from_dict(ManyToOneConfig, settings, where="model"))

    def report(result) -> str:
        mse = result.best.get("val_loss", result.last_eval.get("val_loss"))
        if mse is None:
            return f"adding problem T={task.length}: no validation result"
        verdict = "solved" if mse is not None and mse < task.solved_mse else "not solved"
        return (f"adding problem T={task.length}: validation MSE {mse:.4f} "
                f"({mse / ADDING_BASELINE_MSE:.1%} of the 0.167 baseline): {verdict} (< {task.solved_mse})")  # fmt: skip

    return Prepared(
        model, SupervisedObjective("mse"), TensorBatches(x, y, batch_size=task.batch_size, seed=seed),
        TensorBatches(xv, yv, batch_size=max(task.batch_size, 256), shuffle=False), "samples", report,
    )  # fmt: skip


class _LastSymbols:
    """Cross-entropy over every step, accuracy over the ten recalled symbols (the score that matters)."""

    def __init__(self, copy_length: int = 10) -> None:
        self.copy_length = copy_length
        self.inner = SupervisedObjective("cross_entropy")

    def __call__(self, model, batch, state=None):
        out = self.inner(model, batch, state)
        x, y = batch
        with torch.no_grad():
            logits, _ = model(x)
            recalled = logits[:, -self.copy_length :].argmax(-1) == y[:, -self.copy_length :]
        out.metrics = {"accuracy": recalled.float().mean().item()}
        return out


def _prepare_copy(task: CopyConfig, model_settings: dict[str, Any], seed: int) -> Prepared:
    generator = torch.Generator().manual_seed(seed)
    x, y = copy_memory(task.train_size, task.lag, generator=generator)
    xv, yv = copy_memory(task.val_size, task.lag, generator=generator)
    settings = {**model_settings, "input": {"vocab_size": 10, "embedding_dim": 16}, "outputs": 10}
    model = ManyToMany(from_dict(ManyToManyConfig, settings, where="model"))

    def report(result) -> str:
        loss = result.last_eval.get("val_loss")
        accuracy = result.last_eval.get("val_accuracy")
        if loss is None or accuracy is None:
            return f"copy memory lag={task.lag}: no validation result"
        verdict = "solved" if accuracy is not None and accuracy >= task.solved_accuracy else "not solved"
        return (f"copy memory lag={task.lag}: validation loss {loss:.4f} (baseline "
                f"{copy_memory_baseline(task.lag):.4f}), recall accuracy {accuracy:.1%}: {verdict}")  # fmt: skip

    return Prepared(
        model, _LastSymbols(), TensorBatches(x, y, batch_size=task.batch_size, seed=seed),
        TensorBatches(xv, yv, batch_size=max(task.batch_size, 256), shuffle=False), "samples", report,
    )  # fmt: skip


register_task(Task(
    name="adding",
    help="the adding problem: a long-range regression task (Hochreiter & Schmidhuber 1997)",
    example="rnnkit train adding --task.length=100 --model.encoder.cell=lstm --train.max_minutes=5",
    config_class=AddingConfig,
    prepare=_prepare_adding,
    model_name="many_to_one",
    default_model={"encoder": {"cell": "lstm", "hidden_size": 128}},
    default_train={"lr": 1e-3, "max_epochs": 20, "clip_norm": 1.0},
))  # fmt: skip
register_task(Task(
    name="copy",
    help="copy memory: recall 10 symbols after a long lag (Arjovsky et al. 2016)",
    example="rnnkit train copy --task.lag=50 --model.encoder.cell=gru",
    config_class=CopyConfig,
    prepare=_prepare_copy,
    model_name="many_to_many",
    default_model={"encoder": {"cell": "lstm", "hidden_size": 128}},
    default_train={"lr": 1e-3, "max_epochs": 20, "clip_norm": 1.0},
))  # fmt: skip
