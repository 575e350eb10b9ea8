"""Genome reading, per-base labels, windows and splits; the ORF dynamic program; the gene metrics."""

import gzip
import random

import numpy as np
import pytest

pytest.importorskip("Bio")

from rnnkit.apps.genes.orfs import best_set, call_genes, find_orfs, longest_orfs  # noqa: E402
from rnnkit.data.genome import (  # noqa: E402
    AMBIGUOUS,
    IGNORE,
    Gene,
    base_labels,
    labelled_windows,
    one_hot,
    read_genome,
    reverse_complement,
    reverse_complement_labels,
    split_regions,
    window_starts,
)
from rnnkit.metrics.genes import base_scores, gene_labels, gene_scores  # noqa: E402

STOPS = ("TAA", "TAG", "TGA")


def random_dna(n, rng, gc=0.5):
    return "".join(rng.choices("ACGT", weights=(1 - gc, gc, gc, 1 - gc), k=n))


def orf(codons, rng):
    """An ATG ... stop open reading frame of ``codons`` sense codons after the ATG."""
    sense = [c for c in (a + b + d for a in "ACGT" for b in "ACGT" for d in "ACGT") if c not in STOPS]
    return "ATG" + "".join(rng.choice(sense) for _ in range(codons)) + rng.choice(STOPS)


def planted_genome(seed=0, genes=8):
    """Random spacers with ORFs planted on both strands; returns the sequence and the genes."""
    rng = random.Random(seed)
    parts, planted, at = [], [], 0
    for i in range(genes):
        spacer = "".join(rng.choices("AT", k=rng.randint(60, 120)))  # AT-rich: no in-frame ATG surprises
        gene = orf(rng.randint(80, 200), rng)
        strand = 1 if i % 2 == 0 else -1
        parts += [spacer, gene if strand > 0 else reverse_complement(gene)]
        at += len(spacer)
        planted.append((at, at + len(gene), strand))
        at += len(gene)
    parts.append("".join(rng.choices("AT", k=100)))
    return "".join(parts), planted


GENBANK = """LOCUS       TOY                      120 bp    DNA     circular BCT 01-JAN-2000
DEFINITION  toy.
FEATURES             Location/Qualifiers
     source          1..120
     CDS             11..40
                     /locus_tag="g1"
                     /transl_table=4
     CDS             complement(51..80)
                     /locus_tag="g2"
                     /transl_table=4
     CDS             91..105
                     /pseudo
ORIGIN
        1 aaaaaaaaaa atgaaacccg ggtttaaacc cgggtaaaaa aaaaaaaaaa ttaccccccc
       61 cccccccccc cccccccatt aaaaaaaaaa aaaaaaaaaa aaaaaaaaaa aaaaaaaaaa
//
"""


def test_genbank_reading_both_strands_table_and_gzip(tmp_path):
    path = tmp_path / "toy.gbk.gz"
    path.write_bytes(gzip.compress(GENBANK.encode()))
    (contig,) = read_genome(path)
    assert len(contig) == 120 and contig.circular and contig.table == 4 and contig.table_given
    g1, g2, g3 = contig.genes
    assert (g1.start, g1.end, g1.strand, g1.name) == (10, 40, 1, "g1")  # 1-based inclusive -> 0-based half-open
    assert (g2.start, g2.end, g2.strand) == (50, 80, -1)
    assert g3.pseudo and not g1.pseudo
    assert contig.sequence[10:13] == "ATG" and reverse_complement(contig.sequence[77:80]) == "AAT"


def test_fasta_with_gff3_and_iupac_counted(tmp_path):
    fasta = tmp_path / "g.fna"
    fasta.write_text(">chr1 test\nAAAATGAAACCCTAANNRA\n>chr2\nacgt\n")
    gff = tmp_path / "g.gff3"
    gff.write_text("##gff-version 3\nchr1\t.\tCDS\t4\t15\t.\t+\t0\tID=cds1;transl_table=11\n"
                   "chr2\t.\tgene\t1\t4\t.\t+\t.\tID=x\n")
    first, second = read_genome(fasta, annotation=gff)
    assert first.ambiguous == 3 and second.sequence == "ACGT" and second.ambiguous == 0
    assert [(g.start, g.end, g.strand) for g in first.genes] == [(3, 15, 1)] and not second.genes
    embedded = tmp_path / "g.gff"
    embedded.write_text(gff.read_text() .replace("chr2\t", "chr1\t") + "##FASTA\n>chr1\nAAAATGAAACCCTAANNRA\n")
    (only,) = read_genome(embedded)
    assert len(only.genes) == 1


