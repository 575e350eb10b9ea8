"""Scores of translations, as text: BLEU and chrF by sacrebleu (the ``translate`` extra), exact match.

sacrebleu (Post 2018) scores detokenized text with its own tokenization (``13a`` for BLEU), so
figures are comparable across systems; each score comes with sacrebleu's signature, which says how
it was computed and should be printed beside it.

>>> scores = translation_scores(["the cat sat on the mat"], ["the cat sat on the mat"])
>>> scores["bleu"], scores["chrf"], scores["exact_match"]
(100.0, 100.0, 1.0)
"""

from __future__ import annotations

import unicodedata
from collections.abc import Sequence
from typing import Any

from .. import _extras


def _sacrebleu():
    return _extras.require("sacrebleu", "translate", "BLEU and chrF")


def _check(hypotheses: Sequence[str], references: Sequence[Any]) -> None:
    for name, value in (("hypotheses", hypotheses), ("references", references)):
        if isinstance(value, str) or not isinstance(value, Sequence):
            raise TypeError(f"{name} must be a list of strings, got {type(value).__name__}")
    if len(hypotheses) != len(references):
        raise ValueError(f"references must have one entry per hypothesis: expected {len(hypotheses)},"
                         f" got {len(references)}")  # fmt: skip
    if not hypotheses:
        raise ValueError("hypotheses must hold at least one translation, got none")


def _same(a: str, b: str) -> bool:
    return unicodedata.normalize("NFC", a).strip() == unicodedata.normalize("NFC", b).strip()


def translation_scores(hypotheses: Sequence[str], references: Sequence[str | Sequence[str]]) -> dict[str, Any]:
    """Corpus BLEU and chrF of ``hypotheses`` against ``references`` (sacrebleu's defaults), with
    their signatures, and the share of exact matches (NFC, surrounding white space ignored).

    ``references[i]`` is the reference of ``hypotheses[i]``, or a list of its references (any
    number each: BLEU counts n-grams against all, chrF takes the best, an exact match any)."""
    _check(hypotheses, references)
    metrics = _sacrebleu().metrics
    multi = [[r] if isinstance(r, str) else list(r) for r in references]
    if any(not refs for refs in multi):
        raise ValueError("every hypothesis needs at least one reference, got an empty list")
    width = max(map(len, multi))
    streams = [[refs[k] if k < len(refs) else None for refs in multi] for k in range(width)]
    bleu, chrf = metrics.BLEU(), metrics.CHRF()
    bleu_score, chrf_score = bleu.corpus_score(list(hypotheses), streams), chrf.corpus_score(list(hypotheses), streams)
    exact = sum(any(_same(h, r) for r in refs) for h, refs in zip(hypotheses, multi)) / len(hypotheses)
    return {
        "bleu": round(bleu_score.score, 2), "chrf": round(chrf_score.score, 2), "exact_match": exact,
        "bleu_signature": str(bleu.get_signature()), "chrf_signature": str(chrf.get_signature()),
        "sentences": len(hypotheses), "references": sum(map(len, multi)),
    }  # fmt: skip
