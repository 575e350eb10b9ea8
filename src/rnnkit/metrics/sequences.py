"""Scores of generated token sequences against their targets: exact match, edit distance, error
rates (CER, WER, and the corpus error rate of any token sequences)."""

from __future__ import annotations

from collections.abc import Hashable, Sequence
from dataclasses import dataclass

import torch.nn.functional as F
from torch import Tensor


def exact_match(predicted: Tensor, target: Tensor, pad_token: int = 0) -> Tensor:
    """``(B,)`` bool: the whole output, up to and including its end token, equals the target.

    Both are ``(B, T)`` token ids padded with ``pad_token`` after the end token (as
    :meth:`~rnnkit.models.EncoderDecoder.generate` returns them); the widths may differ.

    >>> import torch
    >>> exact_match(torch.tensor([[4, 5, 2], [4, 2, 0]]), torch.tensor([[4, 5, 2, 0], [4, 5, 2, 0]])).tolist()
    [True, False]
    """
    if predicted.dim() != 2 or target.dim() != 2 or predicted.shape[0] != target.shape[0]:
        raise ValueError(
            "predicted and target must be (batch, steps) with the same batch,"
            f" got shapes {tuple(predicted.shape)} and {tuple(target.shape)}"
        )
    width = max(predicted.shape[1], target.shape[1])
    predicted = F.pad(predicted, (0, width - predicted.shape[1]), value=pad_token)
    target = F.pad(target.to(predicted.device), (0, width - target.shape[1]), value=pad_token)
    return (predicted == target).all(dim=1)


# -----------------------------------------------------------------------------
# edit distance, character and word error rates


@dataclass(frozen=True)
class Edits:
    """The cheapest way from a reference to a hypothesis: Levenshtein's operations, counted."""

    substitutions: int
    deletions: int  # reference items missing from the hypothesis
    insertions: int  # hypothesis items not in the reference
    reference_length: int

    @property
    def distance(self) -> int:
        return self.substitutions + self.deletions + self.insertions

    def __add__(self, other: Edits) -> Edits:
        return Edits(self.substitutions + other.substitutions, self.deletions + other.deletions,
                     self.insertions + other.insertions, self.reference_length + other.reference_length)  # fmt: skip

    @property
    def rate(self) -> float:
        """Edits per reference item (can exceed 1); NaN for an empty reference."""
        return self.distance / self.reference_length if self.reference_length else float("nan")


def edits(reference: Sequence[Hashable], hypothesis: Sequence[Hashable]) -> Edits:
    """Levenshtein alignment of two sequences (unit costs), with the operations counted.

    Among alignments of the least cost, ties are broken towards substitutions, then deletions
    (the distance is the same either way; only the split between the kinds can differ).

    >>> e = edits("kitten", "sitting")  # k->s, e->i, +g
    >>> e.distance, e.substitutions, e.deletions, e.insertions
    (3, 2, 0, 1)
    """
    reference, hypothesis = list(reference), list(hypothesis)
    # each cell: (cost, substitutions, deletions, insertions) of the best alignment of the prefixes
    row = [(j, 0, 0, j) for j in range(len(hypothesis) + 1)]
    for i, r in enumerate(reference, 1):
        new = [(i, 0, i, 0)]
        for j, h in enumerate(hypothesis, 1):
            d, s, x, n = row[j - 1]
            match = (d, s, x, n) if r == h else (d + 1, s + 1, x, n)
            d, s, x, n = row[j]
            delete = (d + 1, s, x + 1, n)
            d, s, x, n = new[j - 1]
            insert = (d + 1, s, x, n + 1)
            new.append(min(match, delete, insert, key=lambda c: c[0]))  # the first of equal costs wins
        row = new
    _, s, x, n = row[-1]
    return Edits(s, x, n, len(reference))


def edit_distance(reference: Sequence[Hashable], hypothesis: Sequence[Hashable]) -> int:
    """The Levenshtein distance: the fewest substitutions, deletions and insertions between them.

    >>> edit_distance([1, 2, 3], [1, 3]), edit_distance("", "ab")
    (1, 2)
    """
    return edits(reference, hypothesis).distance


def _check_pairs(references: Sequence, hypotheses: Sequence) -> None:
    if len(references) != len(hypotheses):
        raise ValueError(f"references and hypotheses must pair up: got {len(references)} and {len(hypotheses)}")


def error_rate(references: Sequence[Sequence[Hashable]], hypotheses: Sequence[Sequence[Hashable]]) -> float:
    """Corpus error rate: the edits of every pair summed, over the reference items summed (a
    token, digit or phone error rate). NaN when every reference is empty.

    >>> error_rate([[1, 2, 3], [4]], [[1, 3], [5, 6]])  # 1 deletion; 1 substitution + 1 insertion
    0.75
    """
    _check_pairs(references, hypotheses)
    total = Edits(0, 0, 0, 0)
    for reference, hypothesis in zip(references, hypotheses):
        total = total + edits(reference, hypothesis)
    return total.rate


def cer(references: Sequence[str], hypotheses: Sequence[str]) -> float:
    """Character error rate of transcripts (every character counts, spaces too, as jiwer's ``cer``).

    >>> cer(["one two"], ["one too"])
    0.14285714285714285
    """
    _check_pairs(references, hypotheses)
    return error_rate([str(r) for r in references], [str(h) for h in hypotheses])


def wer(references: Sequence[str], hypotheses: Sequence[str]) -> float:
    """Word error rate: the transcripts split on whitespace.

    >>> wer(["one two three"], ["one three three four"])  # 1 substitution + 1 insertion over 3 words
    0.6666666666666666
    """
    _check_pairs(references, hypotheses)
    return error_rate([str(r).split() for r in references], [str(h).split() for h in hypotheses])
