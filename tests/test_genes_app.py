"""rnnkit train genes and rnnkit genes end to end, on a generated genome (tiny model, few steps)."""

import gzip
import json
import random

import numpy as np
import pytest

pytest.importorskip("Bio")

from Bio.Seq import Seq  # noqa: E402
from Bio.SeqFeature import FeatureLocation, SeqFeature  # noqa: E402
from Bio.SeqRecord import SeqRecord  # noqa: E402
from Bio import SeqIO  # noqa: E402

from rnnkit.apps.genes import GeneFinder  # noqa: E402
from rnnkit.apps.genes.orfs import find_orfs  # noqa: E402
from rnnkit.cli import main  # noqa: E402
from rnnkit.data.genome import read_genome, reverse_complement  # noqa: E402

STOPS = ("TAA", "TAG", "TGA")
SENSE = [a + b + c for a in "ACGT" for b in "ACGT" for c in "ACGT" if a + b + c not in STOPS]
FAST = ["--model.encoder.hidden_size=8", "--model.encoder.num_layers=1", "--model.conv.channels=[8]",
        "--train.max_epochs=6", "--train.lr=0.02", "--task.window=600", "--task.stride=600", "--task.val_fraction=0.15",
        "--task.test_fraction=0.15", "--quiet"]  # fmt: skip


def synthetic_record(seed=0, genes=50, transl_table=11):
    """A genome of AT-rich spacers and GC-rich ORFs on both strands, as a Biopython record."""
    rng = random.Random(seed)
    rich = SENSE + [c for c in SENSE if c[2] in "GC"] * 2  # a third-position GC bias
    parts, features, at = [], [], 0
    for i in range(genes):
        spacer = "".join(rng.choices("AAATTTGC", k=rng.randint(40, 150)))
        gene = "ATG" + "".join(rng.choice(rich) for _ in range(rng.randint(60, 180))) + rng.choice(STOPS)
        strand = 1 if rng.random() < 0.5 else -1
        parts += [spacer, gene if strand > 0 else reverse_complement(gene)]
        at += len(spacer)
        features.append(SeqFeature(FeatureLocation(at, at + len(gene), strand=strand), type="CDS",
                                   qualifiers={"locus_tag": [f"g{i}"], "transl_table": [transl_table]}))
        at += len(gene)
    parts.append("".join(rng.choices("AT", k=80)))
    record = SeqRecord(Seq("".join(parts)), id="SYN1", name="SYN1", description="synthetic genome")
    record.annotations.update(molecule_type="DNA", topology="circular")
    record.features = features
    return record


def write_genbank(path, record):
    text = _genbank_text(record)
    path.write_bytes(gzip.compress(text.encode()) if str(path).endswith(".gz") else text.encode())
    return path


def _genbank_text(record):
    import io

    out = io.StringIO()
    SeqIO.write(record, out, "genbank")
    return out.getvalue()


@pytest.fixture(scope="module")
def trained(tmp_path_factory):
    root = tmp_path_factory.mktemp("genes")
    data = write_genbank(root / "syn.gbk.gz", synthetic_record())
    run_dir = root / "run"
    assert main(["train", "genes", "--data", str(data), "--run-dir", str(run_dir), *FAST]) == 0
    return root, data, run_dir


def test_training_writes_a_run_with_decoder_and_results(trained):
    _, _, run_dir = trained
    results = json.loads((run_dir / "results.json").read_text())
    decoder = json.loads((run_dir / "decoder.json").read_text())
    assert decoder["translation_table"] == 11 and decoder["window"] == 600
    codons = decoder["start_model"]["codon"]
    assert set(codons) <= {"ATG", "GTG", "TTG"} and codons["ATG"] > 0  # every planted gene starts with ATG
    assert len(decoder["start_model"]["upstream"]) == 20 and decoder["both_strands"]
    assert results["test_genes"] > 0
    for key in ("stop_sensitivity", "stop_precision", "start_sensitivity", "start_precision"):
        assert results["calls_genes"][key] is None or 0 <= results["calls_genes"][key] <= 1  # None: no calls
    assert 0 <= results["calls_bases"]["coding_f1"] <= 1 and "min_length" in results["longest_orf"]


