"""Choosing the next token: greedy, temperature, top-k (Fan et al. 2018), top-p (Holtzman et al. 2020).

>>> import torch
>>> logits = torch.tensor([[2.0, 1.0, 0.5, -1.0]])
>>> sample(logits, temperature=0).tolist()  # greedy
[0]
>>> filter_logits(logits, top_k=2).isinf().tolist()
[[False, False, True, True]]
"""

from __future__ import annotations

import numbers
from collections.abc import Callable, Iterator
from typing import Any

import torch
import torch.nn.functional as F
from torch import Tensor, nn


def check_sampling(temperature: float, top_k: int | None, top_p: float | None) -> None:
    if isinstance(temperature, bool) or not isinstance(temperature, numbers.Real) or temperature < 0:
        raise ValueError(f"temperature must be a number >= 0 (0 is greedy), got {temperature!r}")
    if top_k is not None and (isinstance(top_k, bool) or not isinstance(top_k, numbers.Integral) or top_k < 1):
        raise ValueError(f"top_k must be a positive integer or None, got {top_k!r}")
    if top_p is not None and (isinstance(top_p, bool) or not isinstance(top_p, numbers.Real) or not 0 < top_p <= 1):
        raise ValueError(f"top_p must be a number in (0, 1] or None, got {top_p!r}")


def filter_logits(logits: Tensor, *, top_k: int | None = None, top_p: float | None = None) -> Tensor:
    """Set to -inf every logit outside the top-k and outside the smallest nucleus of mass top-p."""
    if top_k is not None and top_k < logits.shape[-1]:
        kth = logits.topk(top_k, dim=-1).values[..., -1:]  # (..., 1)
        logits = logits.masked_fill(logits < kth, float("-inf"))
    if top_p is not None and top_p < 1.0:
        ordered, order = logits.sort(dim=-1, descending=True)
        mass_before = ordered.softmax(-1).cumsum(-1) - ordered.softmax(-1)  # mass of strictly better tokens
        drop = mass_before >= top_p  # the best token is always kept
        logits = logits.masked_fill(drop.scatter(-1, order, drop), float("-inf"))
    return logits


def sample(
    logits: Tensor,
    *,
    temperature: float = 1.0,
    top_k: int | None = None,
    top_p: float | None = None,
    generator: torch.Generator | None = None,
) -> Tensor:
    """One token id per row of ``logits`` ``(B, V)``; temperature 0 picks the most likely."""
    check_sampling(temperature, top_k, top_p)
    if temperature == 0:
        return logits.argmax(-1)
    probabilities = F.softmax(filter_logits(logits / temperature, top_k=top_k, top_p=top_p), dim=-1)
    return torch.multinomial(probabilities, 1, generator=generator).squeeze(-1)


@torch.no_grad()
def generate(
    model: nn.Module,
    prime: Tensor,
    length: int,
    *,
    temperature: float = 1.0,
    top_k: int | None = None,
    top_p: float | None = None,
    generator: torch.Generator | None = None,
    on_token: Callable[[Tensor], Any] | None = None,
) -> Tensor:
    """Continue ``prime`` ``(B, P)`` token ids by ``length`` sampled tokens: returns ``(B, length)``.

    ``model`` reads the prime with ``model(prime, state)`` and then advances with
    ``model.step(token, state)`` (:class:`~rnnkit.models.ManyToMany`); ``on_token`` sees each
    new ``(B,)`` batch of ids as it is chosen (for streaming output).
    """
    check_sampling(temperature, top_k, top_p)
    if prime.dim() != 2 or prime.shape[1] < 1:
        raise ValueError(f"prime must be (batch, steps) token ids with at least one step, got shape {tuple(prime.shape)}")
    return torch.stack(list(_tokens(model, prime, length, temperature, top_k, top_p, generator, on_token)), dim=1)


def _tokens(model, prime, length, temperature, top_k, top_p, generator, on_token) -> Iterator[Tensor]:
    was_training = model.training
    model.eval()
    try:
        logits, state = model(prime)
        token = sample(logits[:, -1], temperature=temperature, top_k=top_k, top_p=top_p, generator=generator)
        for i in range(length):
            if on_token is not None:
                on_token(token)
            yield token
            if i + 1 < length:
                logits, state = model.step(token, state)
                token = sample(logits, temperature=temperature, top_k=top_k, top_p=top_p, generator=generator)
    finally:
        model.train(was_training)
