"""Bacterial genomes: GenBank, FASTA and GFF3 files, per-base gene labels, windows and region splits.

Reading goes through Biopython (``pip install 'rnnkit[genome]'``), imported when a file is read.
A genome is a list of :class:`Contig` (one per record), each with its sequence (upper-case
IUPAC nucleotides), its coding sequences as :class:`Gene` (0-based, half-open, both strands, every
part of a multi-part CDS) and its genetic code (the record's ``/transl_table``, else 11).

Per-base labels (:func:`base_labels`), seven classes: ``0`` non-coding; ``1, 2, 3`` coding on
the + strand at codon position 0, 1, 2 (the first, second, third base of its codon, counted from
the gene's start); ``4, 5, 6`` the same on the - strand (counted along the - strand, so the base
pairing with a + strand codon's first base is also position 0). Reverse-complementing a window
swaps ``1+p`` and ``4+p`` (:func:`reverse_complement_labels`). Two values mark bases no class
describes: :data:`AMBIGUOUS` (coded by two genes in different frames: coding, frame undefined)
and :data:`IGNORE` (inside a ``/pseudo`` CDS and in no other gene: left out of training and of
the per-base scores).

Coordinates follow Biopython: 0-based, half-open; GenBank and GFF3 files count from 1, inclusive.
"""

from __future__ import annotations

import gzip
import io
import zlib
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from .._extras import require

NONCODING = 0
AMBIGUOUS = -1  # coding, in two frames at once
IGNORE = -100  # a pseudogene's bases: neither trained on nor scored
LABELS = ("noncoding", "+0", "+1", "+2", "-0", "-1", "-2")
DEFAULT_TABLE = 11  # bacteria, archaea and plastids
GENE_STARTS = ("ATG", "GTG", "TTG")  # the start codons a gene call may begin with (where the code allows)

# one-hot rows: A C G T; IUPAC ambiguity codes share the weight among the bases they stand for
_IUPAC = {"A": "A", "C": "C", "G": "G", "T": "T", "U": "T", "R": "AG", "Y": "CT", "S": "CG", "W": "AT",
          "K": "GT", "M": "AC", "B": "CGT", "D": "AGT", "H": "ACT", "V": "ACG", "N": "ACGT"}  # fmt: skip
_COMPLEMENT = str.maketrans("ACGTURYSWKMBDHVN", "TGCAAYRSWMKVHDBN")
_ONE_HOT = np.zeros((256, 4), dtype=np.float32)
for _code, _bases in _IUPAC.items():
    for _base in _bases:
        _ONE_HOT[ord(_code), "ACGT".index(_base)] = 1.0 / len(_bases)
_INDEX = np.full(256, -1, dtype=np.int8)  # A C G T -> 0..3, anything else -1
for _i, _base in enumerate("ACGT"):
    _INDEX[ord(_base)] = _i


@dataclass(frozen=True)
class Gene:
    """A coding sequence on one strand: ``parts`` are ``(start, end)`` spans in the order the
    CDS reads them (for the - strand, from the highest coordinate down); ``start``/``end`` their
    hull. ``strand`` is ``+1`` or ``-1``."""

    start: int
    end: int
    strand: int
    parts: tuple[tuple[int, int], ...] = ()
    pseudo: bool = False
    name: str = ""

    @property
    def three_prime(self) -> int:
        """The coordinate just past the stop codon, read along the gene: ``end`` on +, ``start`` on -."""
        return self.end if self.strand > 0 else self.start

    @property
    def five_prime(self) -> int:
        return self.start if self.strand > 0 else self.end


@dataclass
class Contig:
    """One sequence record: its id, bases, genes, genetic code and topology."""

    id: str
    sequence: str
    genes: list[Gene] = field(default_factory=list)
    table: int = DEFAULT_TABLE
    table_given: bool = False  # the record said /transl_table (else the default)
    circular: bool = False
    ambiguous: int = 0  # bases other than A, C, G, T (N and IUPAC codes)

    def __len__(self) -> int:
        return len(self.sequence)


