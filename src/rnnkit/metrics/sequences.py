"""Scores of generated token sequences against their targets (room here for CER/WER and BLEU)."""

from __future__ import annotations

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
