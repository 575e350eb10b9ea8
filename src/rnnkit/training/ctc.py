"""Training a CTC model: padded batches of frames and symbols, and the objective.

A batch is ``(inputs (B, T_b, F), lengths (B,), targets (B, S_b), target_lengths (B,))``, each
cut to the batch's own longest sequence and labelling; :class:`CTCObjective` runs a
:class:`~rnnkit.models.CTC` (or any model with ``output_lengths`` whose ``forward`` returns
``(logits, state)``) and takes :func:`rnnkit.models.ctc.ctc_loss`.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Any

import torch
from torch import Tensor, nn

from ..models.ctc import ctc_loss
from .data import TensorBatches
from .objectives import StepOutput

#: ``augment(inputs (B, T, F), lengths (B,), generator) -> inputs``: applied to training batches only
Augment = Callable[[Tensor, Tensor, torch.Generator], Tensor]


class CTCBatches:
    """Resumable batches of padded frame sequences and their labellings, cut to each batch's need.

    ``inputs`` ``(N, T, F)`` (zero past each row's ``lengths``), ``targets`` ``(N, S)`` (padding
    past ``target_lengths``). A :class:`~rnnkit.training.TensorBatches` underneath: the order
    depends only on ``seed`` and the epoch. ``augment`` (SpecAugment, noise) gets a generator
    seeded by epoch and batch, so a resumed run sees the same augmented batches.
    """

    stateful = False

    def __init__(self, inputs: Tensor, lengths: Tensor, targets: Tensor, target_lengths: Tensor, *,
                 augment: Augment | None = None, **options: Any) -> None:  # fmt: skip
        if inputs.dim() < 2:
            raise ValueError(f"inputs must be (N, T, ...) padded sequences, got shape {tuple(inputs.shape)}")
        if targets.dim() != 2:
            raise ValueError(f"targets must be (N, S) padded labellings, got shape {tuple(targets.shape)}")
        self.rows = TensorBatches(inputs, lengths.long(), targets.long(), target_lengths.long(), **options)
        self.augment = augment

    def shard(self, rank: int, world_size: int) -> CTCBatches:
        shard = object.__new__(CTCBatches)
        shard.rows, shard.augment = self.rows.shard(rank, world_size), self.augment
        return shard

    def __len__(self) -> int:
        return len(self.rows)

    def epoch(self, index: int, start: int = 0) -> Iterator[tuple[Tensor, Tensor, Tensor, Tensor]]:
        for b, (x, lengths, y, target_lengths) in enumerate(self.rows.epoch(index, start), start):
            x = x[:, : int(lengths.max())]  # (B, T_b, ...)
            y = y[:, : max(int(target_lengths.max()), 1)]  # (B, S_b)
            if self.augment is not None:
                generator = torch.Generator().manual_seed((self.rows.seed * 1_000_003 + index) * 100_003 + b)
                x = self.augment(x, lengths, generator)
            yield x, lengths, y, target_lengths


class CTCObjective:
    """The CTC loss of a batch of :class:`CTCBatches` (mean over rows of the per-symbol loss).

    ``zero_infinity`` (on by default) zeroes the loss of a row too short for its labelling,
    rather than letting one impossible row make the batch's gradient NaN.
    """

    def __init__(self, *, zero_infinity: bool = True) -> None:
        self.zero_infinity = zero_infinity

    def __call__(self, model: nn.Module, batch: tuple[Tensor, ...], state: Any = None) -> StepOutput:
        x, lengths, targets, target_lengths = batch
        logits, _ = model(x, lengths=lengths)
        out = model.output_lengths(lengths.to(logits.device))
        loss = ctc_loss(logits, targets, out, target_lengths, blank=getattr(model, "blank", 0),
                        zero_infinity=self.zero_infinity)  # fmt: skip
        return StepOutput(loss, x.shape[0])