# -----------------------------------------------------------------------------
# reading


def _open_text(path: Path, what: str) -> str:
    """The text of ``path``, gunzipped when it is a gzip (by its magic bytes, not its name)."""
    if not path.exists():
        raise FileNotFoundError(f"{what} {path} does not exist")
    if not path.is_file():
        raise ValueError(f"{what} {path} is not a file")
    raw = path.read_bytes()
    if raw[:2] == b"\x1f\x8b":
        try:
            raw = gzip.decompress(raw)
        except (EOFError, OSError, zlib.error) as error:
            raise ValueError(f"{what} {path} is a damaged or truncated gzip file ({error})") from None
    if not raw.strip():
        raise ValueError(f"{what} {path} is empty")
    if b"\x00" in raw[:65536]:
        raise ValueError(f"{what} {path} looks binary (it contains NUL bytes); expected GenBank, FASTA or GFF3 text")
    try:
        return raw.decode("utf-8")
    except UnicodeDecodeError:
        return raw.decode("latin-1")  # GenBank free text is sometimes Latin-1; the sequence is ASCII


def _clean_sequence(text: str, where: str) -> tuple[str, int]:
    """Upper-case IUPAC nucleotides; returns the sequence and how many bases are not A/C/G/T.
    Anything else (digits, gaps, protein letters) is a ValueError naming the first offender."""
    seq = text.upper().replace("U", "T")
    codes = np.frombuffer(seq.encode("latin-1", errors="replace"), dtype=np.uint8)
    known = _ONE_HOT[codes].sum(1) > 0
    if not known.all():
        bad = int(np.flatnonzero(~known)[0])
        raise ValueError(f"{where}: position {bad + 1} holds {seq[bad]!r}, not a nucleotide; expected A, C, G, T,"
                         " N or an IUPAC code (R Y S W K M B D H V)")  # fmt: skip
    return seq, int((_INDEX[codes] < 0).sum())


def sniff_format(text: str) -> str:
    """``"genbank"``, ``"fasta"`` or ``"gff3"`` from a file's first non-blank line."""
    first = text.lstrip()[:200]
    if first.startswith("LOCUS") or first.startswith("ID "):
        return "genbank"
    if first.startswith(">"):
        return "fasta"
    if first.startswith("##gff-version") or "\t" in first.split("\n")[0]:
        return "gff3"
    raise ValueError("expected a GenBank file (starting with LOCUS), FASTA (starting with '>') or GFF3"
                     f" (starting with ##gff-version), got a file starting {first[:30]!r}")  # fmt: skip


