"""Gene finding against Prodigal: a trained ``rnnkit train genes`` run, pyrodigal and the longest-ORF
baseline, scored the same way on the same sequences.

    python benchmarks/genes.py RUN_DIR --ecoli E_COLI.gbk.gz [--other M_GALLISEPTICUM.gbk.gz] \
        [--json results.json] [--plot stretch.png]

- E. coli: the run's held-out region (its last ``task.test_fraction`` of positions). pyrodigal in
  single-genome mode is trained on the positions before it (the run's training and validation
  regions: Prodigal trains unsupervised, so it gets every position the tagger could see), and
  in meta mode uses its pre-trained profiles. Every tool sees the held-out region as one
  sequence, with closed ends (no gene may run off it).
- The other genome (M. gallisepticum, code 4) is annotated whole: the E. coli model with the
  record's genetic code, pyrodigal single mode trained on that genome itself (how Prodigal is
  run on a new genome) and meta mode, and the longest-ORF baseline at its E. coli length.

Needs ``pip install 'rnnkit[genome]'`` (biopython, pyrodigal), and matplotlib for ``--plot``.
"""

from __future__ import annotations

import argparse
import json
import time

import numpy as np

from rnnkit._io import read_json, write_json
from rnnkit.apps.genes import GeneFinder, GenesApp
from rnnkit.apps.genes import _baseline_length, _reference, _regions  # the app's own split and baseline tuning
from rnnkit.apps.genes.orfs import longest_orfs
from rnnkit.config import from_dict
from rnnkit.data.genome import base_labels, read_genome
from rnnkit.metrics.genes import base_scores, gene_labels, gene_scores


def pyrodigal_genes(sequence: str, *, train: str | None, table: int, meta: bool) -> list[tuple[int, int, int]]:
    import pyrodigal

    finder = pyrodigal.GeneFinder(meta=meta, closed=True)
    if not meta:
        finder.train(train, translation_table=table)
    return [(g.begin - 1, g.end, g.strand) for g in finder.find_genes(sequence)]


def score(name, labels, reference, pseudo, calls, seconds=None):
    return {"tool": name, **gene_scores(reference, calls, ignored=pseudo),
            **{k: v for k, v in base_scores(labels, gene_labels(len(labels), calls)).items()
               if k in ("coding_f1", "frame_accuracy")}, "seconds": seconds}  # fmt: skip


