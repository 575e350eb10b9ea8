"""``rnnkit train seq2seq``: reverse, sort or copy random symbols with an attentional encoder-decoder."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Literal

import torch

from ...models import TeacherForcingSchedule
from ...training import TensorBatches
from ..base import App, Prepared, Run
from .sequences import END, FIRST_SYMBOL, PAD, START, Seq2SeqObjective, exact_match_accuracy, sequence_pairs


@dataclass(frozen=True)
class SequenceTaskConfig:
    """Reverse, sort or copy ``min_length``..``max_length`` symbols out of ``num_symbols``."""

    kind: Literal["reverse", "sort", "copy"] = "reverse"
    num_symbols: int = 10
    min_length: int = 5
    max_length: int = 12
    train_size: int = 50_000
    val_size: int = 1_000
    batch_size: int = 64
    teacher_forcing: TeacherForcingSchedule = field(default_factory=TeacherForcingSchedule)
    solved_exact_match: float = 0.99

    @property
    def vocab_size(self) -> int:
        return FIRST_SYMBOL + self.num_symbols


class Seq2SeqApp(App):
    name = "seq2seq"
    help = "reverse, sort or copy a sequence of random symbols with an attentional encoder-decoder"
    example = "rnnkit train seq2seq --task.kind=sort --model.attention=general --train.max_steps=1000"
    config_class = SequenceTaskConfig
    model_name = "encoder_decoder"
    default_model = {
        "source": {"embedding_dim": 32}, "embedding_dim": 32, "attention": "bahdanau",
        "encoder": {"cell": "gru", "hidden_size": 64, "bidirectional": True},
        "decoder": {"cell": "gru", "hidden_size": 64},
    }  # fmt: skip
    default_train = {"lr": 3e-3, "schedule": "cosine", "max_epochs": 100, "max_steps": 2000, "clip_norm": 1.0,
                     "eval_every": 500}  # fmt: skip

    def prepare(self, config: SequenceTaskConfig, model_settings: dict[str, Any], seed: int) -> Prepared:
        generator = torch.Generator().manual_seed(seed)
        sizes = dict(num_symbols=config.num_symbols, min_length=config.min_length, max_length=config.max_length)
        train = sequence_pairs(config.kind, config.train_size, generator=generator, **sizes)
        val = sequence_pairs(config.kind, config.val_size, generator=generator, **sizes)
        source = {**model_settings.get("source", {}), "vocab_size": config.vocab_size}
        model = self.build_model({**model_settings, "source": source, "target_vocab_size": config.vocab_size,
                                  "start_token": START, "end_token": END, "pad_token": PAD})  # fmt: skip
        return Prepared(
            model, Seq2SeqObjective(config.teacher_forcing),
            TensorBatches(train.source, train.target, train.lengths, batch_size=config.batch_size, seed=seed),
            TensorBatches(val.source, val.target, val.lengths, batch_size=250, shuffle=False), "sequences",
            context={"val": val},
        )  # fmt: skip

    def evaluate(self, run: Run) -> dict[str, Any]:
        val = run.context["val"]
        return {"exact_match": exact_match_accuracy(run.last_model(), val), "sequences": val.source.shape[0]}

    def report(self, run: Run, results: dict[str, Any]) -> str:
        c, accuracy = run.config, results["exact_match"]
        verdict = "solved" if accuracy >= c.solved_exact_match else "not solved"
        return (f"{c.kind} {c.min_length}-{c.max_length} symbols of {c.num_symbols}: exact match "
                f"{accuracy:.2%} of {results['sequences']} held-out sequences (greedy): {verdict}"
                f" (>= {c.solved_exact_match:.0%})")  # fmt: skip