@pytest.mark.parametrize("content, message", [
    (">a\nACGTXACGT\n", "position 5 holds 'X'"),
    (">a\nACG-T\n", "not a nucleotide"),
    ("", "is empty"),
    ("hello\n", "expected a GenBank file"),
])  # fmt: skip
def test_bad_sequences_are_refused(tmp_path, content, message):
    path = tmp_path / "bad.fna"
    path.write_text(content)
    with pytest.raises(ValueError, match=message):
        read_genome(path)


def test_truncated_gzip_and_missing_file(tmp_path):
    path = tmp_path / "cut.fna.gz"
    path.write_bytes(gzip.compress((">a\n" + random_dna(5000, random.Random(0)) + "\n").encode())[:500])
    with pytest.raises(ValueError, match="truncated gzip"):
        read_genome(path)
    with pytest.raises(FileNotFoundError, match="does not exist"):
        read_genome(tmp_path / "none.gbk")


def test_base_labels_frames_on_both_strands_ambiguous_and_pseudo():
    genes = [Gene(2, 11, 1), Gene(14, 20, -1), Gene(9, 12, -1, pseudo=False), Gene(22, 25, 1, pseudo=True)]
    labels = base_labels(26, genes)
    assert labels[:2].tolist() == [0, 0]
    assert labels[2:9].tolist() == [1, 2, 3, 1, 2, 3, 1]
    assert labels[9:11].tolist() == [AMBIGUOUS, AMBIGUOUS]  # + at position 1, 2 and - gene [9, 12)
    assert labels[11] == 4  # the - gene's first base (read from 11 down)
    assert labels[14:20].tolist() == [6, 5, 4, 6, 5, 4]  # read from 19 down: 19 is position 0
    assert labels[22:25].tolist() == [IGNORE] * 3
    # a frameshifted two-part gene keeps counting codon positions across its parts
    shifted = base_labels(12, [Gene(0, 11, 1, parts=((0, 4), (5, 11)))])
    assert shifted[:4].tolist() == [1, 2, 3, 1] and shifted[4] == 0 and shifted[5:8].tolist() == [2, 3, 1]


def test_reverse_complement_labels_match_relabelled_reverse_complement():
    sequence, planted = planted_genome(seed=3, genes=4)
    labels = base_labels(len(sequence), [Gene(s, e, d) for s, e, d in planted])
    n = len(sequence)
    mirrored = [Gene(n - e, n - s, -d) for s, e, d in planted]
    assert np.array_equal(reverse_complement_labels(labels), base_labels(n, mirrored))


def test_windows_pad_and_cover_and_reverse_complements():
    assert window_starts(10, 4, 3) == [0, 3, 6]
    assert window_starts(3, 4, 2) == [0]
    sequence = "ACGTTA"
    labels = np.array([0, 1, 2, 3, 0, 0])
    (x, y), (x_rc, y_rc) = labelled_windows(sequence, labels, 8, 4, reverse_complements=True)
    assert x.shape == (8, 4) and y[6:].tolist() == [IGNORE, IGNORE] and not x[6:].any()
    assert np.array_equal(x_rc[:6], one_hot(reverse_complement(sequence)))
    assert y_rc[:6].tolist() == [0, 0, 6, 5, 4, 0]
    assert np.allclose(one_hot("NR"), [[0.25] * 4, [0.5, 0, 0.5, 0]])


def test_split_regions_hold_out_the_last_block_across_contigs():
    parts = split_regions([600, 400], test_fraction=0.2, val_fraction=0.1)
    assert [(r.contig, r.start, r.end) for r in parts["test"]] == [(1, 200, 400)]
    assert [(r.contig, r.start, r.end) for r in parts["val"]] == [(1, 100, 200)]
    assert [(r.contig, r.start, r.end) for r in parts["train"]] == [(0, 0, 600), (1, 0, 100)]
    with pytest.raises(ValueError, match="test_fraction"):
        split_regions([10], test_fraction=1.2, val_fraction=0)


