"""Nearest-neighbour baselines: the strongest simple models for many inputs (k-NN on resampled
pen coordinates for handwriting; the caption of the closest training image, Devlin et al. 2015).

>>> import torch
>>> reference = torch.tensor([[0.0, 0.0], [1.0, 0.0], [5.0, 5.0], [6.0, 5.0], [5.0, 6.0]])
>>> nearest(reference, torch.tensor([[0.2, 0.1], [5.6, 5.2]]), k=2).tolist()
[[0, 1], [3, 2]]
>>> knn_predict(reference, torch.tensor([0, 0, 1, 1, 1]), torch.tensor([[0.9, 0.0], [4.0, 4.0]]), k=3,
...             num_classes=2).tolist()
[0, 1]
"""

from __future__ import annotations

import torch
from torch import Tensor

from .._validation import check_positive_int


def nearest(reference: Tensor, queries: Tensor, k: int = 1, *, batch_size: int = 1024) -> Tensor:
    """Indices ``(M, k)`` of each query's ``k`` nearest rows of ``reference`` ``(N, D)``
    (Euclidean), nearest first, ``batch_size`` queries at a time."""
    check_positive_int("k", k)
    if reference.dim() != 2 or queries.dim() != 2 or reference.shape[1] != queries.shape[1]:
        raise ValueError(
            "reference and queries must be (rows, features) with the same features,"
            f" got shapes {tuple(reference.shape)} and {tuple(queries.shape)}"
        )
    if k > reference.shape[0]:
        raise ValueError(f"k must be at most the {reference.shape[0]} reference rows, got {k}")
    reference = reference.float()
    out = [torch.cdist(queries[i : i + batch_size].float(), reference).topk(k, largest=False).indices
           for i in range(0, queries.shape[0], batch_size)]  # fmt: skip
    return torch.cat(out) if out else torch.zeros(0, k, dtype=torch.long)


def knn_predict(reference: Tensor, labels: Tensor, queries: Tensor, *, k: int, num_classes: int) -> Tensor:
    """The majority label ``(M,)`` of each query's ``k`` nearest reference rows; a tie goes to
    the label of the nearest neighbour among the tied ones."""
    index = nearest(reference, queries, k)  # (M, k)
    neighbours = labels[index]  # (M, k)
    votes = torch.zeros(index.shape[0], num_classes).scatter_add_(1, neighbours, torch.ones(index.shape))
    # a small bonus by rank breaks ties toward the nearer neighbour
    bonus = torch.zeros(index.shape[0], num_classes).scatter_reduce_(
        1, neighbours, torch.linspace(0.5, 0.0, k + 1)[:k].expand_as(index).contiguous(), reduce="amax"
    )
    return (votes + bonus / k).argmax(1)