def test_genes_command_writes_gff3_proteins_and_track(trained, capsys):
    root, data, run_dir = trained
    out, faa, track = root / "calls.gff3", root / "calls.faa", root / "calls.bedgraph"
    assert main(["genes", str(run_dir), "--data", str(data), "-o", str(out), "--proteins", str(faa),
                 "--track", str(track)]) == 0  # fmt: skip
    assert "genes on 1 sequence(s)" in capsys.readouterr().err
    (contig,) = read_genome(data)
    rows = [line.split("\t") for line in out.read_text().splitlines() if not line.startswith("#")]
    orfs = find_orfs(contig.sequence, 11, min_length=90)
    valid = set(zip(orfs.start.tolist(), orfs.end.tolist(), orfs.strand.tolist()))
    calls = [(int(r[3]) - 1, int(r[4]), 1 if r[6] == "+" else -1) for r in rows]
    assert calls and set(calls) <= valid  # every call is an ORF of the genome
    proteins = {r.id: str(r.seq) for r in SeqIO.parse(str(faa), "fasta")}
    assert len(proteins) == len(calls)
    s, e, d = calls[0]
    dna = contig.sequence[s:e] if d > 0 else reverse_complement(contig.sequence[s:e])
    assert proteins["SYN1_1"] == "M" + str(Seq(dna[3:-3]).translate(table=11))
    lines = track.read_text().splitlines()
    assert lines[0].startswith("track type=bedGraph")
    spans = [(int(a), int(b)) for _, a, b, _ in (line.split("\t") for line in lines[1:])]
    assert spans[0][0] == 0 and spans[-1][1] == len(contig) and all(b == c for (_, b), (c, _) in zip(spans, spans[1:]))
    # the GFF3 reads back as the annotation of a FASTA
    fasta = root / "syn.fna"
    fasta.write_text(f">SYN1\n{contig.sequence}\n")
    (again,) = read_genome(fasta, annotation=out)
    assert sorted((g.start, g.end, g.strand) for g in again.genes) == sorted(calls)


def test_finder_from_python_and_short_or_ambiguous_sequences(trained):
    _, data, run_dir = trained
    finder = GeneFinder.load(run_dir)
    (contig,) = read_genome(data)
    assert finder.find(contig.sequence[:5000]) == [g for g in finder.find(contig.sequence[:5000])]
    assert finder.find("ACGTN" * 10) == []  # shorter than one window and than any gene: no calls, no error
    log_probs = finder.log_probs(contig.sequence[:1000])
    assert log_probs.shape == (1000, 7) and np.allclose(np.exp(log_probs).sum(1), 1, atol=1e-4)


def test_translation_table_4_from_the_record_and_the_flag(tmp_path, trained, capsys):
    _, _, run_dir = trained
    record = synthetic_record(seed=5, genes=6, transl_table=4)
    data = write_genbank(tmp_path / "t4.gbk", record)
    assert main(["genes", str(run_dir), "--data", str(data), "-o", str(tmp_path / "a.gff3")]) == 0
    assert "translation table 4" in capsys.readouterr().err
    assert "transl_table=4" in (tmp_path / "a.gff3").read_text()
    assert main(["genes", str(run_dir), "--data", str(data), "--translation-table", "99"]) == 2
    assert "--translation-table must be an NCBI genetic code" in capsys.readouterr().err


@pytest.mark.parametrize("content, message", [
    (b"", "is empty"),
    (b">a\nACGTZZ\n", "holds 'Z', not a nucleotide"),
    (gzip.compress(b">a\n" + bytes(random.Random(1).choices(b"ACGT", k=4000)))[:300], "truncated gzip"),
])  # fmt: skip
def test_bad_input_to_genes_is_one_line(trained, tmp_path, capsys, content, message):
    _, _, run_dir = trained
    path = tmp_path / "bad.fna"
    path.write_bytes(content)
    assert main(["genes", str(run_dir), "--data", str(path)]) == 2
    err = capsys.readouterr().err
    assert message in err and "Traceback" not in err and len(err.strip().splitlines()) == 1


def test_training_refuses_a_genbank_without_cds_and_a_too_short_genome(tmp_path, capsys, trained):
    record = synthetic_record(seed=2, genes=5)
    record.features = []
    bare = write_genbank(tmp_path / "bare.gbk", record)
    assert main(["train", "genes", "--data", str(bare), "--run-dir", str(tmp_path / "r1"), *FAST]) == 2
    err = capsys.readouterr().err
    assert "has no CDS features" in err and len(err.strip().splitlines()) == 1
    _, _, run_dir = trained  # prediction on the same file works
    assert main(["genes", str(run_dir), "--data", str(bare), "-o", str(tmp_path / "bare.gff3")]) == 0
    short = write_genbank(tmp_path / "short.gbk", synthetic_record(seed=3, genes=2))
    assert main(["train", "genes", "--data", str(short), "--run-dir", str(tmp_path / "r2"), *FAST[:-1],
                 "--task.window=3000", "--quiet"]) == 2  # fmt: skip
    assert "shorter than one window" in capsys.readouterr().err


def test_evaluate_scores_an_annotated_file_against_its_cds(trained, capsys):
    _, data, run_dir = trained
    assert main(["evaluate", str(run_dir), "--data", str(data)]) == 0
    out = capsys.readouterr().out
    assert "reference_genes: 50" in out and "stop_sensitivity" in out and "coding_f1" in out
