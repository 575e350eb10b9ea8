"""A trained gene finder: ``GeneFinder.load(run_dir)``, and ``rnnkit genes RUN_DIR --data GENOME``.

The tagger reads overlapping windows of the sequence; each base's probabilities are the windows'
predictions averaged with weights that fall off towards each window's edges (a base near a
window's edge has seen little context on one side), and the ORF dynamic program
(:mod:`rnnkit.apps.genes.orfs`) turns them into gene calls, with the settings ``finalize`` tuned
on the validation region (``decoder.json``).
"""

from __future__ import annotations

import argparse
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn

from ..._extras import require
from ..._io import atomic_write_text
from ...data.genome import DEFAULT_TABLE, Contig, check_table, one_hot, read_genome, reverse_complement, window_starts
from ..base import read_run_file
from ..commands import Command, check_output_path, closed_stdout_is_fine
from .orfs import StartModel, call_genes

DECODER_FILE = "decoder.json"  # the gene caller's settings, tuned on the validation region
BATCH = 32


@dataclass(frozen=True)
class Decoder:
    """How per-base probabilities become genes (see :func:`rnnkit.apps.genes.orfs.call_genes`)."""

    window: int
    translation_table: int = DEFAULT_TABLE  # the training genome's code
    gene_penalty: float = 0.0
    min_length: int = 90
    max_overlap: int = 60
    start_model: StartModel | None = None
    start_weight: float = 1.0
    both_strands: bool = True  # average the tagger's reading of the sequence and of its reverse complement

    def to_json(self) -> dict[str, Any]:
        return {"window": self.window, "translation_table": self.translation_table,
                "gene_penalty": self.gene_penalty, "min_length": self.min_length, "max_overlap": self.max_overlap,
                "start_model": self.start_model.to_json() if self.start_model else None,
                "start_weight": self.start_weight, "both_strands": self.both_strands}  # fmt: skip

    @classmethod
    def from_json(cls, saved: dict[str, Any]) -> Decoder:
        start_model = StartModel.from_json(saved["start_model"]) if saved.get("start_model") else None
        return cls(int(saved["window"]), int(saved["translation_table"]), float(saved["gene_penalty"]),
                   int(saved["min_length"]), int(saved["max_overlap"]), start_model, float(saved["start_weight"]),
                   bool(saved["both_strands"]))  # fmt: skip


SWAP_STRANDS = [0, 4, 5, 6, 1, 2, 3]  # the labels of a reverse-complemented sequence's bases


def predict_log_probs(model: nn.Module, sequence: str, window: int, *, both_strands: bool = False,
                      batch_size: int = BATCH) -> np.ndarray:  # fmt: skip
    """``(len, 7)`` per-base log-probabilities of ``sequence`` from windows of ``window`` bases
    every ``window // 2``, stitched with tent weights (highest at each window's centre); with
    ``both_strands``, averaged with the reading of the reverse complement (its + strand is this
    sequence's - strand)."""
    probs = _stitched(model, sequence, window, batch_size)
    if both_strands:
        probs = (probs + _stitched(model, reverse_complement(sequence), window, batch_size)[::-1][:, SWAP_STRANDS]) / 2
    return np.log(np.maximum(probs, 1e-12))


