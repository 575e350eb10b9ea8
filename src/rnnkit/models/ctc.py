"""Connectionist temporal classification (Graves et al. 2006): the loss, decoding, alignment, priors.

A CTC model emits, at every output frame, a distribution over ``C`` classes: the ``blank`` (id 0
by default) and the ``C - 1`` symbols. A labelling is read off a frame path by merging repeated
symbols, then dropping blanks (``a a - b b -> a b``; ``a - a -> a a``). Everything here is
batch-first, over *logits* ``(B, T, C)`` (log-softmax is applied inside), with the number of valid
frames of each row in ``lengths`` ``(B,)`` (``None``: all ``T``).

- :func:`ctc_loss` -- the negative log-likelihood of the targets, ``torch.nn.functional.ctc_loss``
  on batch-first logits;
- :func:`greedy_decode` -- best-path decoding: the most likely class at every frame, collapsed;
- :func:`prefix_beam_search` -- prefix beam search (Hannun et al. 2014, "First-pass large
  vocabulary continuous speech recognition using bi-directional recurrent DNNs", algorithm 1):
  labellings are scored by the summed probability of every path that collapses to them, with an
  optional prior over labellings (:class:`NGramPrior`, :class:`WordListPrior`) weighted in;
- :func:`forced_align` -- the most likely frame path of a given labelling (Viterbi): which frames
  emit which symbol;
- :class:`GreedyStream` -- greedy decoding one frame at a time, for streaming recognition.

The model over any rnnkit encoder is :class:`rnnkit.models.CTC` (registered as ``"ctc"``).

>>> import torch
>>> probs = torch.tensor([[[0.1, 0.8, 0.1], [0.1, 0.8, 0.1], [0.9, 0.05, 0.05], [0.1, 0.1, 0.8]]])
>>> greedy_decode(probs.log())  # a a - b  ->  a b
[[1, 2]]
>>> prefix_beam_search(probs.log(), beam_width=4)[0][0].tokens
(1, 2)
>>> forced_align(probs[0].log(), torch.tensor([1, 2])).tolist()
[1, 1, 0, 2]
"""

from __future__ import annotations

import math
import numbers
from collections import defaultdict
from collections.abc import Iterable, Sequence
from typing import Any, NamedTuple, Protocol

import torch
import torch.nn.functional as F
from torch import Tensor

from .._validation import check_nonnegative_int, check_positive_int, check_tensor

NEG_INF = float("-inf")


# -----------------------------------------------------------------------------
# checks


def _check_logits(logits: object, lengths: object, blank: int) -> tuple[Tensor, Tensor]:
    """``logits`` ``(B, T, C)`` floating and ``lengths`` ``(B,)`` in ``[0, T]`` (all ``T`` if None)."""
    logits = check_tensor("logits", logits)
    if logits.dim() != 3:
        raise ValueError(f"logits must be 3-D (batch, frames, classes), got shape {tuple(logits.shape)}")
    if not logits.is_floating_point():
        raise TypeError(f"logits must be a floating-point tensor, got dtype {logits.dtype}")
    B, T, C = logits.shape
    check_nonnegative_int("blank", blank)
    if blank >= C:
        raise ValueError(f"blank must be a class id below the number of classes {C}, got {blank}")
    if lengths is None:
        return logits, torch.full((B,), T, dtype=torch.long)
    lengths = check_tensor("lengths", lengths)
    if lengths.shape != (B,) or lengths.is_floating_point() or lengths.dtype == torch.bool:
        raise ValueError(
            f"lengths must be a 1-D integer tensor of {B} frame counts, got dtype {lengths.dtype} shape {tuple(lengths.shape)}"
        )
    lengths = lengths.detach().cpu().long()
    if B and (int(lengths.min()) < 0 or int(lengths.max()) > T):
        raise ValueError(f"lengths must be in [0, {T}] (the logits' frames), got {lengths.tolist()}")
    return logits, lengths


# -----------------------------------------------------------------------------
# the loss


