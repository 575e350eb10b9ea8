"""Scores of generated captions (word sequences) against their references: corpus BLEU-4 by
sacrebleu (Post 2018, so figures compare across papers), exact match, and position-wise token
accuracy.

>>> exact_match_rate(["a red car", "a dog"], ["a red car", "a cat"])
0.5
>>> token_accuracy([["a", "red", "car"], ["a", "dog"]], [["a", "red", "bus"], ["a", "dog", "runs"]])
0.6666666666666666
"""

from __future__ import annotations

from collections.abc import Sequence

from .._extras import require


def corpus_bleu(hypotheses: Sequence[str], references: Sequence[str] | Sequence[Sequence[str]]) -> float:
    """Corpus BLEU-4 (0-100) of ``hypotheses`` against one reference each (a string per
    hypothesis) or several (a list of strings per hypothesis), sacrebleu's defaults (13a
    tokenisation, exponential smoothing of zero n-gram counts)."""
    sacrebleu = require("sacrebleu", "caption", "BLEU")
    if len(hypotheses) != len(references):
        raise ValueError(f"references must have one entry per hypothesis: {len(hypotheses)} hypotheses,"
                         f" {len(references)} references")  # fmt: skip
    if not hypotheses:
        raise ValueError("hypotheses must hold at least one caption, got none")
    sets = [[r] if isinstance(r, str) else list(r) for r in references]
    width = max(len(s) for s in sets)
    streams = [[s[i] if i < len(s) else None for s in sets] for i in range(width)]  # sacrebleu's layout
    return float(sacrebleu.corpus_bleu(list(hypotheses), streams).score)


def exact_match_rate(hypotheses: Sequence[str], references: Sequence[str]) -> float:
    """The fraction of hypotheses equal to their reference, after stripping outer spaces."""
    if len(hypotheses) != len(references) or not hypotheses:
        raise ValueError(f"expected equally many hypotheses and references, at least one; got {len(hypotheses)}"
                         f" and {len(references)}")  # fmt: skip
    return sum(h.strip() == r.strip() for h, r in zip(hypotheses, references)) / len(hypotheses)


def token_accuracy(hypotheses: Sequence[Sequence[str]], references: Sequence[Sequence[str]]) -> float:
    """Position-wise agreement of token lists: matching positions over the longer length of
    each pair, summed over the corpus (a missing or extra token counts as wrong)."""
    if len(hypotheses) != len(references) or not hypotheses:
        raise ValueError(f"expected equally many hypotheses and references, at least one; got {len(hypotheses)}"
                         f" and {len(references)}")  # fmt: skip
    right = sum(sum(a == b for a, b in zip(h, r)) for h, r in zip(hypotheses, references))
    total = sum(max(len(h), len(r)) for h, r in zip(hypotheses, references))
    return right / total if total else 1.0