def test_every_orf_is_valid_and_planted_genes_are_candidates():
    sequence, planted = planted_genome()
    candidates = find_orfs(sequence, 11, min_length=60)
    stops = {"TAA", "TAG", "TGA"}
    for s, e, d in zip(candidates.start, candidates.end, candidates.strand):
        gene = sequence[s:e] if d > 0 else reverse_complement(sequence[s:e])
        codons = [gene[i : i + 3] for i in range(0, len(gene), 3)]
        assert len(gene) % 3 == 0 and codons[0] in ("ATG", "GTG", "TTG") and codons[-1] in stops
        assert not stops & set(codons[:-1])
    keys = set(zip(candidates.start.tolist(), candidates.end.tolist(), candidates.strand.tolist()))
    assert set(planted) <= keys
    assert np.all(np.diff(candidates.end) >= 0)


def test_table_4_reads_tga_as_tryptophan():
    sequence = "ATG" + "TGA" * 30 + "TAA"
    assert len(find_orfs(sequence, 11, min_length=60)) == 0
    found = find_orfs(sequence, 4, min_length=60)
    assert (found.start.tolist(), found.end.tolist(), found.strand.tolist()) == ([0], [len(sequence)], [1])


def perfect_log_probs(n, genes, confidence=0.95):
    labels = gene_labels(n, genes)
    probs = np.full((n, 7), (1 - confidence) / 6)
    probs[np.arange(n), labels] = confidence
    return np.log(probs)


def test_dynamic_program_recovers_planted_genes_and_calls_only_orfs():
    sequence, planted = planted_genome(seed=1)
    calls = call_genes(sequence, perfect_log_probs(len(sequence), planted), min_length=60, gene_penalty=5.0)
    assert calls == sorted(planted)
    # noisy scores: still only valid ORFs, and the planted 3' ends come back
    rng = np.random.default_rng(0)
    noisy = perfect_log_probs(len(sequence), planted, 0.6) + rng.normal(0, 0.5, (len(sequence), 7))
    calls = call_genes(sequence, noisy, min_length=60, gene_penalty=5.0)
    candidates = find_orfs(sequence, 11, min_length=60)
    keys = set(zip(candidates.start.tolist(), candidates.end.tolist(), candidates.strand.tolist()))
    assert set(calls) <= keys
    assert gene_scores(planted, calls)["stop_sensitivity"] == 1.0


def test_best_set_is_the_optimal_weighted_schedule():
    class C:
        start = np.array([0, 5, 12, 14])
        end = np.array([10, 15, 20, 30])

    scores = np.array([5.0, 6.0, 3.0, 4.0])
    assert best_set(C, scores, max_overlap=0).tolist() == [0, 3]  # 5 + 4 beats 5 + 3 and 6 alone
    assert best_set(C, scores, max_overlap=6).tolist() == [0, 1, 2, 3]  # overlaps of 5, 3 and 6 bases allowed
    assert best_set(C, scores, max_overlap=0, gene_penalty=4.5).tolist() == [1]  # only 6 clears the penalty


def test_best_set_matches_brute_force():
    rng = np.random.default_rng(1)
    from itertools import combinations

    for _ in range(30):
        start = rng.integers(0, 50, 7)
        end = start + rng.integers(5, 20, 7)
        order = np.argsort(end, kind="stable")

        class C:
            pass

        C.start, C.end = start[order], end[order]
        scores = rng.normal(1, 2, 7)
        best = 0.0
        for k in range(1, 8):
            for combo in combinations(range(7), k):
                spans = sorted((C.start[i], C.end[i]) for i in combo)
                if all(b[0] >= a[1] - 2 for a, b in zip(spans, spans[1:])) and all(
                        C.end[i] - C.start[i] > 2 for i in combo):
                    best = max(best, sum(scores[i] - 0.5 for i in combo))
        chosen = best_set(C, scores, gene_penalty=0.5, max_overlap=2)
        assert np.isclose(sum(scores[i] - 0.5 for i in chosen), best)


def test_longest_orf_baseline_finds_long_planted_genes():
    sequence, planted = planted_genome(seed=2)
    calls = longest_orfs(sequence, min_length=240)
    long_planted = [g for g in planted if g[1] - g[0] >= 240]
    assert gene_scores(long_planted, calls)["stop_sensitivity"] == 1.0