def ctc_loss(
    logits: Tensor,
    targets: Tensor,
    lengths: Tensor | None,
    target_lengths: Tensor,
    *,
    blank: int = 0,
    reduction: str = "mean",
    zero_infinity: bool = False,
) -> Tensor:
    """The CTC loss of batch-first ``logits`` ``(B, T, C)``: ``torch.nn.functional.ctc_loss``.

    ``targets`` ``(B, S)`` holds each row's symbol ids (never ``blank``), padded past
    ``target_lengths`` ``(B,)``. ``reduction`` is torch's: ``"mean"`` divides each row's negative
    log-likelihood by its target length, then averages over the batch; ``"sum"``; ``"none"`` gives
    ``(B,)``. A row with more symbols (plus the blanks repeated symbols need) than frames has no
    path: its loss is infinite, or 0 with ``zero_infinity``.
    """
    logits, lengths = _check_logits(logits, lengths, blank)
    targets = check_tensor("targets", targets)
    target_lengths = check_tensor("target_lengths", target_lengths)
    if targets.dim() != 2 or targets.shape[0] != logits.shape[0] or targets.is_floating_point():
        raise ValueError(
            f"targets must be 2-D integer (batch, symbols) with batch {logits.shape[0]},"
            f" got dtype {targets.dtype} shape {tuple(targets.shape)}"
        )
    if target_lengths.shape != (logits.shape[0],) or target_lengths.is_floating_point():
        raise ValueError(
            f"target_lengths must be a 1-D integer tensor of {logits.shape[0]} symbol counts,"
            f" got dtype {target_lengths.dtype} shape {tuple(target_lengths.shape)}"
        )
    if reduction not in ("mean", "sum", "none"):
        raise ValueError(f"reduction must be 'mean', 'sum' or 'none', got {reduction!r}")
    work = logits if logits.dtype == torch.float64 else logits.float()  # half precision is too coarse for CTC
    log_probs = F.log_softmax(work, dim=-1).transpose(0, 1)  # (T, B, C), as torch wants it
    return F.ctc_loss(log_probs, targets.long(), lengths.to(logits.device), target_lengths.long().to(logits.device),
                      blank=blank, reduction=reduction, zero_infinity=zero_infinity)  # fmt: skip


# -----------------------------------------------------------------------------
# greedy (best path) decoding


def collapse(path: Iterable[int], blank: int = 0) -> list[int]:
    """The labelling of a frame path: repeats merged, then blanks dropped.

    >>> collapse([1, 1, 0, 1, 2, 2, 0])
    [1, 1, 2]
    """
    out, previous = [], None
    for c in path:
        c = int(c)
        if c != previous and c != blank:
            out.append(c)
        previous = c
    return out


def greedy_decode(logits: Tensor, lengths: Tensor | None = None, *, blank: int = 0) -> list[list[int]]:
    """Best-path decoding: each row's most likely class at every valid frame, collapsed."""
    logits, lengths = _check_logits(logits, lengths, blank)
    best = logits.detach().argmax(-1).cpu()  # (B, T)
    return [collapse(best[b, : int(lengths[b])].tolist(), blank) for b in range(best.shape[0])]


class GreedyStream:
    """Greedy decoding one frame at a time: ``push(logits_t)`` gives the symbols that frame adds.

    Pushing every frame of a sequence gives :func:`greedy_decode`'s labelling, symbol by symbol.

    >>> import torch
    >>> stream = GreedyStream(batch_size=1)
    >>> [stream.push(torch.tensor([[0.0, 5.0, 0.0]])) for _ in range(2)] + [stream.push(torch.tensor([[0.0, 0.0, 5.0]]))]
    [[[1]], [[]], [[2]]]
    """

    def __init__(self, batch_size: int = 1, *, blank: int = 0) -> None:
        self.batch_size = check_positive_int("batch_size", batch_size)
        self.blank = check_nonnegative_int("blank", blank)
        self.previous = [None] * batch_size
        self.tokens: list[list[int]] = [[] for _ in range(batch_size)]  # everything decoded so far

    def push(self, logits: Tensor) -> list[list[int]]:
        """``logits`` ``(B, C)`` of one frame; returns each row's new symbols (none or one)."""
        logits = check_tensor("logits", logits)
        if logits.dim() != 2 or logits.shape[0] != self.batch_size:
            raise ValueError(f"logits must be (batch {self.batch_size}, classes), got shape {tuple(logits.shape)}")
        added = []
        for b, c in enumerate(logits.detach().argmax(-1).tolist()):
            new = [c] if c != self.previous[b] and c != self.blank else []
            self.previous[b] = c
            self.tokens[b].extend(new)
            added.append(new)
        return added


