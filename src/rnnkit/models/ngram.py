"""Count-based baselines for sequences of symbols: a smoothed n-gram model and "repeat the last symbol".

:class:`NGramModel` interpolates every order below ``n`` by Witten-Bell smoothing (Witten & Bell
1991; Chen & Goodman 1999, section 2.5):

.. math::

    P(w \\mid h) = \\frac{c(h, w) + T(h)\\, P(w \\mid h')}{c(h) + T(h)}

where ``c(h)`` counts the history ``h`` (the last ``n - 1`` symbols), ``T(h)`` the distinct
symbols seen after it and ``h'`` is ``h`` without its oldest symbol; below the unigram sits a
``base`` distribution that gives every possible symbol mass, so a held-out symbol never seen in
training has a finite cost. Sequences start after ``n - 1`` copies of a start symbol, as a
recurrent model starts from its start token.

>>> model = NGramModel(2).fit([["a", "b", "a", "b"]])
>>> round(model.probability("b", ["a"]), 4)  # (2 + 1 * 4/9) / (2 + 1): a was always followed by b
0.8148
"""

from __future__ import annotations

import math
from collections import defaultdict
from collections.abc import Callable, Hashable, Iterable, Sequence

from .._validation import check_positive_int

_START = ("<start>",)


class NGramModel:
    """An interpolated Witten-Bell n-gram model of order ``n`` over hashable symbols.

    ``base(symbol) -> probability`` is the distribution under the unigram (it must sum to one
    over every symbol that can occur); the default is uniform over the training symbols and one
    unknown symbol.
    """

    def __init__(self, n: int, base: Callable[[Hashable], float] | None = None) -> None:
        self.n = check_positive_int("n", n)
        self.base = base
        self.counts: list[dict] = [defaultdict(int) for _ in range(n)]  # order k: (history, w) -> count
        self.histories: list[dict] = [defaultdict(lambda: [0, 0]) for _ in range(n)]  # history -> [c(h), T(h)]
        self.vocabulary: set = set()

    def fit(self, sequences: Iterable[Sequence[Hashable]]) -> NGramModel:
        for sequence in sequences:
            padded = [_START] * (self.n - 1) + list(sequence)
            self.vocabulary.update(sequence)
            for i in range(self.n - 1, len(padded)):
                w = padded[i]
                for k in range(self.n):  # k symbols of history
                    h = tuple(padded[i - k : i])
                    key = (h, w)
                    seen = self.counts[k][key]
                    self.counts[k][key] = seen + 1
                    record = self.histories[k][h]
                    record[0] += 1
                    record[1] += seen == 0
        if not self.vocabulary:
            raise ValueError("fit needs at least one non-empty sequence")
        return self

    def _base(self, w: Hashable) -> float:
        if self.base is not None:
            return self.base(w)
        size = len(self.vocabulary) + 1  # the training symbols and one for everything else
        return 1.0 / size

    def probability(self, w: Hashable, history: Sequence[Hashable], order: int | None = None) -> float:
        """``P(w | history)`` under the model of ``order`` (at most ``n``); the history's last symbols count."""
        order = self.n if order is None else order
        if not 1 <= order <= self.n:
            raise ValueError(f"order must be in 1..{self.n}, got {order}")
        history = [_START] * (self.n - 1) + list(history)
        p = self._base(w)
        for k in range(order):  # from the unigram up
            h = tuple(history[len(history) - k :]) if k else ()
            record = self.histories[k].get(h)
            if record is None or record[0] == 0:
                continue  # an unseen history: the lower order's estimate stands
            c_h, types = record
            p = (self.counts[k].get((h, w), 0) + types * p) / (c_h + types)
        return p

    def log_likelihood(self, sequence: Sequence[Hashable], order: int | None = None) -> float:
        """The natural-log probability of ``sequence``, each symbol given the ones before it."""
        total = 0.0
        for i, w in enumerate(sequence):
            total += math.log(self.probability(w, sequence[max(0, i - self.n + 1) : i], order))
        return total


class RepeatModel:
    """"Repeat the previous symbol": ``P(w | prev) = (1 - rate) [w = prev] + rate * base(w)``,
    with ``rate`` the fraction of training steps that do not repeat the one before."""

    def __init__(self, base: Callable[[Hashable], float]) -> None:
        self.base = base
        self.rate = 1.0

    def fit(self, sequences: Iterable[Sequence[Hashable]]) -> RepeatModel:
        changes = steps = 0
        for sequence in sequences:
            for prev, w in zip(sequence, sequence[1:]):
                steps += 1
                changes += prev != w
        if steps == 0:
            raise ValueError("fit needs a sequence of at least two symbols")
        self.rate = min(max(changes / steps, 1e-6), 1.0)
        return self

    def log_likelihood(self, sequence: Sequence[Hashable]) -> float:
        total = math.log(self.base(sequence[0])) if len(sequence) else 0.0
        for prev, w in zip(sequence, sequence[1:]):
            total += math.log((1 - self.rate) * (w == prev) + self.rate * self.base(w))
        return total