def test_gene_scores_by_hand():
    reference = [(0, 99, 1), (200, 300, -1), (400, 490, 1)]
    predicted = [(3, 99, 1), (200, 300, -1), (500, 590, 1), (600, 690, -1)]
    scores = gene_scores(reference, predicted, ignored=[(610, 690, -1)])  # its 3' end (610) is no call's
    assert scores["stop_sensitivity"] == pytest.approx(2 / 3)
    assert scores["stop_precision"] == pytest.approx(2 / 4)
    assert scores["start_sensitivity"] == pytest.approx(1 / 3)
    assert scores["start_accuracy"] == pytest.approx(1 / 2)
    ignoring = gene_scores(reference, predicted, ignored=[(600, 700, -1)])  # shares the 3' end 600 on -
    assert ignoring["predicted_genes"] == 3 and ignoring["stop_precision"] == pytest.approx(2 / 3)
    with pytest.raises(ValueError, match="strand"):
        gene_scores([(0, 10, 0)], [])


def test_base_scores_by_hand():
    reference = np.array([0, 0, 1, 2, 3, 4, 5, 6, AMBIGUOUS, IGNORE])
    predicted = np.array([0, 1, 1, 3, 3, 0, 5, 6, 0, 4])
    s = base_scores(reference, predicted)
    # coding: reference 7 of 9 scored (AMBIGUOUS counts, IGNORE not); predicted coding 6, both 5
    assert s["bases"] == 9 and s["coding_precision"] == pytest.approx(5 / 6)
    assert s["coding_recall"] == pytest.approx(5 / 7)
    assert s["coding_f1"] == pytest.approx(2 * (5 / 6) * (5 / 7) / (5 / 6 + 5 / 7))
    assert s["frame_accuracy"] == pytest.approx(4 / 5)  # positions 2,3,4,6,7: 3 is wrong
    with pytest.raises(ValueError, match="0..6"):
        base_scores(reference, predicted + 7)


def test_start_model_learns_a_ribosome_binding_site_and_moves_starts():
    from rnnkit.apps.genes.orfs import StartModel, upstream_bases

    rng = random.Random(4)
    parts, planted, at = [], [], 0
    spacer = "AGGAGGCTCCTC"  # a Shine-Dalgarno site 12..7 bases before the real start, in frame
    for i in range(40):
        lead = "".join(rng.choices("CT", k=60))  # no start or stop codon in C/T
        decoy = "ATG" + "".join(rng.choice(["GCT", "GCA", "CGT", "AAA"]) for _ in range(11))  # an in-frame start upstream
        body = orf(rng.randint(80, 120), rng)
        unit = lead + decoy + spacer + body
        if i % 2 == 0:
            planted.append((at + len(unit) - len(body), at + len(unit), 1))
            parts.append(unit)
        else:
            planted.append((at, at + len(body), -1))
            parts.append(reverse_complement(unit))
        at += len(unit)
    sequence = "".join(parts)
    candidates = find_orfs(sequence, 11, min_length=60)
    keys = list(zip(candidates.start.tolist(), candidates.end.tolist(), candidates.strand.tolist()))
    real = np.array([k in set(planted) for k in keys])
    assert real.sum() == len(planted)
    assert (upstream_bases(sequence, candidates)[real][:, 8:14] == [0, 2, 2, 0, 2, 2]).all()  # AGGAGG, along each strand
    model = StartModel.fit(sequence, candidates, planted)
    scores = model.score(sequence, candidates)
    assert scores[real].min() > scores[~real].max()
    # the tagger calls the body coding and the decoy's extra 48 bases barely so: the longer ORF wins alone
    log_probs = np.log(np.full((len(sequence), 7), 1 / 7))
    for start, end, strand in planted:
        lo, hi = (start - 48, start) if strand > 0 else (end, end + 48)
        log_probs[start:end] = perfect_log_probs(end - start, [(0, end - start, strand)], 0.9)
        log_probs[lo:hi] = perfect_log_probs(48, [(0, 48, strand)], 0.149)  # +0.05 per base
    plain = call_genes(sequence, log_probs, min_length=60, gene_penalty=5.0)
    assert gene_scores(planted, plain)["stop_sensitivity"] == 1.0 and not set(plain) & set(planted)
    assert call_genes(sequence, log_probs, min_length=60, gene_penalty=5.0, start_model=model) == sorted(planted)
    assert StartModel.from_json(model.to_json()) == model
