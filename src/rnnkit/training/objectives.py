"""Objectives: what one training step computes, kept apart from the loop that runs it.

An objective is called as ``objective(model, batch, state)`` and returns a :class:`StepOutput`.
The trainer backpropagates ``loss``, weighs metrics by ``count`` and, on stateful data, hands
``state`` to the next call (detached: truncated BPTT never reaches into earlier windows).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from .data import Window


@dataclass
class StepOutput:
    loss: Tensor  # scalar, the mean over ``count`` items
    count: int  # items the loss averages over (sequences, tokens)
    state: Any = None  # carried to the next batch of a stateful stream
    metrics: dict[str, float] = field(default_factory=dict)  # means over ``count``
    # what progress counts, in the unit the app names (sequences, windows, chunks); None: ``count``
    # (a text stream's characters). The loss's ``count`` may be finer: every scored step or token
    examples: int | None = None


LOSSES: dict[str, Callable[..., Tensor]] = {
    "mse": F.mse_loss,
    "cross_entropy": F.cross_entropy,
    "bce": F.binary_cross_entropy_with_logits,
}


def _loss_and_metrics(kind: str, outputs: Tensor, targets: Tensor) -> tuple[Tensor, dict[str, float]]:
    """Mean loss over rows of ``outputs`` ``(N, C)`` (or ``(N,)``) and ``targets``."""
    if kind == "cross_entropy" and not targets.numel():  # every target ignored: nothing to learn from
        return outputs.sum() * 0.0, {"accuracy": float("nan")}
    if kind == "cross_entropy":
        loss = F.cross_entropy(outputs, targets)
        accuracy = (outputs.argmax(-1) == targets).float().mean().item()
        return loss, {"accuracy": accuracy}
    if kind == "mse" and outputs.shape != targets.shape:
        outputs = outputs.reshape(targets.shape)
    return LOSSES[kind](outputs, targets.to(outputs.dtype)), {}


class SupervisedObjective:
    """``batch = (inputs, targets[, lengths])`` through ``model(inputs[, lengths=...])``.

    For many-to-one models the output is ``(B, C)``; for aligned many-to-many models
    ``(outputs (B, T, C), state)`` and the loss covers each sequence's valid steps only. With
    ``ignore_index`` (cross-entropy only, as in ``torch.nn.CrossEntropyLoss``), targets of that
    value are left out of the loss, the accuracy and the count (padding, unlabelled positions).
    """

    def __init__(self, loss: str = "cross_entropy", *, ignore_index: int | None = None) -> None:
        if loss not in LOSSES:
            raise ValueError(f"loss must be one of {', '.join(repr(k) for k in LOSSES)}, got {loss!r}")
        if ignore_index is not None and (loss != "cross_entropy" or isinstance(ignore_index, bool)
                                         or not isinstance(ignore_index, int)):  # fmt: skip
            raise ValueError(f"ignore_index must be an integer for the cross_entropy loss, got {ignore_index!r}"
                             f" with loss {loss!r}")  # fmt: skip
        self.loss, self.ignore_index = loss, ignore_index

    def __call__(self, model: nn.Module, batch: tuple[Tensor, ...], state: Any = None) -> StepOutput:
        inputs, targets, *rest = batch
        lengths = rest[0] if rest else None
        result = model(inputs, lengths=lengths) if lengths is not None else model(inputs)
        outputs = result[0] if isinstance(result, tuple) else result
        if outputs.dim() == 3:  # per-step outputs: keep the valid steps
            if lengths is not None:
                keep = torch.arange(outputs.shape[1], device=outputs.device) < lengths.to(outputs.device)[:, None]
                outputs, targets = outputs[keep], targets[keep]
            else:
                outputs, targets = outputs.flatten(0, 1), targets.flatten(0, 1)
        if self.ignore_index is not None:
            keep = targets != self.ignore_index
            outputs, targets = outputs[keep], targets[keep]
        loss, metrics = _loss_and_metrics(self.loss, outputs, targets)
        return StepOutput(loss, targets.shape[0], None, metrics, examples=inputs.shape[0])


class StreamObjective:
    """Truncated BPTT on a :class:`~rnnkit.training.data.StreamBatches` window.

    The model is called as ``model(inputs, state) -> (outputs, state)``. The window's first
    ``carry`` steps run first and their final state is what the next window starts from; the
    rest of the window continues from there, gradients flow back through all of it, and the
    loss covers the last ``carry`` steps.
    """

    def __init__(self, loss: str = "cross_entropy") -> None:
        if loss not in LOSSES:
            raise ValueError(f"loss must be one of {', '.join(repr(k) for k in LOSSES)}, got {loss!r}")
        self.loss = loss

    def __call__(self, model: nn.Module, batch: Window, state: Any = None) -> StepOutput:
        inputs, targets, carry = batch
        head, carried = model(inputs[:, :carry], state)
        if inputs.shape[1] > carry:
            tail, _ = model(inputs[:, carry:], carried)
            outputs = torch.cat([head, tail], dim=1)
        else:
            outputs = head
        scored, goal = outputs[:, -carry:], targets[:, -carry:]  # (B, k1, C), (B, k1)
        loss, metrics = _loss_and_metrics(self.loss, scored.flatten(0, 1), goal.flatten(0, 1))
        return StepOutput(loss, goal.shape[0] * goal.shape[1], carried, metrics)  # B * k1 targets
