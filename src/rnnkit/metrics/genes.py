"""Gene finding scores: per base (coding F1, frame accuracy) and per gene (3' ends, exact starts).

Per-base labels are integers: ``0`` non-coding, ``1..3`` coding on the + strand at codon position
0..2, ``4..6`` the same on the - strand, ``-1`` coding in two frames at once (two overlapping
genes) and any other negative value a base that is not scored (a pseudogene's). This is the
scheme of :mod:`rnnkit.data.genome`.

Genes are ``(start, end, strand)``: 0-based half-open forward coordinates, the stop codon
included, ``strand`` +1 or -1. Gene annotators score calls by their ends (Hyatt et al. 2010,
Prodigal): a call finds a reference gene's **3' end** when it is on the same strand and ends at
the same stop codon, and its **exact start** when both ends match. Sensitivity is the share of
reference genes found, precision the share of calls that find one.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence

import numpy as np

Gene = tuple[int, int, int]


def _ratio(a: float, b: float) -> float:
    return a / b if b else float("nan")


def base_scores(reference: Sequence[int] | np.ndarray, predicted: Sequence[int] | np.ndarray) -> dict[str, float]:
    """Per-base scores of ``predicted`` labels (``0..6``) against ``reference`` (module docstring).

    ``coding_precision``, ``coding_recall``, ``coding_f1``: coding (any strand or frame) against
    non-coding, over the scored bases; ``frame_accuracy``: of the bases both call coding and the
    reference codes in one frame, the share with the same strand and codon position;
    ``accuracy``: the exact label over the scored single-frame bases; ``coding_share``: the
    reference's coding share (what calling every base coding gets as precision).
    """
    ref, pred = np.asarray(reference), np.asarray(predicted)
    if ref.shape != pred.shape or ref.ndim != 1:
        raise ValueError(f"reference and predicted must be 1-d and equally long, got shapes {ref.shape}, {pred.shape}")
    if pred.size and (pred.min() < 0 or pred.max() > 6):
        raise ValueError(f"predicted labels must be in 0..6, got values from {pred.min()} to {pred.max()}")
    scored = (ref >= 0) | (ref == -1)
    ref_coding, pred_coding = (ref != 0) & scored, (pred != 0) & scored
    tp = int((ref_coding & pred_coding).sum())
    precision, recall = _ratio(tp, int(pred_coding.sum())), _ratio(tp, int(ref_coding.sum()))
    f1 = _ratio(2 * precision * recall, precision + recall) if tp else 0.0
    single = ref >= 0
    both = single & (ref > 0) & pred_coding
    return {
        "bases": int(scored.sum()),
        "coding_share": _ratio(int(ref_coding.sum()), int(scored.sum())),
        "coding_precision": precision,
        "coding_recall": recall,
        "coding_f1": f1,
        "frame_accuracy": _ratio(int((ref[both] == pred[both]).sum()), int(both.sum())),
        "accuracy": _ratio(int((ref[single] == pred[single]).sum()), int(single.sum())),
    }


def three_prime(gene: Gene) -> tuple[int, int]:
    """The key a 3' end is matched by: ``(coordinate past the stop codon, strand)``."""
    start, end, strand = gene
    return (end, 1) if strand > 0 else (start, -1)


def gene_scores(reference: Iterable[Gene], predicted: Iterable[Gene], *,
                ignored: Iterable[Gene] = ()) -> dict[str, float]:  # fmt: skip
    """Gene-level sensitivity and precision of 3' ends and of exact starts (module docstring).

    ``ignored`` genes (pseudogenes) are neither to be found nor false: a call sharing a 3' end
    with one is left out of the precision.
    """
    ref = {tuple(map(int, g)) for g in reference}
    pred = {tuple(map(int, g)) for g in predicted}
    for gene in ref | pred:
        if len(gene) != 3 or gene[2] not in (1, -1) or gene[0] >= gene[1]:
            raise ValueError(f"genes must be (start, end, strand) with start < end and strand +1 or -1, got {gene}")
    skip = {three_prime(g) for g in ignored} - {three_prime(g) for g in ref}
    pred = {g for g in pred if three_prime(g) not in skip}
    ref_ends, pred_ends = {three_prime(g) for g in ref}, {three_prime(g) for g in pred}
    found_ends = sum(three_prime(g) in pred_ends for g in ref)
    true_calls = sum(three_prime(g) in ref_ends for g in pred)
    exact = len(ref & pred)
    return {
        "reference_genes": len(ref),
        "predicted_genes": len(pred),
        "stop_sensitivity": _ratio(found_ends, len(ref)),
        "stop_precision": _ratio(true_calls, len(pred)),
        "start_sensitivity": _ratio(exact, len(ref)),
        "start_precision": _ratio(exact, len(pred)),
        "start_accuracy": _ratio(exact, found_ends),  # of the genes whose 3' end was found
    }


def gene_labels(length: int, genes: Iterable[Gene]) -> np.ndarray:
    """Per-base labels ``0..6`` of called genes (a base two calls cover takes the later call's)."""
    labels = np.zeros(length, dtype=np.int16)
    for start, end, strand in genes:
        phase = np.arange(end - start) % 3
        labels[start:end] = 1 + phase if strand > 0 else (4 + phase)[::-1]
    return labels