def table_md(rows) -> str:
    head = "| tool | genes called | 3' sensitivity | 3' precision | start sensitivity | start precision | coding F1 | frame acc. | s |"
    lines = [head, "|" + "---|" * 9]
    for r in rows:
        seconds = "" if r["seconds"] is None else f"{r['seconds']:.1f}"
        lines.append(f"| {r['tool']} | {r['predicted_genes']} | {r['stop_sensitivity']:.3f} | {r['stop_precision']:.3f} |"
                     f" {r['start_sensitivity']:.3f} | {r['start_precision']:.3f} | {r['coding_f1']:.3f} |"
                     f" {r['frame_accuracy']:.3f} | {seconds} |")  # fmt: skip
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("run_dir")
    parser.add_argument("--ecoli", required=True)
    parser.add_argument("--other")
    parser.add_argument("--json")
    parser.add_argument("--plot")
    args = parser.parse_args()

    finder = GeneFinder.load(args.run_dir)
    config = from_dict(GenesApp.config_class, read_json(f"{args.run_dir}/config.json")["task"], where="task")
    contigs = read_genome(args.ecoli)
    regions = _regions(contigs, config)
    ((contig, start, end),) = regions["test"]
    sequence = contig.sequence[start:end]
    before = contig.sequence[:start]
    labels = base_labels(len(contig), contig.genes)[start:end]
    reference, pseudo = _reference(contig, start, end)
    out = {"ecoli": {"region": [start, end], "reference_genes": len(reference)}}

    began = time.perf_counter()
    log_probs = finder.log_probs(sequence)
    calls = finder.call(sequence, log_probs, contig.table)
    rows = [score("rnnkit (this run)", labels, reference, pseudo, calls, time.perf_counter() - began)]
    began = time.perf_counter()
    single = pyrodigal_genes(sequence, train=before, table=contig.table, meta=False)
    rows.append(score("pyrodigal single (trained on the first 80%)", labels, reference, pseudo, single,
                      time.perf_counter() - began))  # fmt: skip
    began = time.perf_counter()
    rows.append(score("pyrodigal meta", labels, reference, pseudo,
                      pyrodigal_genes(sequence, train=None, table=contig.table, meta=True), time.perf_counter() - began))
    length = _baseline_length(regions["val"], config)
    rows.append(score(f"longest ORF >= {length} nt", labels, reference, pseudo,
                      longest_orfs(sequence, table=contig.table, min_length=length, max_overlap=config.max_overlap)))
    out["ecoli"]["rows"] = rows
    out["ecoli"]["tagger_bases"] = base_scores(labels, log_probs.argmax(1))
    print(f"{contig.id} held-out region {start + 1:,}..{end:,} ({len(reference)} genes)\n" + table_md(rows) + "\n")

    if args.other:
        (other,) = read_genome(args.other)
        reference, pseudo = _reference(other, 0, len(other))
        labels = base_labels(len(other), other.genes)
        began = time.perf_counter()
        rows = [score(f"rnnkit (E. coli model, table {other.table})", labels, reference, pseudo,
                      finder.find(other.sequence, other.table), time.perf_counter() - began)]  # fmt: skip
        rows.append(score("rnnkit (E. coli model, table 11: TGA read as stop)", labels, reference, pseudo,
                          finder.find(other.sequence, 11)))
        began = time.perf_counter()
        rows.append(score("pyrodigal single (trained on this genome)", labels, reference, pseudo,
                          pyrodigal_genes(other.sequence, train=other.sequence, table=other.table, meta=False),
                          time.perf_counter() - began))  # fmt: skip
        rows.append(score("pyrodigal meta", labels, reference, pseudo,
                          pyrodigal_genes(other.sequence, train=None, table=other.table, meta=True)))
        rows.append(score(f"longest ORF >= {length} nt", labels, reference, pseudo,
                          longest_orfs(other.sequence, table=other.table, min_length=length,
                                       max_overlap=config.max_overlap)))  # fmt: skip
        out["other"] = {"id": other.id, "table": other.table, "reference_genes": len(reference), "rows": rows}
        print(f"{other.id} whole genome, table {other.table} ({len(reference)} genes)\n" + table_md(rows) + "\n")

    if args.plot:
        plot_stretch(args.plot, contig, start, log_probs, calls, single)
    if args.json:
        write_json(args.json, out)


def plot_stretch(path, contig, start, log_probs, calls, prodigal, width=20_000):
    """Reference genes, calls and the coding-probability track over ``width`` bases of the held-out region."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    lo, hi = 100_000, 100_000 + width  # into the held-out region
    reference = [(g.start - start, g.end - start, g.strand) for g in contig.genes
                 if not g.pseudo and g.end > start + lo and g.start < start + hi]  # fmt: skip
    fig, (ax, track) = plt.subplots(2, 1, figsize=(12, 4.2), sharex=True, gridspec_kw={"height_ratios": [1.3, 1]})
    for row, (name, genes) in enumerate((("reference", reference), ("rnnkit", calls), ("pyrodigal", prodigal))):
        y = 2 - row
        for s, e, d in genes:
            if e < lo or s > hi:
                continue
            ax.add_patch(plt.Rectangle((s + start + 1, y - 0.3 + (0.15 if d > 0 else -0.15)), e - s, 0.3,
                                       color="tab:blue" if d > 0 else "tab:orange", alpha=0.85))  # fmt: skip
        ax.text(start + lo - 300, y, name, ha="right", va="center")
    ax.set_ylim(-0.8, 2.8)
    ax.set_yticks([])
    ax.set_title(f"{contig.id} {start + lo + 1:,}..{start + hi:,} (held out): genes on + (blue) and - (orange)")
    x = np.arange(lo, hi) + start + 1
    probs = np.exp(log_probs[lo:hi])
    track.fill_between(x, probs[:, 1:4].sum(1), color="tab:blue", alpha=0.6, label="p(coding, +)")
    track.fill_between(x, -probs[:, 4:7].sum(1), color="tab:orange", alpha=0.6, label="p(coding, -), drawn down")
    track.set_ylim(-1.05, 1.05)
    track.set_xlim(start + lo + 1, start + hi)
    track.set_xlabel("position (bp)")
    track.legend(loc="lower right", fontsize=8)
    fig.tight_layout()
    fig.savefig(path, dpi=110)


if __name__ == "__main__":
    main()
