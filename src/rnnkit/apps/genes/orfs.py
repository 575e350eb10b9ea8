"""Open reading frames, and the dynamic program that turns per-base scores into gene calls.

A candidate gene is an open reading frame: a start codon (ATG, GTG or TTG, where the genetic
code allows it) and the first in-frame stop codon of the code after it, on either strand, at
least ``min_length`` bases long (stop included). :func:`call_genes` chooses the set of candidates
that maximises the sum of their scores minus a penalty per gene, where a candidate's score is
the sum over its bases of ``log p(coding in the gene's frame) - log p(non-coding)`` from the
tagger, plus the log-odds of its start (:class:`StartModel`: the start codon and the bases
before it, where the ribosome binds). Consecutive calls may overlap by up to
``max_overlap`` bases (bacterial genes often share their last and first few bases). Every call is
therefore a valid ORF by construction.

Candidates are ``(start, end, strand)`` in forward coordinates, 0-based half-open, the stop
codon included: on the + strand the stop is ``[end-3, end)``, on the - strand ``[start,
start+3)`` (reverse-complemented) and the start codon ``[end-3, end)``.
"""

from __future__ import annotations

import bisect
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from ...data.genome import NONCODING, base_indices, check_table


@dataclass(frozen=True)
class Candidates:
    """Every ORF of a sequence: parallel arrays, sorted by ``end``."""

    start: np.ndarray  # int64
    end: np.ndarray
    strand: np.ndarray  # +1 / -1
    start_codon: np.ndarray  # the start codon as a string per candidate

    def __len__(self) -> int:
        return len(self.start)


def _codon_codes(sequence: str) -> np.ndarray:
    """``codes[i]`` = the codon ``sequence[i:i+3]`` as 0..63 (A C G T base 4), -1 where it holds a
    base other than A/C/G/T; length ``len - 2``."""
    b = base_indices(sequence).astype(np.int64)
    if len(b) < 3:
        return np.zeros(0, dtype=np.int64)
    codes = 16 * b[:-2] + 4 * b[1:-1] + b[2:]
    codes[(b[:-2] < 0) | (b[1:-1] < 0) | (b[2:] < 0)] = -1
    return codes


def _code(codon: str) -> int:
    return 16 * "ACGT".index(codon[0]) + 4 * "ACGT".index(codon[1]) + "ACGT".index(codon[2])


def _revcomp(codon: str) -> str:
    return codon.translate(str.maketrans("ACGT", "TGCA"))[::-1]


def find_orfs(sequence: str, table: int = 11, *, min_length: int = 90) -> Candidates:
    """Every complete ORF of ``sequence`` on both strands (one per start codon), at least
    ``min_length`` bases long with its stop codon."""
    codons = check_table(table)
    codes = _codon_codes(sequence)
    positions = np.arange(len(codes))
    starts, ends, strands, start_codons = [], [], [], []
    for strand in (1, -1):
        start_set = codons["starts"] if strand > 0 else {_revcomp(c) for c in codons["starts"]}
        stop_set = codons["stops"] if strand > 0 else {_revcomp(c) for c in codons["stops"]}
        is_start = np.isin(codes, [_code(c) for c in start_set])
        is_stop = np.isin(codes, [_code(c) for c in stop_set])
        for frame in range(3):
            in_frame = positions % 3 == frame
            stop_at = positions[is_stop & in_frame]
            start_at = positions[is_start & in_frame]
            if strand > 0:  # the first stop at or after the start codon
                k = np.searchsorted(stop_at, start_at)
                ok = k < len(stop_at)
                s, e = start_at[ok], stop_at[k[ok]] + 3
            else:  # the start codon is at the 3' side in forward coordinates; the stop the last before it
                k = np.searchsorted(stop_at, start_at) - 1
                ok = k >= 0
                s, e = stop_at[k[ok]], start_at[ok] + 3
            long = e - s >= min_length
            s, e = s[long], e[long]
            starts.append(s)
            ends.append(e)
            strands.append(np.full(len(s), strand, dtype=np.int64))
            codon_at = s if strand > 0 else e - 3
            start_codons.append(np.array([sequence[i : i + 3] if strand > 0 else _revcomp(sequence[i : i + 3])
                                          for i in codon_at], dtype="U3"))  # fmt: skip
    start, end, strand = (np.concatenate(a) if a else np.zeros(0, np.int64) for a in (starts, ends, strands))
    codon = np.concatenate(start_codons) if start_codons else np.zeros(0, "U3")
    order = np.lexsort((start, end))
    return Candidates(start[order], end[order], strand[order], codon[order])