def read_genome(path: str | Path, *, annotation: str | Path | None = None, what: str = "genome file") -> list[Contig]:
    """The contigs of a GenBank file (with its CDS), a FASTA file (optionally with the CDS of a
    GFF3 ``annotation``), or a GFF3 file that carries its sequences after ``##FASTA``.

    Gzipped files are read as such. Bases other than A, C, G, T are kept when they are IUPAC
    codes (counted in ``Contig.ambiguous``) and refused otherwise.
    """
    bio = require("Bio.SeqIO", "genome", "reading genomes", package="biopython")
    path = Path(path)
    text = _open_text(path, what)
    kind = sniff_format(text)
    gff_text = None
    if kind == "gff3":
        gff_text, _, fasta = text.partition("##FASTA")
        if not fasta.strip():
            raise ValueError(f"{what} {path} is GFF3 without a ##FASTA section: give the sequence as the FASTA"
                             " file and this as the annotation")  # fmt: skip
        text, kind = fasta.lstrip(), "fasta"
    try:
        records = list(bio.parse(io.StringIO(text), kind))
    except ValueError as error:
        raise ValueError(f"{what} {path} is not valid {kind}: {error}") from None
    if not records:
        raise ValueError(f"{what} {path} holds no sequences")
    contigs = []
    for record in records:
        try:
            raw = str(record.seq)
        except Exception:  # noqa: BLE001 - Biopython's UndefinedSequenceError: a record without bases
            raise ValueError(f"{what} {path}: record {record.id} has no sequence (a GenBank file needs its ORIGIN"
                             " section)") from None  # fmt: skip
        if not raw:
            raise ValueError(f"{what} {path}: record {record.id} has an empty sequence")
        sequence, ambiguous = _clean_sequence(raw, f"{what} {path}, record {record.id}")
        contig = Contig(record.id, sequence, ambiguous=ambiguous,
                        circular=record.annotations.get("topology") == "circular")  # fmt: skip
        if kind == "genbank":
            _genbank_genes(record, contig)
        contigs.append(contig)
    if annotation is not None:
        if gff_text is not None:
            raise ValueError(f"{what} {path} is GFF3 with its own sequences; give no separate annotation")
        gff_text = _open_text(Path(annotation), "annotation file")
        if sniff_format(gff_text) != "gff3":
            raise ValueError(f"annotation file {annotation} is not GFF3 (it should start with ##gff-version 3)")
    if gff_text is not None:
        read_gff3(gff_text, contigs, where=str(annotation or path))
    return contigs


def _genbank_genes(record, contig: Contig) -> None:
    tables = set()
    for feature in record.features:
        if feature.type != "CDS" or feature.location is None:
            continue
        q = feature.qualifiers
        if "transl_table" in q:
            tables.add(int(q["transl_table"][0]))
        parts = tuple((int(p.start), int(p.end)) for p in feature.location.parts)
        strand = feature.location.strand or 1
        pseudo = "pseudo" in q or "pseudogene" in q
        name = (q.get("locus_tag") or q.get("gene") or [""])[0]
        contig.genes.append(Gene(min(s for s, _ in parts), max(e for _, e in parts), 1 if strand > 0 else -1,
                                 parts, pseudo, name))  # fmt: skip
    if len(tables) > 1:
        raise ValueError(f"record {record.id} mixes genetic codes {sorted(tables)}; expected one /transl_table")
    if tables:
        contig.table, contig.table_given = tables.pop(), True


def read_gff3(text: str, contigs: Sequence[Contig], *, where: str = "annotation") -> None:
    """Add the CDS lines of GFF3 ``text`` to the contigs they name (column 1 is the sequence id).
    CDS lines sharing an ``ID`` are the parts of one gene."""
    by_id = {c.id: c for c in contigs}
    grouped: dict[tuple[str, str], list] = {}
    for number, line in enumerate(text.splitlines(), 1):
        if not line.strip() or line.startswith("#"):
            continue
        fields = line.rstrip("\n").split("\t")
        if len(fields) != 9:
            raise ValueError(f"{where} line {number}: expected 9 tab-separated GFF3 columns, got {len(fields)}")
        seqid, _, kind, start, end, _, strand, _, attributes = fields
        if kind != "CDS":
            continue
        if seqid not in by_id:
            raise ValueError(f"{where} line {number}: sequence {seqid!r} is not in the FASTA file"
                             f" (it has {', '.join(sorted(by_id)[:5])})")  # fmt: skip
        try:
            start, end = int(start) - 1, int(end)
        except ValueError:
            raise ValueError(f"{where} line {number}: start and end must be integers, got {fields[3]!r}, {fields[4]!r}") from None
        if not 0 <= start < end <= len(by_id[seqid]) or strand not in "+-":
            raise ValueError(f"{where} line {number}: expected 1 <= start <= end <= {len(by_id[seqid])} and strand"
                             f" + or -, got {fields[3]}..{fields[4]} strand {strand!r}")  # fmt: skip
        attrs = dict(a.split("=", 1) for a in attributes.split(";") if "=" in a)
        key = attrs.get("ID") or f"line{number}"
        grouped.setdefault((seqid, key), []).append((start, end, strand, attrs))
        if "transl_table" in attrs:
            by_id[seqid].table, by_id[seqid].table_given = int(attrs["transl_table"]), True
    for (seqid, key), rows in grouped.items():
        strand = 1 if rows[0][2] == "+" else -1
        parts = sorted(((s, e) for s, e, _, _ in rows), reverse=strand < 0)
        attrs = rows[0][3]
        pseudo = attrs.get("pseudo", "").lower() == "true" or "pseudogene" in attrs
        by_id[seqid].genes.append(Gene(min(s for s, _ in parts), max(e for _, e in parts), strand, tuple(parts),
                                       pseudo, attrs.get("locus_tag", attrs.get("Name", key))))  # fmt: skip


