"""Padded variable-length batches: validity masks, per-sequence reversal, PackedSequence round-trips.

Everything here is time-major: ``(T, B, ...)``.
"""

from __future__ import annotations

import torch
from torch import Tensor
from torch.nn.utils.rnn import PackedSequence, pack_padded_sequence, pad_packed_sequence


def valid_mask(lengths: Tensor | None, steps: int) -> Tensor | None:
    """``(T, B)`` bool, True where step t < length; None when every sequence is full length."""
    if lengths is None or bool((lengths == steps).all()):
        return None
    return torch.arange(steps, device=lengths.device).unsqueeze(1) < lengths.unsqueeze(0)


def reverse_padded(x: Tensor, lengths: Tensor | None) -> Tensor:
    """Reverse each sequence within its own length; padding stays where it is.

    Step t of sequence b moves to ``lengths[b] - 1 - t``. The map is its own inverse, so the same
    call turns a reverse direction's outputs back into input order.
    """
    if lengths is None:
        return x.flip(0)
    steps = x.shape[0]
    t = torch.arange(steps, device=x.device).unsqueeze(1)  # (T, 1)
    source = torch.where(t < lengths, lengths - 1 - t, t)  # (T, B)
    index = source.view(steps, -1, *([1] * (x.dim() - 2))).expand_as(x)
    return x.gather(0, index)


def unpack(sequence: PackedSequence) -> tuple[Tensor, Tensor]:
    """A PackedSequence as ``(padded (T, B, *), lengths (B,))`` in the caller's batch order."""
    padded, lengths = pad_packed_sequence(sequence)
    return padded, lengths.to(padded.device)


def pack_like(padded: Tensor, lengths: Tensor, like: PackedSequence) -> PackedSequence:
    """Pack ``padded`` (time-major, caller's batch order) with the batch layout of ``like``.

    Reusing ``like``'s sorting keeps ``output.sorted_indices`` equal to the input's, as torch.nn
    does, even where ties in ``lengths`` could sort either way.
    """
    if like.sorted_indices is None:
        packed = pack_padded_sequence(padded, lengths.cpu(), enforce_sorted=True)
    else:
        order = like.sorted_indices
        packed = pack_padded_sequence(
            padded.index_select(1, order), lengths.index_select(0, order).cpu(), enforce_sorted=True
        )
    return PackedSequence(packed.data, like.batch_sizes, like.sorted_indices, like.unsorted_indices)
