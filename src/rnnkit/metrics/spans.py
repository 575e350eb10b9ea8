"""Chunk (span) scores of sequence labels, as conlleval scores them (Tjong Kim Sang & Buchholz 2000).

Labels may follow IOB1, IOB2 (BIO) or BIOES; a span counts only when its type and both ends match.

>>> sorted(spans(["B-PER", "I-PER", "O", "B-LOC"]))
[('LOC', 3, 4), ('PER', 0, 2)]
"""

from __future__ import annotations

from collections import Counter


def _parts(label: str) -> tuple[str, str]:
    """``"B-PER"`` -> ("B", "PER"); ``"O"`` -> ("O", ""); an unprefixed ``"PER"`` reads as inside."""
    if label == "O":
        return "O", ""
    prefix, dash, kind = label.partition("-")
    return (prefix, kind) if dash and prefix in ("B", "I", "E", "S") else ("I", label)


def spans(labels: list[str]) -> set[tuple[str, int, int]]:
    """Chunks ``(type, start, end)`` from IOB1, IOB2 (BIO) or BIOES labels, by conlleval's rules
    (its ``endOfChunk`` and ``startOfChunk``): a type change ends a chunk and starts another."""
    found: set[tuple[str, int, int]] = set()
    start, previous, previous_kind = None, "O", ""
    for i, label in enumerate([*labels, "O"]):
        tag, kind = _parts(label)
        ends = (previous in ("B", "I") and tag in ("B", "S", "O")) or previous in ("E", "S") or (
            previous != "O" and previous_kind != kind
        )
        begins = tag in ("B", "S") or (previous in ("E", "S", "O") and tag in ("E", "I")) or (
            tag != "O" and previous_kind != kind
        )
        if ends and start is not None:
            found.add((previous_kind, start, i))
            start = None
        if begins:
            start = i
        previous, previous_kind = tag, kind
    return found


def span_scores(gold: list[list[str]], predicted: list[list[str]]) -> dict[str, float]:
    """Micro precision, recall and F1 over chunks, plus F1 per type (``f1/PER``...)."""
    correct, guessed, actual = Counter(), Counter(), Counter()
    for g, p in zip(gold, predicted):
        gold_spans, predicted_spans = spans(g), spans(p)
        for kind, *_ in gold_spans:
            actual[kind] += 1
        for kind, *_ in predicted_spans:
            guessed[kind] += 1
        for kind, *_ in gold_spans & predicted_spans:
            correct[kind] += 1

    def prf(c: int, g: int, a: int) -> tuple[float, float, float]:
        precision = c / g if g else 0.0
        recall = c / a if a else 0.0
        f1 = 2 * precision * recall / (precision + recall) if precision + recall else 0.0
        return precision, recall, f1

    precision, recall, f1 = prf(sum(correct.values()), sum(guessed.values()), sum(actual.values()))
    scores = {"precision": precision, "recall": recall, "f1": f1}
    for kind in sorted(actual | guessed):
        scores[f"f1/{kind}"] = prf(correct[kind], guessed[kind], actual[kind])[2]
    return scores