def check_table(table: int, what: str = "translation table") -> dict[str, set[str]]:
    """The start and stop codons of NCBI genetic code ``table`` (starts limited to ATG/GTG/TTG)."""
    if isinstance(table, bool) or not isinstance(table, int):
        raise TypeError(f"{what} must be an NCBI genetic code number, got {table!r}")
    codon_table = require("Bio.Data.CodonTable", "genome", "genetic codes", package="biopython")
    if table not in codon_table.unambiguous_dna_by_id:
        raise ValueError(f"{what} must be an NCBI genetic code ({', '.join(map(str, sorted(codon_table.unambiguous_dna_by_id)))}),"
                         f" got {table}")  # fmt: skip
    code = codon_table.unambiguous_dna_by_id[table]
    starts = {c for c in GENE_STARTS if c in code.start_codons} or {"ATG"}
    return {"starts": starts, "stops": set(code.stop_codons)}


# -----------------------------------------------------------------------------
# labels, encodings, windows


def base_labels(length: int, genes: Sequence[Gene]) -> np.ndarray:
    """The per-base labels (module docstring) of a sequence of ``length`` bases with ``genes``.

    Codon positions count along each gene's parts in reading order, so a frameshifted CDS keeps
    its frame in each part. A base two genes code in different frames is :data:`AMBIGUOUS`; the
    bases of ``/pseudo`` genes that no real gene covers are :data:`IGNORE`.
    """
    labels = np.zeros(length, dtype=np.int16)
    for gene in sorted(genes, key=lambda g: g.pseudo):  # real genes first
        offset = 0
        for start, end in gene.parts or ((gene.start, gene.end),):
            start, end = max(start, 0), min(end, length)
            if end <= start:
                continue
            span = np.arange(end - start)
            if gene.strand > 0:
                new = 1 + (offset + span) % 3
            else:  # read from end-1 down to start
                new = (4 + (offset + span) % 3)[::-1]
            offset += end - start
            old = labels[start:end]
            if gene.pseudo:
                old[old == NONCODING] = IGNORE
                continue
            clash = (old > 0) & (old != new)
            old[(old == NONCODING) | (old == IGNORE)] = new[(old == NONCODING) | (old == IGNORE)]
            old[clash] = AMBIGUOUS
    return labels


def reverse_complement(sequence: str) -> str:
    return sequence.translate(_COMPLEMENT)[::-1]


def reverse_complement_labels(labels: np.ndarray) -> np.ndarray:
    """The labels of the reverse-complemented sequence: order reversed, + and - strand swapped."""
    out = labels[::-1].copy()
    plus, minus = (out >= 1) & (out <= 3), out >= 4
    out[plus] += 3
    out[minus] -= 3
    return out


def one_hot(sequence: str) -> np.ndarray:
    """``(len, 4)`` float32 over A, C, G, T; an IUPAC code spreads its weight (N: 0.25 each)."""
    return _ONE_HOT[np.frombuffer(sequence.encode("ascii"), dtype=np.uint8)]