@torch.no_grad()
def _stitched(model: nn.Module, sequence: str, window: int, batch_size: int) -> np.ndarray:
    n = len(sequence)
    x_all = one_hot(sequence)
    stride = max(window // 2, 1)
    starts = window_starts(n, window, stride)
    span = min(window, n)
    weight = np.minimum(np.arange(1, span + 1), np.arange(span, 0, -1)).astype(np.float64)  # (span,)
    total = np.zeros((n, 7))
    weights = np.zeros(n)
    model = model.eval()
    for b in range(0, len(starts), batch_size):
        batch = starts[b : b + batch_size]
        x = torch.from_numpy(np.stack([x_all[s : s + span] for s in batch]))  # (B, span, 4)
        probs = torch.softmax(model(x)[0].float(), -1).double().numpy()  # (B, span, 7)
        for s, p in zip(batch, probs):
            total[s : s + span] += p * weight[:, None]
            weights[s : s + span] += weight
    return total / weights[:, None]


class GeneFinder:
    """The tagger and decoder of a ``rnnkit train genes`` run."""

    def __init__(self, model: nn.Module, decoder: Decoder) -> None:
        if getattr(model.config, "outputs", None) != 7:
            raise ValueError(f"a gene finder's model has 7 outputs (the per-base labels), got {model.config.outputs}")
        self.model, self.decoder = model.eval(), decoder

    @classmethod
    def load(cls, run_dir: str | Path) -> GeneFinder:
        from ...training import load

        run_dir = Path(run_dir)
        path, saved = read_run_file(run_dir, DECODER_FILE, "genes")
        try:
            decoder = Decoder.from_json(saved)
        except (KeyError, TypeError, ValueError, AttributeError) as error:
            raise ValueError(f"{path} is not a gene finder's decoder file ({error})") from None
        return cls(load(run_dir), decoder)

    def log_probs(self, sequence: str) -> np.ndarray:
        return predict_log_probs(self.model, sequence, self.decoder.window, both_strands=self.decoder.both_strands)

    def call(self, sequence: str, log_probs: np.ndarray, table: int) -> list[tuple[int, int, int]]:
        d = self.decoder
        return call_genes(sequence, log_probs, table=table, min_length=d.min_length, gene_penalty=d.gene_penalty,
                          max_overlap=d.max_overlap, start_model=d.start_model, start_weight=d.start_weight)  # fmt: skip

    def find(self, sequence: str, table: int | None = None) -> list[tuple[int, int, int]]:
        """Genes ``(start, end, strand)`` (0-based, half-open) of one sequence."""
        check_table(self.decoder.translation_table if table is None else table)
        return self.call(sequence, self.log_probs(sequence), self.decoder.translation_table if table is None else table)


# -----------------------------------------------------------------------------
# output files


def gff3(results: list[tuple[Contig, int, list[tuple[int, int, int]]]], source: str = "rnnkit") -> str:
    """GFF3 text of gene calls per contig: ``(contig, table, genes)``."""
    lines = ["##gff-version 3"]
    for contig, _, _ in results:
        lines.append(f"##sequence-region {contig.id} 1 {len(contig)}")
    for contig, table, genes in results:
        for number, (start, end, strand) in enumerate(genes, 1):
            codon = contig.sequence[start : start + 3] if strand > 0 else reverse_complement(contig.sequence[end - 3 : end])
            lines.append(f"{contig.id}\t{source}\tCDS\t{start + 1}\t{end}\t.\t{'+' if strand > 0 else '-'}\t0\t"
                         f"ID={contig.id}_{number};start_type={codon};transl_table={table}")  # fmt: skip
    return "\n".join(lines) + "\n"


def proteins(results: list[tuple[Contig, int, list[tuple[int, int, int]]]]) -> str:
    """FASTA of the calls' translations (the start codon read as methionine, the stop dropped)."""
    Seq = require("Bio.Seq", "genome", "translating genes", package="biopython").Seq
    out = []
    for contig, table, genes in results:
        for number, (start, end, strand) in enumerate(genes, 1):
            dna = contig.sequence[start:end] if strand > 0 else reverse_complement(contig.sequence[start:end])
            protein = "M" + str(Seq(dna[3:]).translate(table=table)).rstrip("*")
            body = "\n".join(protein[i : i + 60] for i in range(0, len(protein), 60))
            out.append(f">{contig.id}_{number} {contig.id}:{start + 1}..{end}({'+' if strand > 0 else '-'})\n{body}")
    return "\n".join(out) + "\n" if out else ""


def bedgraph(tracks: list[tuple[str, np.ndarray]], step: float = 0.05) -> str:
    """bedGraph of per-base coding probability (``1 - p(non-coding)``) rounded to ``step``, one
    line per run of equal values."""
    lines = ['track type=bedGraph name="coding probability" viewLimits=0:1']
    digits = max(0, -int(np.floor(np.log10(step))))
    for name, coding in tracks:
        values = np.round(np.round(np.asarray(coding) / step) * step, digits)
        if not len(values):
            continue
        edges = np.flatnonzero(np.diff(values)) + 1
        starts = np.concatenate([[0], edges])
        ends = np.concatenate([edges, [len(values)]])
        lines += [f"{name}\t{s}\t{e}\t{values[s]:.{digits}f}" for s, e in zip(starts.tolist(), ends.tolist())]
    return "\n".join(lines) + "\n"


# -----------------------------------------------------------------------------
# rnnkit genes RUN_DIR --data GENOME


def _genes_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("run_dir", metavar="RUN_DIR", help="a run directory of 'rnnkit train genes'")
    parser.add_argument("--data", required=True, metavar="GENOME",
                        help="FASTA or GenBank (gzipped or not) of the sequences to annotate")
    parser.add_argument("--output", "-o", metavar="GFF3", help="write the gene calls here (default: standard output)")
    parser.add_argument("--proteins", metavar="FASTA", help="also write the calls' protein translations")
    parser.add_argument("--track", metavar="BEDGRAPH", help="also write the per-base coding probability")
    parser.add_argument("--translation-table", type=int, metavar="N",
                        help="NCBI genetic code (default: the record's /transl_table, else 11)")


def _genes(args: argparse.Namespace) -> int:
    for path, flag in ((args.output, "--output"), (args.proteins, "--proteins"), (args.track, "--track")):
        check_output_path(path, flag)
    if args.translation_table is not None:
        check_table(args.translation_table, "--translation-table")
    finder = GeneFinder.load(args.run_dir)
    contigs = read_genome(args.data)
    results, tracks = [], []
    for contig in contigs:
        table = args.translation_table or (contig.table if contig.table_given else DEFAULT_TABLE)
        log_probs = finder.log_probs(contig.sequence)
        results.append((contig, table, finder.call(contig.sequence, log_probs, table)))
        if args.track:
            tracks.append((contig.id, 1.0 - np.exp(log_probs[:, 0])))
    text = gff3(results)
    if args.output:
        atomic_write_text(args.output, text)
    else:
        with closed_stdout_is_fine():
            sys.stdout.write(text)
            sys.stdout.flush()
    if args.proteins:
        atomic_write_text(args.proteins, proteins(results))
    if args.track:
        atomic_write_text(args.track, bedgraph(tracks))
    bases = sum(len(c) for c in contigs)
    ambiguous = sum(c.ambiguous for c in contigs)
    tables = sorted({t for _, t, _ in results})
    note = f"; {ambiguous:,} bases other than A/C/G/T (N, IUPAC) read as uncertain" if ambiguous else ""
    print(f"{sum(len(g) for _, _, g in results):,} genes on {len(contigs)} sequence(s), {bases:,} bases,"
          f" translation table {', '.join(map(str, tables))}{note}", file=sys.stderr)  # fmt: skip
    return 0


GENES = Command(
    help="find genes in a genome with a trained gene finder; writes GFF3 (and proteins, a bedGraph track)",
    example="rnnkit genes runs/genes-20261203-120000 --data genome.fna.gz -o genes.gff3 --proteins genes.faa",
    add_arguments=_genes_arguments,
    run=_genes,
)
