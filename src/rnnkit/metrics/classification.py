"""Classification metrics in plain torch: confusion matrix, accuracy, per-class precision and
recall, macro-F1, and the small tables ``rnnkit train classify`` prints.

Conventions follow scikit-learn's: the confusion matrix has true classes as rows and predicted
classes as columns; a precision, recall or F1 whose denominator is zero counts as 0.

>>> import torch
>>> truth, guess = torch.tensor([0, 0, 1, 1, 1]), torch.tensor([0, 1, 1, 1, 0])
>>> confusion_matrix(truth, guess, 2).tolist()
[[1, 1], [1, 2]]
>>> round(macro_f1(confusion_matrix(truth, guess, 2)), 4)
0.5833
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import torch
from torch import Tensor


def _check_labels(name: str, value: object) -> Tensor:
    if not isinstance(value, Tensor):
        raise TypeError(f"{name} must be a tensor of class indices, got {type(value).__name__}")
    if value.dim() != 1:
        raise ValueError(f"{name} must be 1-D (one class index per example), got shape {tuple(value.shape)}")
    if value.is_floating_point() or value.is_complex() or value.dtype == torch.bool:
        raise TypeError(f"{name} must hold integer class indices, got dtype {value.dtype}")
    return value.long().cpu()


def confusion_matrix(targets: Tensor, predictions: Tensor, num_classes: int) -> Tensor:
    """``(C, C)`` int64 counts: entry ``[i, j]`` is how many examples of class ``i`` were predicted ``j``."""
    targets = _check_labels("targets", targets)
    predictions = _check_labels("predictions", predictions)
    if isinstance(num_classes, bool) or not isinstance(num_classes, int) or num_classes < 1:
        raise ValueError(f"num_classes must be a positive integer, got {num_classes!r}")
    if targets.shape != predictions.shape:
        raise ValueError(
            f"targets and predictions must have the same length, got {targets.numel()} and {predictions.numel()}"
        )
    for name, value in (("targets", targets), ("predictions", predictions)):
        if value.numel() and (int(value.min()) < 0 or int(value.max()) >= num_classes):
            raise ValueError(
                f"{name} must lie in [0, {num_classes - 1}] for num_classes={num_classes},"
                f" got values from {int(value.min())} to {int(value.max())}"
            )
    flat = targets * num_classes + predictions  # (N,): one bin per (true, predicted) pair
    return torch.bincount(flat, minlength=num_classes * num_classes).view(num_classes, num_classes)


def accuracy(targets: Tensor, predictions: Tensor) -> float:
    """Fraction of examples whose prediction equals the target (0.0 for no examples)."""
    targets = _check_labels("targets", targets)
    predictions = _check_labels("predictions", predictions)
    if targets.shape != predictions.shape:
        raise ValueError(
            f"targets and predictions must have the same length, got {targets.numel()} and {predictions.numel()}"
        )
    return (targets == predictions).double().mean().item() if targets.numel() else 0.0


def _divide(numerator: Tensor, denominator: Tensor) -> Tensor:
    # 0/0 counts as 0 (scikit-learn's zero_division=0), never NaN
    return torch.where(denominator > 0, numerator / denominator.clamp(min=1e-300), torch.zeros_like(numerator))


@dataclass(frozen=True)
class PerClass:
    """Per-class scores, each a float64 tensor ``(C,)``; ``support`` is the true count of each class."""

    precision: Tensor
    recall: Tensor
    f1: Tensor
    support: Tensor


def per_class(confusion: Tensor) -> PerClass:
    """Precision ``tp / (tp + fp)``, recall ``tp / (tp + fn)`` and F1 of every class from a confusion matrix."""
    if not isinstance(confusion, Tensor) or confusion.dim() != 2 or confusion.shape[0] != confusion.shape[1]:
        shape = tuple(confusion.shape) if isinstance(confusion, Tensor) else type(confusion).__name__
        raise ValueError(f"confusion must be a square (C, C) tensor, got {shape}")
    counts = confusion.double()
    tp = counts.diagonal()  # (C,)
    predicted, actual = counts.sum(0), counts.sum(1)  # column sums (tp + fp), row sums (tp + fn)
    precision, recall = _divide(tp, predicted), _divide(tp, actual)
    f1 = _divide(2 * precision * recall, precision + recall)
    return PerClass(precision, recall, f1, actual.long())


def macro_f1(confusion: Tensor) -> float:
    """The unweighted mean of the per-class F1 scores."""
    return per_class(confusion).f1.mean().item()


def majority_baseline(train_targets: Tensor, test_targets: Tensor, num_classes: int) -> tuple[int, float]:
    """The most frequent class in training (ties: the lowest index) and its accuracy on the test targets."""
    train_targets = _check_labels("train_targets", train_targets)
    test_targets = _check_labels("test_targets", test_targets)
    if not train_targets.numel():
        raise ValueError("train_targets must hold at least one example")
    majority = int(torch.bincount(train_targets, minlength=num_classes).argmax())
    return majority, accuracy(test_targets, torch.full_like(test_targets, majority))


def format_confusion(confusion: Tensor, labels: Sequence[str]) -> str:
    """The confusion matrix as a small table: rows are true classes, columns predicted ones.

    >>> print(format_confusion(torch.tensor([[5, 1], [2, 7]]), ["neg", "pos"]))
    true \\ predicted  neg  pos
    neg                 5    1
    pos                 2    7
    """
    labels = [str(label) for label in labels]
    if confusion.shape != (len(labels), len(labels)):
        raise ValueError(
            f"confusion must have shape ({len(labels)}, {len(labels)}) for {len(labels)} labels,"
            f" got {tuple(confusion.shape)}"
        )
    corner = "true \\ predicted"
    first = max(len(corner), *(len(label) for label in labels))
    width = max(*(len(label) for label in labels), *(len(str(int(v))) for v in confusion.flatten()))
    lines = [corner.ljust(first) + "".join(f"  {label:>{width}}" for label in labels)]
    for label, row in zip(labels, confusion.tolist()):
        lines.append(label.ljust(first) + "".join(f"  {value:>{width}}" for value in row))
    return "\n".join(lines)


def format_per_class(scores: PerClass, labels: Sequence[str]) -> str:
    """Precision, recall, F1 and support of each class as a small table."""
    labels = [str(label) for label in labels]
    first = max(len("class"), *(len(label) for label in labels))
    lines = [f"{'class':<{first}}  precision  recall     f1  support"]
    for i, label in enumerate(labels):
        lines.append(
            f"{label:<{first}}  {scores.precision[i].item():9.3f}  {scores.recall[i].item():6.3f}"
            f"  {scores.f1[i].item():5.3f}  {int(scores.support[i]):7d}"
        )
    return "\n".join(lines)