def base_indices(sequence: str) -> np.ndarray:
    """``(len,)`` int8: A C G T as 0..3, any other base -1."""
    return _INDEX[np.frombuffer(sequence.encode("ascii"), dtype=np.uint8)]


def window_starts(length: int, window: int, stride: int) -> list[int]:
    """Starts of windows of ``window`` bases every ``stride`` covering ``[0, length)``; the last
    one ends at ``length`` (one window starting at 0 when ``length <= window``)."""
    if window < 1 or stride < 1:
        raise ValueError(f"window and stride must be positive, got {window}, {stride}")
    if length <= window:
        return [0]
    starts = list(range(0, length - window, stride))
    return starts + [length - window]


@dataclass(frozen=True)
class Region:
    """Bases ``[start, end)`` of contig ``contig`` (an index into the genome's contigs)."""

    contig: int
    start: int
    end: int

    def __len__(self) -> int:
        return self.end - self.start


def split_regions(lengths: Sequence[int], *, test_fraction: float, val_fraction: float) -> dict[str, list[Region]]:
    """Train, validation and test regions as contiguous blocks of positions: the genome's
    contigs end to end, the last ``test_fraction`` of all positions held out for test and the
    ``val_fraction`` before it for validation (neighbouring genes share statistics, so scattered
    windows would leak). A block that spans a contig boundary is cut into one region per contig."""
    for name, value in (("test_fraction", test_fraction), ("val_fraction", val_fraction)):
        if not 0 <= value < 1:
            raise ValueError(f"{name} must be in [0, 1), got {value}")
    if test_fraction + val_fraction >= 1:
        raise ValueError(f"test_fraction + val_fraction must be below 1, got {test_fraction} + {val_fraction}")
    total = sum(lengths)
    test_at = round(total * (1 - test_fraction))
    val_at = round(total * (1 - test_fraction - val_fraction))
    blocks = {"train": (0, val_at), "val": (val_at, test_at), "test": (test_at, total)}
    out: dict[str, list[Region]] = {name: [] for name in blocks}
    offset = 0
    for index, n in enumerate(lengths):
        for name, (a, b) in blocks.items():
            s, e = max(a, offset), min(b, offset + n)
            if e > s:
                out[name].append(Region(index, s - offset, e - offset))
        offset += n
    return out


def genes_in(genes: Sequence[Gene], start: int, end: int) -> list[Gene]:
    """The genes lying wholly inside ``[start, end)``, shifted to start at 0."""
    return [Gene(g.start - start, g.end - start, g.strand, tuple((s - start, e - start) for s, e in g.parts),
                 g.pseudo, g.name) for g in genes if g.start >= start and g.end <= end]  # fmt: skip


def labelled_windows(sequence: str, labels: np.ndarray, window: int, stride: int, *,
                     reverse_complements: bool = False) -> Iterator[tuple[np.ndarray, np.ndarray]]:  # fmt: skip
    """``(one_hot (window, 4), labels (window,))`` pairs over a sequence; a sequence shorter
    than ``window`` is padded with empty inputs and :data:`IGNORE` labels. With
    ``reverse_complements`` every window also comes reverse-complemented."""
    x_all, n = one_hot(sequence), len(sequence)
    for start in window_starts(n, window, stride):
        x = np.zeros((window, 4), dtype=np.float32)
        y = np.full(window, IGNORE, dtype=np.int64)
        end = min(start + window, n)
        x[: end - start], y[: end - start] = x_all[start:end], labels[start:end]
        y[y == AMBIGUOUS] = IGNORE
        yield x, y
        if reverse_complements:
            x_rc = np.zeros_like(x)
            x_rc[: end - start] = x[: end - start][::-1, ::-1]  # reversed, A<->T and C<->G (A C G T order)
            y_rc = np.full(window, IGNORE, dtype=np.int64)
            y_rc[: end - start] = reverse_complement_labels(y[: end - start])
            yield x_rc, y_rc
