"""Decoding a token sequence one step at a time: greedy or sampled search, and batched beam search.

A decoder is seen through two functions, so the same search serves every model that emits tokens
(:class:`~rnnkit.models.OneToMany`, :class:`~rnnkit.models.EncoderDecoder`, or a hand-made toy):

* ``step(tokens, carry) -> (logits, carry)``: the previous tokens ``(N,)`` and the decoder's
  carry (its state) in, next-token logits ``(N, V)`` and the new carry out;
* ``reorder(carry, index) -> carry``: the carry of rows ``index`` ``(M,)``, in that order (beam
  search copies and drops hypotheses with it).

Outputs hold the tokens after the start token, the end token included, then ``pad_token``.
Scores are log-probabilities under the model itself (temperature 1, nothing filtered).

A two-step toy in which the greedy first choice leads nowhere good (tokens: 0 pad, 1 start, 2 end,
3 ``a``, 4 ``b``): ``a`` is likelier than ``b`` first (0.5 against 0.4), but only ``b`` is sure to
end next; greedy search takes ``a``, then ``b``, then the end (0.5 * 0.6 * 1), beam search finds ``b``
and the end (0.4 * 1).

>>> import torch
>>> first = torch.tensor([0.0, 0.0, 0.1, 0.5, 0.4]).log()
>>> after = {3: torch.tensor([0.0, 0.0, 0.3, 0.1, 0.6]).log(), 4: torch.tensor([0.0, 0.0, 1.0, 0.0, 0.0]).log()}
>>> def step(tokens, carry):
...     return torch.stack([first if t == 1 else after.get(int(t), after[4]) for t in tokens]), carry
>>> greedy = sample_search(step, None, 1, start_token=1, end_token=2, max_length=4, temperature=0.0)
>>> greedy.tokens.tolist(), round(greedy.log_prob.exp().item(), 3)
([[3, 4, 2]], 0.3)
>>> beams = beam_search(step, lambda carry, index: carry, None, 1, beam_size=2, start_token=1, end_token=2,
...                     max_length=4, length_penalty=0.0)
>>> beams.tokens[:, 0].tolist(), round(beams.log_prob[0, 0].exp().item(), 3)
([[4, 2, 0]], 0.4)
"""

from __future__ import annotations

import numbers
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import torch
import torch.nn.functional as F
from torch import Tensor

from .._validation import check_nonnegative_int, check_positive_int
from .sampling import check_sampling, sample

Step = Callable[[Tensor, Any], tuple[Tensor, Any]]
Reorder = Callable[[Any, Tensor], Any]


@dataclass
class Decoded:
    """One decoded sequence per row."""

    tokens: Tensor  # (B, T) token ids: the sequence, its end token, then padding
    lengths: Tensor  # (B,) tokens up to and including the end token (T where none came)
    log_prob: Tensor  # (B,) log-probability of those tokens under the model


@dataclass
class Beams:
    """The ``K`` hypotheses a beam search kept for each row, best first."""

    tokens: Tensor  # (B, K, T)
    lengths: Tensor  # (B, K)
    log_prob: Tensor  # (B, K)
    score: Tensor  # (B, K) log_prob / length_normaliser(length), the ranking

    def best(self) -> Decoded:
        return Decoded(self.tokens[:, 0], self.lengths[:, 0], self.log_prob[:, 0])


def check_tokens(start_token: int, end_token: int, pad_token: int, vocab_size: int | None = None) -> None:
    """The special tokens: distinct ids inside the vocabulary."""
    names = {"start_token": start_token, "end_token": end_token, "pad_token": pad_token}
    for name, value in names.items():
        check_nonnegative_int(name, value)
        if vocab_size is not None and value >= vocab_size:
            raise ValueError(f"{name} must be a token id below the vocabulary size {vocab_size}, got {value}")
    if len(set(names.values())) != 3:
        raise ValueError(
            "start_token, end_token and pad_token must be three different ids,"
            f" got {start_token}, {end_token} and {pad_token}"
        )


PENALTIES = ("power", "wu")


def length_normaliser(lengths: Tensor, alpha: float, kind: str = "power") -> Tensor:
    """What a hypothesis's log-probability is divided by to rank it: ``length ** alpha``
    (``"power"``), or Wu et al.'s (2016, section 7, eq. 14) ``((5 + length) / 6) ** alpha``
    (``"wu"``). ``alpha = 0`` ranks by the plain sum of log-probabilities either way.

    >>> length_normaliser(torch.tensor([1, 7]), 1.0, "wu").tolist()
    [1.0, 2.0]
    """
    lengths = lengths.float()
    if kind == "wu":
        return ((5.0 + lengths) / 6.0).pow(alpha)
    return lengths.pow(alpha)


def _check_search(batch_size: int, max_length: int, start_token: int, end_token: int, pad_token: int) -> None:
    check_positive_int("batch_size", batch_size)
    check_positive_int("max_length", max_length)
    check_tokens(start_token, end_token, pad_token)


