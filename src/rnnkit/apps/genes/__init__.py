"""Gene finding in bacterial genomes: ``rnnkit train genes --data GENOME.gbk`` and ``rnnkit genes``.

A bidirectional recurrent tagger over one-hot DNA (optionally behind a convolution, DanQ's CNN +
BiLSTM, Quang & Xie 2016) labels every base with one of seven classes (non-coding; coding on the
+ or - strand at codon position 0, 1, 2: :mod:`rnnkit.data.genome`), trained on overlapping
windows of the training region and their reverse complements. Genes are then called by a dynamic
program over open reading frames (:mod:`rnnkit.apps.genes.orfs`), so every call is a valid ORF
of the genome's genetic code.

The genome is split by position: the last ``test_fraction`` held out, the ``val_fraction`` before
it for validation (early stopping, and ``finalize`` tunes the per-gene penalty there). Scores
(:mod:`rnnkit.metrics.genes`) are per base (coding F1, frame accuracy) and per gene (3'-end and
exact-start sensitivity and precision) on the held-out region, for the model's calls and for the
longest-ORF baseline run on the same region. ``/pseudo`` CDS are neither trained on nor scored.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch

from ..._io import write_json
from ...data.genome import (
    IGNORE,
    Contig,
    base_labels,
    check_table,
    genes_in,
    labelled_windows,
    read_genome,
    split_regions,
)
from ...metrics.genes import base_scores, gene_labels, gene_scores
from ...training import SupervisedObjective, TensorBatches
from ..base import App, Prepared, Run
from ..commands import Command
from .finder import DECODER_FILE, GENES, Decoder, GeneFinder, predict_log_probs
from .orfs import StartModel, best_set, call_genes, candidate_scores, find_orfs, longest_orfs, upstream_bases

PENALTIES = (0.0, 5.0, 10.0, 20.0, 40.0, 80.0, 120.0, 160.0, 240.0, 320.0, 480.0, 640.0)  # per-gene penalties finalize tries on validation
START_WEIGHTS = (0.0, 1.0, 2.0, 4.0, 8.0, 16.0, 24.0, 32.0, 48.0, 64.0, 96.0, 128.0)  # weights of the start model's log-odds, likewise
BASELINE_LENGTHS = (150, 200, 250, 300, 350, 400, 500, 600)  # longest-ORF minimum lengths tried likewise


@dataclass(frozen=True)
class GenesConfig:
    data: str | None = None  # GenBank, or FASTA with `annotation`, or GFF3 with ##FASTA
    annotation: str | None = None  # GFF3 of the FASTA's CDS
    translation_table: int | None = None  # NCBI genetic code; default: the record's /transl_table, else 11
    window: int = 3000  # bases per training window
    stride: int = 1500  # bases between training windows
    reverse_complements: bool = True  # train on each window's reverse complement too
    test_fraction: float = 0.2
    val_fraction: float = 0.05
    batch_size: int = 32
    min_gene_length: int = 90  # bases, stop codon included
    max_overlap: int = 60  # bases two consecutive calls may share

    def __post_init__(self) -> None:
        for name in ("window", "stride", "batch_size", "min_gene_length"):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, int) or value < 1:
                raise ValueError(f"task.{name} must be a positive integer, got {value!r}")
        if self.min_gene_length < 6:
            raise ValueError(f"task.min_gene_length must be at least 6 (a start and a stop codon), got {self.min_gene_length}")
        if self.max_overlap < 0:
            raise ValueError(f"task.max_overlap must be >= 0, got {self.max_overlap}")
        if not 0 < self.test_fraction < 1 or not 0 < self.val_fraction < 1:
            raise ValueError(f"task.test_fraction and task.val_fraction must be in (0, 1), got {self.test_fraction},"
                             f" {self.val_fraction}")  # fmt: skip
        if self.translation_table is not None:
            check_table(self.translation_table, "task.translation_table")


def _regions(contigs: list[Contig], config: GenesConfig) -> dict[str, list[tuple[Contig, int, int]]]:
    parts = split_regions([len(c) for c in contigs], test_fraction=config.test_fraction,
                          val_fraction=config.val_fraction)  # fmt: skip
    return {name: [(contigs[r.contig], r.start, r.end) for r in regions] for name, regions in parts.items()}


def _table(contig: Contig, config: GenesConfig) -> int:
    return config.translation_table or contig.table


def _windows(regions, config: GenesConfig, *, stride: int, reverse_complements: bool):
    xs, ys = [], []
    for contig, start, end in regions:
        labels = base_labels(len(contig), contig.genes)[start:end]
        for x, y in labelled_windows(contig.sequence[start:end], labels, config.window, stride,
                                     reverse_complements=reverse_complements):  # fmt: skip
            xs.append(x)
            ys.append(y)
    return torch.from_numpy(np.stack(xs)), torch.from_numpy(np.stack(ys))  # (N, W, 4), (N, W)


def _reference(contig: Contig, start: int, end: int):
    genes = genes_in(contig.genes, start, end)
    real = [(g.start, g.end, g.strand) for g in genes if not g.pseudo]
    pseudo = [(g.start, g.end, g.strand) for g in genes if g.pseudo]
    return real, pseudo


class GenesApp(App):
    name = "genes"
    help = "gene finding in bacterial genomes (GenBank with CDS, or FASTA + GFF3): per-base tagger + ORF calls"
    example = "rnnkit train genes --data NC_000913.gbk.gz --train.max_minutes=20"
    config_class = GenesConfig
    model_name = "conv_many_to_many"
    default_model = {"conv": {"channels": [64], "kernel_size": 9, "stride": 3},
                     "encoder": {"cell": "lstm", "hidden_size": 64, "bidirectional": True, "num_layers": 2}}  # fmt: skip
    default_train = {"lr": 3e-3, "max_epochs": 8, "clip_norm": 5.0, "patience": 3}
    arguments = {"--data": "task.data", "--annotation": "task.annotation", "--translation-table": "task.translation_table"}
    files = ("data", "annotation")

    def prepare(self, config: GenesConfig, model_settings: dict[str, Any], seed: int) -> Prepared:
        if config.data is None:
            raise ValueError("gene finding needs --data GENOME: GenBank with CDS features (or FASTA with --annotation GFF3)")
        contigs = read_genome(config.data, annotation=config.annotation)
        if not any(not g.pseudo for c in contigs for g in c.genes):
            raise ValueError(f"{config.data} has no CDS features: training needs annotated genes (to annotate it,"
                             " use 'rnnkit genes RUN_DIR --data FILE' with a trained run)")  # fmt: skip
        regions = _regions(contigs, config)
        train_bases = sum(e - s for _, s, e in regions["train"])
        if train_bases < config.window or not regions["val"]:
            raise ValueError(f"the training region ({train_bases:,} bases of {sum(map(len, contigs)):,}) is shorter"
                             f" than one window (task.window={config.window}); give a longer genome or a smaller"
                             " window")  # fmt: skip
        train = _windows(regions["train"], config, stride=config.stride, reverse_complements=config.reverse_complements)
        val = _windows(regions["val"], config, stride=config.window, reverse_complements=False)
        settings = dict(model_settings)
        settings["input"] = {"features": 4}
        settings["outputs"] = 7
        model = self.build_model(settings)
        context = {"contigs": contigs, "regions": regions,
                   "bases": {name: sum(e - s for _, s, e in r) for name, r in regions.items()}}  # fmt: skip
        return Prepared(
            model, SupervisedObjective("cross_entropy", ignore_index=IGNORE),
            TensorBatches(*train, batch_size=config.batch_size, seed=seed),
            TensorBatches(*val, batch_size=config.batch_size, shuffle=False),
            "windows", {}, context,
        )  # fmt: skip

    # -- finalize: the decoder's settings, tuned on the validation region

    def finalize(self, run: Run) -> None:
        if (run.run_dir / DECODER_FILE).is_file() and not run.trained:
            return
        config, context = run.config, run.context
        model = run.model().eval()
        codons, upstream, is_real = [], [], []
        for contig, start, end in context["regions"]["train"]:
            sequence = contig.sequence[start:end]
            real = set(_reference(contig, start, end)[0])
            candidates = find_orfs(sequence, _table(contig, config), min_length=config.min_gene_length)
            codons.append(candidates.start_codon)
            upstream.append(upstream_bases(sequence, candidates))
            is_real.append(np.array([(int(a), int(b), int(c)) in real for a, b, c in
                                     zip(candidates.start, candidates.end, candidates.strand)], dtype=bool))  # fmt: skip
        start_model = StartModel.from_counts(np.concatenate(codons), np.concatenate(upstream), np.concatenate(is_real))
        val = []
        for contig, start, end in context["regions"]["val"]:
            sequence = contig.sequence[start:end]
            log_probs = predict_log_probs(model, sequence, config.window, both_strands=True)
            candidates = find_orfs(sequence, _table(contig, config), min_length=config.min_gene_length)
            val.append((candidates, candidate_scores(candidates, log_probs), start_model.score(sequence, candidates),
                        _reference(contig, start, end)))  # fmt: skip
        penalty, weight = max(((p, w) for w in START_WEIGHTS for p in PENALTIES),
                              key=lambda pw: _f1_of(val, *pw, config.max_overlap))  # fmt: skip
        decoder = Decoder(config.window, _table(context["contigs"][0], config), penalty, config.min_gene_length,
                          config.max_overlap, start_model, weight, both_strands=True)  # fmt: skip
        write_json(run.run_dir / DECODER_FILE, decoder.to_json())

    # -- evaluate: the held-out region, the model's calls and the longest-ORF baseline

    def evaluate(self, run: Run) -> dict[str, Any]:
        config, context = run.config, run.context
        finder = GeneFinder.load(run.run_dir)
        baseline_length = _baseline_length(context["regions"]["val"], config)
        reference, predicted, baseline, ignored, ref_labels, tag_labels, call_labels = [], [], [], [], [], [], []
        offset = 0
        for contig, start, end in context["regions"]["test"]:
            sequence, table = contig.sequence[start:end], _table(contig, config)
            log_probs = finder.log_probs(sequence)
            calls = finder.call(sequence, log_probs, table)
            real, pseudo = _reference(contig, start, end)
            shift = lambda genes: [(s + offset, e + offset, d) for s, e, d in genes]  # noqa: E731
            reference += shift(real)
            ignored += shift(pseudo)
            predicted += shift(calls)
            baseline += shift(longest_orfs(sequence, table=table, min_length=baseline_length,
                                           max_overlap=config.max_overlap))  # fmt: skip
            ref_labels.append(base_labels(len(contig), contig.genes)[start:end])
            tag_labels.append(log_probs.argmax(1))
            call_labels.append(gene_labels(len(sequence), calls))
            offset += end - start
        ref_labels = np.concatenate(ref_labels)
        run.cache["test"] = {"reference": reference, "predicted": predicted}
        return {
            "bases": context["bases"],
            "test_genes": len(reference),
            "tagger_bases": base_scores(ref_labels, np.concatenate(tag_labels)),
            "calls_bases": base_scores(ref_labels, np.concatenate(call_labels)),
            "calls_genes": gene_scores(reference, predicted, ignored=ignored),
            "longest_orf": {"min_length": baseline_length, **gene_scores(reference, baseline, ignored=ignored),
                            "coding_f1": base_scores(ref_labels, gene_labels(len(ref_labels), baseline))["coding_f1"]},
            "decoder": finder.decoder.to_json() | {"start_model": None},
        }  # fmt: skip

    def report(self, run: Run, results: dict[str, Any]) -> str:
        b, t, c, g, o = (results["bases"], results["tagger_bases"], results["calls_bases"], results["calls_genes"],
                         results["longest_orf"])  # fmt: skip
        return "\n".join([
            f"genes: {b['train']:,} training, {b['val']:,} validation, {b['test']:,} held-out bases"
            f" ({results['test_genes']} genes held out)",
            f"per base: coding F1 {c['coding_f1']:.4f} (tagger alone {t['coding_f1']:.4f}), frame accuracy"
            f" {c['frame_accuracy']:.4f}",
            f"3' ends: sensitivity {g['stop_sensitivity']:.4f}, precision {g['stop_precision']:.4f};"
            f" exact starts: sensitivity {g['start_sensitivity']:.4f}, precision {g['start_precision']:.4f}",
            f"longest ORF >= {o['min_length']} bases: 3' sensitivity {o['stop_sensitivity']:.4f}, precision"
            f" {o['stop_precision']:.4f}, coding F1 {o['coding_f1']:.4f}",
        ])  # fmt: skip

    def evaluate_file(self, run: Run, path) -> dict[str, Any]:
        """The trained finder's scores on every sequence of an annotated genome file (its CDS are
        the reference; the genetic code is the record's, else the run's)."""
        finder = self.load(run.run_dir)
        contigs = read_genome(path, what="data file")
        if not any(not g.pseudo for c in contigs for g in c.genes):
            raise ValueError(f"{path} has no CDS features to score against: 'rnnkit genes RUN_DIR --data FILE'"
                             " annotates it")  # fmt: skip
        reference, predicted, ignored, ref_labels, call_labels, offset = [], [], [], [], [], 0
        for contig in contigs:
            table = contig.table if contig.table_given else finder.decoder.translation_table
            calls = finder.find(contig.sequence, table)
            real, pseudo = _reference(contig, 0, len(contig))
            reference += [(s + offset, e + offset, d) for s, e, d in real]
            ignored += [(s + offset, e + offset, d) for s, e, d in pseudo]
            predicted += [(s + offset, e + offset, d) for s, e, d in calls]
            ref_labels.append(base_labels(len(contig), contig.genes))
            call_labels.append(gene_labels(len(contig), calls))
            offset += len(contig)
        return {"source": str(path), "sequences": len(contigs), "bases": offset,
                **base_scores(np.concatenate(ref_labels), np.concatenate(call_labels)),
                **gene_scores(reference, predicted, ignored=ignored)}  # fmt: skip

    def load(self, run_dir) -> GeneFinder:
        return GeneFinder.load(run_dir)

    def commands(self) -> dict[str, Command]:
        return {"genes": GENES}


def _f1_of(val, penalty: float, weight: float, max_overlap: int) -> float:
    """The 3'-end F1 on the validation region, plus a thousandth of the exact-start F1 (which
    breaks ties between start weights that find the same 3' ends)."""
    found = calls = total = starts = 0.0
    for candidates, scores, start_scores, (real, pseudo) in val:
        chosen = best_set(candidates, scores + weight * start_scores, gene_penalty=penalty, max_overlap=max_overlap)
        genes = [(int(candidates.start[i]), int(candidates.end[i]), int(candidates.strand[i])) for i in chosen]
        s = gene_scores(real, genes, ignored=pseudo)
        found += s["stop_sensitivity"] * s["reference_genes"] if s["reference_genes"] else 0
        calls += s["stop_precision"] * s["predicted_genes"] if s["predicted_genes"] else 0
        total += s["reference_genes"] + s["predicted_genes"]
        starts += 2 * len(set(real) & set(genes))
    return 0.0 if not total else (found + calls + starts / 1000) / total  # 2TP / (2TP + FP + FN)


def _baseline_length(regions, config: GenesConfig) -> int:
    """The longest-ORF baseline's minimum length with the best 3'-end F1 on the validation region."""

    def f1(length: int) -> float:
        right = total = 0
        for contig, start, end in regions:
            sequence = contig.sequence[start:end]
            real, pseudo = _reference(contig, start, end)
            genes = longest_orfs(sequence, table=_table(contig, config), min_length=length, max_overlap=config.max_overlap)
            s = gene_scores(real, genes, ignored=pseudo)
            right += (0 if math.isnan(s["stop_sensitivity"]) else s["stop_sensitivity"] * s["reference_genes"])
            right += (0 if math.isnan(s["stop_precision"]) else s["stop_precision"] * s["predicted_genes"])
            total += s["reference_genes"] + s["predicted_genes"]
        return right / total if total else 0.0

    return max(BASELINE_LENGTHS, key=f1)


__all__ = ["GenesApp", "GenesConfig", "GeneFinder", "call_genes"]