# -----------------------------------------------------------------------------
# priors over labellings


class Prior(Protocol):
    """A prior over labellings, read by :func:`prefix_beam_search` one symbol at a time.

    ``score(prefix, token)`` is ``log p(token | prefix)`` (``-inf``: never); ``final(prefix)`` the
    log-probability that the labelling ends after ``prefix``.
    """

    def score(self, prefix: tuple[int, ...], token: int) -> float: ...

    def final(self, prefix: tuple[int, ...]) -> float: ...


class NGramPrior:
    """A symbol n-gram model (a character language model over CTC symbol ids), fitted on labellings.

    Interpolated additive smoothing: ``p(w | h) = (c(h, w) + k * p(w | h')) / (c(h) + k)``, where
    ``h'`` drops the oldest symbol of the context ``h`` and the order-0 base is uniform over the
    symbols and the end of the labelling; contexts before the start are filled with a start mark.
    Every conditional sums to 1 over the symbols and the end. In the example (``k = 0.5``) the
    unigram ``p(2) = (3 + 0.5 / 3) / (9 + 0.5) = 1/3``; after ``1`` came ``2`` twice and the end
    once, so ``p(2 | 1) = (2 + 0.5 / 3) / (3 + 0.5) = 0.619`` and ``p(1 | 1) = (0.5 / 3) / 3.5``.

    >>> prior = NGramPrior.fit([[1, 2], [1, 2], [2, 1]], symbols=[1, 2], order=2)
    >>> round(math.exp(prior.score((1,), 2)), 3), round(math.exp(prior.score((1,), 1)), 3)
    (0.619, 0.048)
    """

    START, END = -1, -2

    def __init__(self, counts: dict[tuple[int, ...], dict[int, int]], symbols: Sequence[int], order: int,
                 smoothing: float) -> None:  # fmt: skip
        self.counts = counts  # context (up to order - 1 symbols) -> next symbol (or END) -> count
        self.symbols = tuple(int(s) for s in symbols)
        self.order = check_positive_int("order", order)
        if isinstance(smoothing, bool) or not isinstance(smoothing, numbers.Real) or not smoothing > 0:
            raise ValueError(f"smoothing must be a number > 0, got {smoothing!r}")
        self.smoothing = float(smoothing)
        self._totals = {h: sum(n.values()) for h, n in counts.items()}
        self._cache: dict[tuple[tuple[int, ...], int], float] = {}

    @classmethod
    def fit(cls, labellings: Iterable[Sequence[int]], *, symbols: Sequence[int], order: int = 3,
            smoothing: float = 0.5) -> NGramPrior:  # fmt: skip
        """Count the n-grams of ``labellings`` (sequences of symbol ids among ``symbols``)."""
        check_positive_int("order", order)
        known = set(int(s) for s in symbols)
        if not known:
            raise ValueError("symbols must name at least one symbol id, got none")
        counts: dict[tuple[int, ...], dict[int, int]] = defaultdict(lambda: defaultdict(int))
        for i, labelling in enumerate(labellings):
            sequence = [int(s) for s in labelling]
            unknown = sorted(set(sequence) - known)
            if unknown:
                raise ValueError(f"labellings[{i}] holds symbol ids {unknown} that are not among symbols")
            padded = [cls.START] * (order - 1) + sequence + [cls.END]
            for j in range(order - 1, len(padded)):
                for n in range(order):  # every context length, for the interpolation
                    counts[tuple(padded[j - n : j])][padded[j]] += 1
        return cls({h: dict(n) for h, n in counts.items()}, sorted(known), order, smoothing)

    def _probability(self, context: tuple[int, ...], token: int) -> float:
        key = (context, token)
        if key not in self._cache:
            lower = self._probability(context[1:], token) if context else 1.0 / (len(self.symbols) + 1)
            seen = self.counts.get(context, {})
            k = self.smoothing
            self._cache[key] = (seen.get(token, 0) + k * lower) / (self._totals.get(context, 0) + k)
        return self._cache[key]

    def _context(self, prefix: tuple[int, ...]) -> tuple[int, ...]:
        n = self.order - 1
        if n == 0:
            return ()
        return tuple([self.START] * max(0, n - len(prefix)) + list(prefix[-n:]))

    def score(self, prefix: tuple[int, ...], token: int) -> float:
        if token not in self.symbols:
            return NEG_INF
        return math.log(self._probability(self._context(prefix), token))

    def final(self, prefix: tuple[int, ...]) -> float:
        return math.log(self._probability(self._context(prefix), self.END))

    def to_dict(self) -> dict[str, Any]:
        """JSON-able: ``NGramPrior.from_dict`` rebuilds it."""
        return {"kind": "ngram", "order": self.order, "smoothing": self.smoothing, "symbols": list(self.symbols),
                "counts": [[list(h), [[w, n] for w, n in sorted(nexts.items())]]
                           for h, nexts in sorted(self.counts.items())]}  # fmt: skip

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> NGramPrior:
        counts = {tuple(int(s) for s in h): {int(w): int(n) for w, n in nexts} for h, nexts in data["counts"]}
        return cls(counts, data["symbols"], int(data["order"]), float(data["smoothing"]))