@torch.no_grad()
def sample_search(
    step: Step,
    carry: Any,
    batch_size: int,
    *,
    start_token: int,
    end_token: int,
    pad_token: int = 0,
    max_length: int,
    temperature: float = 0.0,
    top_k: int | None = None,
    top_p: float | None = None,
    generator: torch.Generator | None = None,
    device: torch.device | str | None = None,
) -> Decoded:
    """Choose each token from the last step's logits: greedy at temperature 0, else sampled.

    Sampling options are those of :func:`rnnkit.models.sampling.sample`. A row stops at its end
    token (later steps give it ``pad_token``); the search stops when every row has stopped or
    after ``max_length`` tokens.
    """
    _check_search(batch_size, max_length, start_token, end_token, pad_token)
    check_sampling(temperature, top_k, top_p)
    tokens = torch.full((batch_size,), start_token, dtype=torch.long, device=device)
    done = torch.zeros(batch_size, dtype=torch.bool, device=device)
    lengths = torch.full((batch_size,), max_length, dtype=torch.long, device=device)
    log_prob = torch.zeros(batch_size, device=device)
    chosen = []
    for t in range(max_length):
        logits, carry = step(tokens, carry)  # (B, V)
        token = sample(logits, temperature=temperature, top_k=top_k, top_p=top_p, generator=generator)
        token_log_prob = F.log_softmax(logits.float(), dim=-1).gather(1, token[:, None]).squeeze(1)  # (B,)
        token = token.masked_fill(done, pad_token)
        log_prob = log_prob + token_log_prob.masked_fill(done, 0.0)
        chosen.append(token)
        ended = ~done & (token == end_token)
        lengths = torch.where(ended, t + 1, lengths)
        done = done | ended
        if bool(done.all()):
            break
        tokens = token
    return Decoded(torch.stack(chosen, dim=1), lengths, log_prob)


@torch.no_grad()
def beam_search(
    step: Step,
    reorder: Reorder,
    carry: Any,
    batch_size: int,
    *,
    beam_size: int,
    start_token: int,
    end_token: int,
    pad_token: int = 0,
    max_length: int,
    length_penalty: float = 1.0,
    penalty: str = "power",
    device: torch.device | str | None = None,
) -> Beams:
    """Batched beam search: keep the ``beam_size`` best hypotheses of every row at each step.

    ``carry`` is the decoder's carry for ``batch_size`` rows; the search widens it to
    ``batch_size * beam_size`` rows with ``reorder`` (row ``b * beam_size + k`` is beam ``k`` of
    row ``b``). Hypotheses are ranked by ``log_prob / length ** length_penalty`` (length
    normalisation: 0 ranks by the plain sum, which favours short outputs; 1 by the mean per token),
    or with ``penalty="wu"`` by ``log_prob / ((5 + length) / 6) ** length_penalty`` (Wu et al.
    2016, section 7; they use 0.6 to 0.7), see :func:`length_normaliser`. A hypothesis that emits ``end_token`` is
    finished: it stays in the beam unchanged, competing on its final score with the live ones, and
    the search stops once every beam of every row is finished or after ``max_length`` tokens. With
    ``beam_size=1`` this is greedy search.
    """
    _check_search(batch_size, max_length, start_token, end_token, pad_token)
    check_positive_int("beam_size", beam_size)
    if isinstance(length_penalty, bool) or not isinstance(length_penalty, numbers.Real) or length_penalty < 0:
        raise ValueError(f"length_penalty must be a number >= 0, got {length_penalty!r}")
    if penalty not in PENALTIES:
        raise ValueError(f"penalty must be one of {', '.join(map(repr, PENALTIES))}, got {penalty!r}")
    B, K = batch_size, beam_size
    rows = torch.arange(B, device=device)
    carry = reorder(carry, rows.repeat_interleave(K))  # (B * K) rows
    tokens = torch.full((B * K,), start_token, dtype=torch.long, device=device)
    log_prob = torch.zeros(B, K, device=device)
    log_prob[:, 1:] = float("-inf")  # K copies of one start would fill the beam with duplicates
    lengths = torch.zeros(B, K, dtype=torch.long, device=device)
    finished = torch.zeros(B, K, dtype=torch.bool, device=device)
    history = torch.empty(B, K, 0, dtype=torch.long, device=device)
    for t in range(max_length):
        logits, carry = step(tokens, carry)  # (B * K, V)
        V = logits.shape[-1]
        token_log_prob = F.log_softmax(logits.float(), dim=-1).view(B, K, V)
        # a finished hypothesis has one continuation, itself: padding, at no cost, no longer
        frozen = torch.full_like(token_log_prob, float("-inf"))
        frozen[..., pad_token] = 0.0
        token_log_prob = torch.where(finished[..., None], frozen, token_log_prob)
        total = log_prob[..., None] + token_log_prob  # (B, K, V)
        new_lengths = lengths + (~finished).long()  # (B, K)
        score = total / length_normaliser(new_lengths, length_penalty, penalty)[..., None]  # (B, K, V)
        _, flat = score.view(B, K * V).topk(K, dim=-1)  # (B, K), best first
        beam, token = flat // V, flat % V  # (B, K) each
        log_prob = total.view(B, K * V).gather(1, flat)
        lengths = new_lengths.gather(1, beam)
        finished = finished.gather(1, beam) | (token == end_token)
        history = torch.cat([history.gather(1, beam[..., None].expand(-1, -1, t)), token[..., None]], dim=-1)
        carry = reorder(carry, (beam + rows[:, None] * K).view(-1))
        tokens = token.view(-1)
        if bool(finished.all()):
            break
    score = log_prob / length_normaliser(lengths, length_penalty, penalty)
    return Beams(history, lengths, log_prob, score)
