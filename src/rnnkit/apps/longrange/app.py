"""The long-range memory tasks as trainable apps: ``rnnkit train adding`` and ``rnnkit train copy``.

The data are :mod:`rnnkit.data.synthetic`'s, drawn from a generator seeded by the training seed.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import torch

from ...data.synthetic import ADDING_BASELINE_MSE, adding_problem, copy_memory, copy_memory_baseline
from ...training import SupervisedObjective, TensorBatches
from ..base import App, Prepared, Run


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


class _LongRange(App):
    """What both tasks share: an LSTM by default, generated train and validation sets."""

    default_model = {"encoder": {"cell": "lstm", "hidden_size": 128}}
    default_train = {"lr": 1e-3, "max_epochs": 20, "clip_norm": 1.0}

    def _batches(self, config, draw, seed: int) -> tuple[TensorBatches, TensorBatches]:
        generator = torch.Generator().manual_seed(seed)
        x, y = draw(config.train_size, generator=generator)
        xv, yv = draw(config.val_size, generator=generator)
        return (TensorBatches(x, y, batch_size=config.batch_size, seed=seed),
                TensorBatches(xv, yv, batch_size=max(config.batch_size, 256), shuffle=False))  # fmt: skip


class AddingApp(_LongRange):
    name = "adding"
    help = "the adding problem: a long-range regression task (Hochreiter & Schmidhuber 1997)"
    example = "rnnkit train adding --task.length=100 --model.encoder.cell=lstm --train.max_minutes=5"
    config_class = AddingConfig
    model_name = "many_to_one"

    def prepare(self, config: AddingConfig, model_settings: dict[str, Any], seed: int) -> Prepared:
        train, val = self._batches(config, lambda n, generator: adding_problem(n, config.length, generator=generator),
                                   seed)  # fmt: skip
        model = self.build_model({**model_settings, "input": {"features": 2}, "outputs": 1, "pooling": "last"})
        return Prepared(model, SupervisedObjective("mse"), train, val, "samples")

    def evaluate(self, run: Run) -> dict[str, Any]:
        result = run.result
        return {"val_mse": result.best.get("val_loss", result.last_eval.get("val_loss"))}

    def report(self, run: Run, results: dict[str, Any]) -> str:
        c, mse = run.config, results["val_mse"]
        if mse is None:
            return f"adding problem T={c.length}: no validation result"
        verdict = "solved" if mse < c.solved_mse else "not solved"
        return (f"adding problem T={c.length}: validation MSE {mse:.4f} "
                f"({mse / ADDING_BASELINE_MSE:.1%} of the 0.167 baseline): {verdict} (< {c.solved_mse})")  # fmt: skip


class LastSymbols:
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


class CopyApp(_LongRange):
    name = "copy"
    help = "copy memory: recall 10 symbols after a long lag (Arjovsky et al. 2016)"
    example = "rnnkit train copy --task.lag=50 --model.encoder.cell=gru"
    config_class = CopyConfig
    model_name = "many_to_many"

    def prepare(self, config: CopyConfig, model_settings: dict[str, Any], seed: int) -> Prepared:
        train, val = self._batches(config, lambda n, generator: copy_memory(n, config.lag, generator=generator), seed)
        model = self.build_model({**model_settings, "input": {"vocab_size": 10, "embedding_dim": 16}, "outputs": 10})
        return Prepared(model, LastSymbols(), train, val, "samples")

    def evaluate(self, run: Run) -> dict[str, Any]:
        last = run.result.last_eval
        return {"val_loss": last.get("val_loss"), "val_accuracy": last.get("val_accuracy"),
                "baseline_loss": copy_memory_baseline(run.config.lag)}  # fmt: skip

    def report(self, run: Run, results: dict[str, Any]) -> str:
        c, loss, accuracy = run.config, results["val_loss"], results["val_accuracy"]
        if loss is None or accuracy is None:
            return f"copy memory lag={c.lag}: no validation result"
        verdict = "solved" if accuracy >= c.solved_accuracy else "not solved"
        return (f"copy memory lag={c.lag}: validation loss {loss:.4f} (baseline "
                f"{results['baseline_loss']:.4f}), recall accuracy {accuracy:.1%}: {verdict}")  # fmt: skip