class WordListPrior:
    """A closed vocabulary: labellings made of listed words, separated by ``separator``.

    A constraint rather than a distribution: ``score`` is 0 while the labelling can still become
    words of the list and ``-inf`` once it cannot; ``final`` is 0 when it ends on a whole word.
    Without a separator the whole labelling must be one listed word (an isolated-word recogniser).

    >>> prior = WordListPrior([[1, 2], [3]], separator=0)
    >>> prior.score((1,), 2), prior.score((1,), 3), prior.final((1, 2)), prior.final((1,))
    (0.0, -inf, 0.0, -inf)
    """

    def __init__(self, words: Iterable[Sequence[int]], separator: int | None = None) -> None:
        self.words = sorted({tuple(int(s) for s in w) for w in words})
        if not self.words:
            raise ValueError("words must list at least one word, got none")
        self.separator = separator
        if separator is not None and any(separator in w for w in self.words):
            raise ValueError(f"words must not contain the separator {separator}")
        self._prefixes = {w[:i] for w in self.words for i in range(len(w) + 1)}
        self._whole = set(self.words)

    def _current(self, prefix: tuple[int, ...]) -> tuple[int, ...]:
        if self.separator is None or self.separator not in prefix:
            return prefix
        return prefix[len(prefix) - prefix[::-1].index(self.separator) :]

    def score(self, prefix: tuple[int, ...], token: int) -> float:
        word = self._current(prefix)
        if token == self.separator:
            return 0.0 if word and word in self._whole else NEG_INF
        return 0.0 if word + (token,) in self._prefixes else NEG_INF

    def final(self, prefix: tuple[int, ...]) -> float:
        return 0.0 if self._current(prefix) in self._whole else NEG_INF

    def to_dict(self) -> dict[str, Any]:
        return {"kind": "words", "words": [list(w) for w in self.words], "separator": self.separator}

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> WordListPrior:
        return cls(data["words"], data.get("separator"))


def prior_from_dict(data: dict[str, Any]) -> NGramPrior | WordListPrior:
    """A prior saved by its ``to_dict``."""
    kinds = {"ngram": NGramPrior, "words": WordListPrior}
    if not isinstance(data, dict) or data.get("kind") not in kinds:
        raise ValueError(f"a saved prior must have kind 'ngram' or 'words', got {data!r:.80}")
    return kinds[data["kind"]].from_dict(data)


# -----------------------------------------------------------------------------
# prefix beam search


class Hypothesis(NamedTuple):
    """One labelling a beam search kept."""

    tokens: tuple[int, ...]
    log_prob: float  # log p(labelling | input) under the model: every path that collapses to it
    score: float  # the ranking: log_prob + prior_weight * prior + insertion_bonus * len(tokens)


def _logadd(a: float, b: float) -> float:
    if a == NEG_INF:
        return b
    if b == NEG_INF:
        return a
    hi, lo = (a, b) if a > b else (b, a)
    return hi + math.log1p(math.exp(lo - hi))