def frame_scores(log_probs: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Prefix sums of the per-base coding log-odds for each strand and frame.

    ``log_probs`` is ``(L, 7)`` (labels of :mod:`rnnkit.data.genome`). Returns ``plus`` and
    ``minus``, each ``(3, L + 1)``: ``plus[f, i]`` sums, over bases before ``i``, ``log p(+ at
    codon position (j - f) % 3) - log p(noncoding)``: the score of a + gene ``[s, e)`` with ``s %
    3 == f`` is ``plus[f, e] - plus[f, s]``; ``minus[r]`` the same for - genes with ``e % 3 == r``.
    """
    log_probs = np.asarray(log_probs, dtype=np.float64)
    if log_probs.ndim != 2 or log_probs.shape[1] != 7:
        raise ValueError(f"log_probs must be (length, 7), got shape {log_probs.shape}")
    n = len(log_probs)
    j = np.arange(n)
    plus, minus = np.zeros((3, n + 1)), np.zeros((3, n + 1))
    for f in range(3):
        plus[f, 1:] = np.cumsum(log_probs[j, 1 + (j - f) % 3] - log_probs[:, NONCODING])
        minus[f, 1:] = np.cumsum(log_probs[j, 4 + (f - 1 - j) % 3] - log_probs[:, NONCODING])
    return plus, minus


def candidate_scores(candidates: Candidates, log_probs: np.ndarray) -> np.ndarray:
    """Each candidate's summed coding log-odds in its own frame (a :class:`StartModel` scores its
    start: add ``weight * model.score(...)``)."""
    plus, minus = frame_scores(log_probs)
    s, e = candidates.start, candidates.end
    fwd = candidates.strand > 0
    scores = np.empty(len(candidates))
    scores[fwd] = plus[s[fwd] % 3, e[fwd]] - plus[s[fwd] % 3, s[fwd]]
    scores[~fwd] = minus[e[~fwd] % 3, e[~fwd]] - minus[e[~fwd] % 3, s[~fwd]]
    return scores


def best_set(candidates: Candidates, scores: np.ndarray, *, gene_penalty: float = 0.0,
             max_overlap: int = 0) -> np.ndarray:  # fmt: skip
    """Indices of the highest-scoring set of candidates in which each call overlaps the calls
    before it by at most ``max_overlap`` bases (a weighted interval schedule; candidates must be
    sorted by end, as :func:`find_orfs` returns them). Candidates scoring at most
    ``gene_penalty`` are never worth calling, and candidates of at most ``max_overlap`` bases are
    never called (one could hide inside another)."""
    if max_overlap < 0:
        raise ValueError(f"max_overlap must be >= 0, got {max_overlap}")
    gains = scores - gene_penalty
    # only candidates that can raise the total; longer than max_overlap, so that a call ending at most
    # max_overlap bases into the next one also starts before it (no call contains another)
    keep = np.flatnonzero((gains > 0) & (candidates.end - candidates.start > max_overlap))
    done_end: list[int] = [-(10**18)]  # ends processed so far (non-decreasing)
    done_best: list[float] = [0.0]  # best total with every call ending at or before done_end[k]
    done_last: list[int] = [-1]  # the last call of that best set (-1: none)
    back: dict[int, int] = {}  # candidate -> the last call before it
    starts, ends = candidates.start, candidates.end
    for i in keep.tolist():
        k = bisect.bisect_right(done_end, int(starts[i]) + max_overlap) - 1
        value = done_best[k] + gains[i]
        back[i] = done_last[k]
        if value > done_best[-1]:
            done_end.append(int(ends[i]))
            done_best.append(value)
            done_last.append(i)
    chosen, i = [], done_last[-1]
    while i >= 0:
        chosen.append(i)
        i = back[i]
    return np.array(chosen[::-1], dtype=np.int64)


def call_genes(sequence: str, log_probs: np.ndarray, *, table: int = 11, min_length: int = 90,
               gene_penalty: float = 0.0, max_overlap: int = 60, start_model: StartModel | None = None, start_weight: float = 1.0) -> list[tuple[int, int, int]]:  # fmt: skip
    """Genes ``(start, end, strand)`` of ``sequence`` from the tagger's per-base ``log_probs``
    ``(len, 7)``: the best-scoring set of ORFs (module docstring), sorted by start; a
    ``start_model`` adds ``start_weight`` times its log-odds to each candidate."""
    if len(log_probs) != len(sequence):
        raise ValueError(f"log_probs must have one row per base ({len(sequence)}), got {len(log_probs)}")
    candidates = find_orfs(sequence, table, min_length=min_length)
    if not len(candidates):
        return []
    scores = candidate_scores(candidates, log_probs)
    if start_model is not None:
        scores = scores + start_weight * start_model.score(sequence, candidates)
    chosen = best_set(candidates, scores, gene_penalty=gene_penalty, max_overlap=max_overlap)
    genes = [(int(candidates.start[i]), int(candidates.end[i]), int(candidates.strand[i])) for i in chosen]
    return sorted(genes)


UPSTREAM = 20  # bases before a start codon that the start model reads (the Shine-Dalgarno site is about -13..-5)


def upstream_bases(sequence: str, candidates: Candidates, width: int = UPSTREAM) -> np.ndarray:
    """``(n, width)`` int: the ``width`` bases before each candidate's start codon, read along its
    strand (A C G T as 0..3; -1 past the sequence's ends or for other bases)."""
    b = base_indices(sequence).astype(np.int64)
    padded = np.concatenate([np.full(width, -1), b, np.full(width, -1)])  # index i + width is base i
    k = np.arange(width)
    plus = candidates.strand > 0
    out = np.empty((len(candidates), width), dtype=np.int64)
    out[plus] = padded[candidates.start[plus, None] - width + k + width]  # bases s-width .. s-1
    minus = padded[candidates.end[~plus, None] + (width - 1 - k) + width]  # e+width-1 .. e, read backwards
    out[~plus] = np.where(minus >= 0, 3 - minus, -1)  # complemented
    return out


@dataclass(frozen=True)
class StartModel:
    """Log-odds that a candidate's start is a gene's real start, against any candidate start: the
    start codon's and, base by base, the ``UPSTREAM`` bases before it (a position weight matrix,
    as naive Bayes: where ribosome-binding sites sit). Fitted on the annotated genes of the
    training region (:meth:`fit`); add-one smoothed."""

    codon: dict[str, float]
    upstream: tuple[tuple[float, ...], ...]  # (UPSTREAM, 4)

    @classmethod
    def fit(cls, sequence: str, candidates: Candidates, genes: Sequence[tuple[int, int, int]]) -> StartModel:
        real = set(map(tuple, genes))
        is_real = np.array([(int(a), int(b), int(c)) in real
                            for a, b, c in zip(candidates.start, candidates.end, candidates.strand)], dtype=bool)  # fmt: skip
        return cls.from_counts(candidates.start_codon, upstream_bases(sequence, candidates), is_real)

    @classmethod
    def from_counts(cls, codons: np.ndarray, upstream: np.ndarray, is_real: np.ndarray) -> StartModel:
        names = sorted(set(codons.tolist()))
        real_n, all_n = int(is_real.sum()) + len(names), len(codons) + len(names)
        codon = {c: float(np.log((1 + (codons[is_real] == c).sum()) / real_n)
                          - np.log((1 + (codons == c).sum()) / all_n)) for c in names}  # fmt: skip
        table = []
        for k in range(upstream.shape[1]):
            real = np.array([(upstream[is_real, k] == base).sum() for base in range(4)]) + 1.0
            every = np.array([(upstream[:, k] == base).sum() for base in range(4)]) + 1.0
            table.append(tuple((np.log(real / real.sum()) - np.log(every / every.sum())).tolist()))
        return cls(codon, tuple(table))

    def score(self, sequence: str, candidates: Candidates) -> np.ndarray:
        """``(n,)`` each candidate's start log-odds."""
        if not len(candidates):
            return np.zeros(0)
        out = np.array([self.codon.get(c, 0.0) for c in candidates.start_codon])
        upstream = upstream_bases(sequence, candidates, len(self.upstream))
        table = np.vstack([np.asarray(self.upstream), np.zeros((1, 4))])  # row -1: unknown base scores 0
        weights = np.where(upstream >= 0, table[np.arange(upstream.shape[1]), np.maximum(upstream, 0)], 0.0)
        return out + weights.sum(1)

    def to_json(self) -> dict:
        return {"codon": self.codon, "upstream": [list(r) for r in self.upstream]}

    @classmethod
    def from_json(cls, data: dict) -> StartModel:
        upstream = tuple(tuple(float(v) for v in row) for row in data["upstream"])
        if any(len(row) != 4 for row in upstream):
            raise ValueError("a start model's upstream table has 4 columns (A C G T)")
        return cls({str(k): float(v) for k, v in data["codon"].items()}, upstream)


def longest_orfs(sequence: str, *, table: int = 11, min_length: int = 300,
                 max_overlap: int = 60) -> list[tuple[int, int, int]]:  # fmt: skip
    """The simple baseline: for every stop codon its longest ORF, kept when at least
    ``min_length`` bases long; longer ORFs first, an ORF overlapping a kept one by more than
    ``max_overlap`` bases dropped."""
    candidates = find_orfs(sequence, table, min_length=min_length)
    three_prime = np.where(candidates.strand > 0, candidates.end, candidates.start)
    longest: dict[tuple[int, int], int] = {}
    lengths = candidates.end - candidates.start
    for i in range(len(candidates)):
        key = (int(three_prime[i]), int(candidates.strand[i]))
        if key not in longest or lengths[i] > lengths[longest[key]]:
            longest[key] = i
    taken = np.zeros(len(sequence) + 1, dtype=bool)
    genes = []
    for i in sorted(longest.values(), key=lambda i: -lengths[i]):
        s, e = int(candidates.start[i]), int(candidates.end[i])
        if not taken[s + max_overlap : max(e - max_overlap, s + max_overlap)].any():
            taken[s:e] = True
            genes.append((s, e, int(candidates.strand[i])))
    return sorted(genes)
