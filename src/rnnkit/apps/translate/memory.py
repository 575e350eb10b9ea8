"""The baseline: a translation memory, the nearest training sentence's translation.

What a practitioner tries before a model (and what computer-aided translation tools do): find
the training source most like the input -- cosine similarity of TF-IDF vectors of lower-cased
word unigrams and bigrams -- and return its translation. On Tatoeba, where many sentences differ
by a word, it is a strong floor; a test sentence is never in training (the split is by source).

>>> memory = TranslationMemory([("I am cold.", "J'ai froid."), ("He is tall.", "Il est grand.")])
>>> memory.translate(["i am very cold."])
["J'ai froid."]
"""

from __future__ import annotations

import math
import re
from collections import Counter
from collections.abc import Sequence

import torch

WORD = re.compile(r"\w+|[^\w\s]")


def _features(text: str) -> list[str]:
    tokens = WORD.findall(text.lower())
    return tokens + [f"{a} {b}" for a, b in zip(tokens, tokens[1:])]


class TranslationMemory:
    """``translate(sources)``: the target of the most similar training source (ties: the first)."""

    def __init__(self, pairs: Sequence[tuple[str, str]]) -> None:
        if not pairs:
            raise ValueError("a translation memory needs at least one training pair, got none")
        first: dict[str, str] = {}
        for source, target in pairs:
            first.setdefault(source, target)  # one translation per distinct source: the first seen
        self.sources, self.targets = list(first), list(first.values())
        bags = [Counter(_features(s)) for s in self.sources]
        document_frequency = Counter(f for bag in bags for f in bag)
        self.index = {f: i for i, f in enumerate(document_frequency)}
        n = len(bags)
        self.idf = {f: math.log((1 + n) / (1 + df)) + 1.0 for f, df in document_frequency.items()}
        self.matrix = self._vectors(bags)  # (N, F), sparse

    def _vectors(self, bags: list[Counter]) -> torch.Tensor:
        rows, cols, values = [], [], []
        for r, bag in enumerate(bags):
            weights = {self.index[f]: (1 + math.log(c)) * self.idf[f] for f, c in bag.items() if f in self.index}
            norm = math.sqrt(sum(w * w for w in weights.values())) or 1.0
            for c, w in weights.items():
                rows.append(r)
                cols.append(c)
                values.append(w / norm)
        return torch.sparse_coo_tensor(torch.tensor([rows, cols], dtype=torch.long).view(2, -1),
                                       torch.tensor(values, dtype=torch.float32),
                                       (len(bags), len(self.index)), check_invariants=True).coalesce()  # fmt: skip

    def translate(self, sources: Sequence[str], *, batch_size: int = 32) -> list[str]:
        out: list[str] = []
        for start in range(0, len(sources), batch_size):
            chunk = [Counter(_features(s)) for s in sources[start : start + batch_size]]
            queries = self._vectors(chunk).to_dense().T  # (F, b)
            similarity = torch.sparse.mm(self.matrix, queries)  # (N, F) @ (F, b) -> (N, b)
            out += [self.targets[i] for i in similarity.argmax(0).tolist()]
        return out