def prefix_beam_search(
    logits: Tensor,
    lengths: Tensor | None = None,
    *,
    beam_width: int = 8,
    blank: int = 0,
    prior: Prior | None = None,
    prior_weight: float = 1.0,
    insertion_bonus: float = 0.0,
    min_token_prob: float = 0.0,
) -> list[list[Hypothesis]]:
    """Prefix beam search: for each row, the ``beam_width`` best labellings, best first.

    Each prefix keeps two log-probabilities, of the paths so far that collapse to it and end in a
    blank or in its last symbol (the two ways it extends differently: after a blank a repeated
    symbol is a new one). At every frame each kept prefix is extended by the blank, by its last
    symbol (a path that stays on it) and by every symbol; extensions that reach the same prefix
    are summed, and the ``beam_width`` best by ``score`` survive. With a ``prior`` (see
    :class:`Prior`) the score adds ``prior_weight`` times its log-probability of the prefix (and,
    at the end, of ending there); ``insertion_bonus`` per symbol offsets the prior's preference for
    short labellings (Hannun et al. 2014, eq. 3's beta). ``min_token_prob`` skips, at each frame,
    the symbols less probable than that (0: try all).

    At ``beam_width=1`` this keeps the single best *labelling* at each frame by summed probability,
    which is not always greedy decoding's best *path*: with the prefix ``a`` ending in ``a`` and a
    frame of blank 0.3, ``a`` 0.3, ``b`` 0.4, greedy takes ``b`` (0.4), the search keeps ``a``
    (0.3 + 0.3). On confident outputs (as a trained model's are) the two agree.
    """
    logits, lengths = _check_logits(logits, lengths, blank)
    check_positive_int("beam_width", beam_width)
    for name, value in (("prior_weight", prior_weight), ("insertion_bonus", insertion_bonus)):
        if isinstance(value, bool) or not isinstance(value, numbers.Real) or not math.isfinite(value):
            raise ValueError(f"{name} must be a finite number, got {value!r}")
    if isinstance(min_token_prob, bool) or not isinstance(min_token_prob, numbers.Real) or not 0 <= min_token_prob < 1:
        raise ValueError(f"min_token_prob must be a number in [0, 1), got {min_token_prob!r}")
    if prior is not None and not (callable(getattr(prior, "score", None)) and callable(getattr(prior, "final", None))):
        raise TypeError(f"prior must have score(prefix, token) and final(prefix), got {type(prior).__name__}")
    log_probs = F.log_softmax(logits.detach().float(), dim=-1).cpu()  # (B, T, C)
    threshold = math.log(min_token_prob) if min_token_prob > 0 else NEG_INF
    return [_search(log_probs[b, : int(lengths[b])], beam_width, blank, prior, float(prior_weight),
                    float(insertion_bonus), threshold) for b in range(log_probs.shape[0])]  # fmt: skip


def _search(log_probs: Tensor, K: int, blank: int, prior: Prior | None, weight: float, bonus: float,
            threshold: float) -> list[Hypothesis]:  # fmt: skip
    """One row: ``log_probs`` ``(T, C)``."""
    classes = [c for c in range(log_probs.shape[1]) if c != blank]
    prior_of: dict[tuple[int, ...], float] = {(): 0.0}  # the prior's log-probability of each prefix seen

    def prior_score(prefix: tuple[int, ...]) -> float:
        if prefix not in prior_of:
            parent = prior_score(prefix[:-1])
            prior_of[prefix] = parent + (prior.score(prefix[:-1], prefix[-1]) if parent > NEG_INF else 0.0)
        return prior_of[prefix]

    def rank(prefix: tuple[int, ...], p: tuple[float, float], end: bool = False) -> float:
        total = _logadd(*p)
        if prior is None:
            return total + bonus * len(prefix)
        lm = prior_score(prefix) + (prior.final(prefix) if end else 0.0)
        return total + (weight * lm if lm > NEG_INF else NEG_INF) + bonus * len(prefix)

    beams: dict[tuple[int, ...], tuple[float, float]] = {(): (0.0, NEG_INF)}  # prefix -> (blank, symbol)
    for frame in log_probs.tolist():
        nxt: dict[tuple[int, ...], list[float]] = defaultdict(lambda: [NEG_INF, NEG_INF])
        tried = [c for c in classes if frame[c] >= threshold]
        for prefix, (p_blank, p_symbol) in beams.items():
            total = _logadd(p_blank, p_symbol)
            here = nxt[prefix]
            here[0] = _logadd(here[0], total + frame[blank])  # a blank: the prefix stays
            last = prefix[-1] if prefix else None
            for c in tried:
                p = frame[c]
                extended = prefix + (c,)
                if prior is not None and prior_score(extended) == NEG_INF:
                    if c == last:  # staying on the last symbol is no new symbol: always allowed
                        here[1] = _logadd(here[1], p_symbol + p)
                    continue
                if c == last:
                    here[1] = _logadd(here[1], p_symbol + p)  # a a -> a: the path stays on it
                    grown = nxt[extended]
                    grown[1] = _logadd(grown[1], p_blank + p)  # a - a -> a a: only after a blank
                else:
                    grown = nxt[extended]
                    grown[1] = _logadd(grown[1], total + p)
        ranked = sorted(nxt.items(), key=lambda item: rank(item[0], item[1]), reverse=True)
        beams = {prefix: (p[0], p[1]) for prefix, p in ranked[:K] if _logadd(*p) > NEG_INF}
        if not beams:  # every extension impossible: nothing more to find
            break
    hypotheses = [Hypothesis(prefix, _logadd(*p), rank(prefix, p, end=True)) for prefix, p in beams.items()]
    return sorted(hypotheses, key=lambda h: (h.score, h.log_prob), reverse=True)


# -----------------------------------------------------------------------------
# forced alignment


def forced_align(log_probs: Tensor, target: Sequence[int] | Tensor, *, blank: int = 0) -> Tensor:
    """The most likely frame path ``(T,)`` that collapses to ``target``: which frames emit what.

    ``log_probs`` ``(T, C)`` are one sequence's valid frames (logits work too: the path is the
    same after log-softmax). Viterbi over the target with blanks between and around its symbols
    (Graves et al. 2006, section 4.1's extended labelling). Raises if ``T`` is too short for any
    path (the symbols plus a blank between each repeated pair).
    """
    log_probs = check_tensor("log_probs", log_probs)
    if log_probs.dim() != 2 or not log_probs.is_floating_point():
        raise ValueError(f"log_probs must be a 2-D floating tensor (frames, classes), got shape {tuple(log_probs.shape)}")
    lp = F.log_softmax(log_probs.detach().double(), dim=-1).cpu()  # (T, C)
    T, C = lp.shape
    symbols = [int(s) for s in (target.tolist() if isinstance(target, Tensor) else target)]
    if any(s == blank or not 0 <= s < C for s in symbols):
        raise ValueError(f"target must hold symbol ids in [0, {C}) other than the blank {blank}, got {symbols}")
    needed = len(symbols) + sum(a == b for a, b in zip(symbols, symbols[1:]))
    if T < max(needed, 1):
        raise ValueError(f"{len(symbols)} symbols need at least {needed} frames, got {T}")
    extended = [blank]
    for s in symbols:
        extended += [s, blank]
    S = len(extended)
    emit = lp[:, extended]  # (T, S)
    score = torch.full((S,), NEG_INF, dtype=torch.float64)
    score[0] = emit[0, 0]
    if S > 1:
        score[1] = emit[0, 1]
    came_from = torch.zeros(T, S, dtype=torch.long)
    skip_ok = torch.tensor([s >= 2 and extended[s] != blank and extended[s] != extended[s - 2] for s in range(S)])
    index = torch.arange(S)
    for t in range(1, T):
        stay = score
        step = torch.cat([score.new_full((1,), NEG_INF), score[:-1]])
        skip = torch.cat([score.new_full((2,), NEG_INF), score[:-2]]).masked_fill(~skip_ok, NEG_INF)
        options = torch.stack([stay, step, skip])  # (3, S)
        best, which = options.max(0)
        came_from[t] = index - which
        score = best + emit[t]
    end = S - 1 if S == 1 or score[S - 1] >= score[S - 2] else S - 2
    path = [end]
    for t in range(T - 1, 0, -1):
        path.append(int(came_from[t, path[-1]]))
    return torch.tensor([extended[s] for s in reversed(path)], dtype=torch.long)
