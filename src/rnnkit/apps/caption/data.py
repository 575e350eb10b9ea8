"""Captioning data: the settings, ``captions.tsv``, words, the split by base name, batches.

``DIR/captions.tsv`` holds ``file<TAB>caption`` lines (file names relative to ``DIR``; several
lines may caption one image); a first line ``file<TAB>caption...`` is a header, and columns past
the second are ignored. Captions are lower-cased words, ``:`` and ``,`` their own tokens.

The split is by **base**: the caption before its first colon ("woman astronaut" of "woman
astronaut: medium skin tone"), so that no test caption's base was seen in training with any
modifier; an image's base is its first caption's.
"""

from __future__ import annotations

import csv
import io
import re
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import torch
from torch import Tensor

from ...data.textfiles import read_text_file
from ...data.tokenizers import Vocabulary
from ...training import AugmentedBatches

PAD, START, END, UNK = "<pad>", "<start>", "<end>", "<unk>"
SPECIALS = (PAD, START, END, UNK)
WORD = re.compile(r"[^\s:,]+|[:,]")


@dataclass(frozen=True)
class CaptionConfig:
    data: str | None = None  # a directory with captions.tsv and the images
    image_size: int = 64  # pixels: every image resized to image_size x image_size
    test_fraction: float = 0.2  # of the bases
    val_fraction: float = 0.1  # of the remaining bases
    split_seed: int = 0
    min_count: int = 1  # rarer training words become <unk>
    max_words: int = 24  # tokens kept of each caption
    batch_size: int = 32
    beam_size: int = 3  # for the test figures
    shift: int = 4  # training augmentation: random translation by up to this many pixels (0: none)

    def __post_init__(self) -> None:
        for name in ("image_size", "min_count", "max_words", "batch_size", "beam_size"):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, int) or value < 1:
                raise ValueError(f"{name} must be a positive integer, got {value!r}")
        if isinstance(self.shift, bool) or not isinstance(self.shift, int) or self.shift < 0:
            raise ValueError(f"shift must be an integer >= 0, got {self.shift!r}")
        for name in ("test_fraction", "val_fraction"):
            if not 0 < getattr(self, name) < 1:
                raise ValueError(f"{name} must be in (0, 1), got {getattr(self, name)}")


def words(caption: str) -> list[str]:
    return WORD.findall(caption.lower())


def detokenize(tokens: Sequence[str]) -> str:
    return " ".join(tokens).replace(" :", ":").replace(" ,", ",")


def base_name(caption: str) -> str:
    return caption.split(":", 1)[0].strip().lower()


@dataclass
class Captioned:
    files: list[Path]  # distinct images, in order of first appearance
    captions: list[list[str]]  # every caption of each image
    source: str


def read_captions(directory: str | Path | None) -> Captioned:
    if directory is None:
        raise ValueError("captioning needs a directory: --data DIR with captions.tsv and the images (task.data)")
    directory = Path(directory)
    if not directory.is_dir():
        raise FileNotFoundError(f"data directory {directory} does not exist" if not directory.exists()
                                else f"--data must name a directory with captions.tsv, got the file {directory}")
    path = directory / "captions.tsv"
    if not path.is_file():
        raise FileNotFoundError(f"{path} does not exist: the data directory needs captions.tsv (file TAB caption)")
    text = read_text_file(path, what="captions file").lstrip("\ufeff")
    by_file: dict[Path, list[str]] = {}
    missing: list[tuple[int, str]] = []
    for number, row in enumerate(csv.reader(io.StringIO(text, newline=""), delimiter="\t", quoting=csv.QUOTE_NONE), 1):
        if not row or not "".join(row).strip():
            continue
        if number == 1 and row[0].strip().lower() in ("file", "image", "filename") and len(row) > 1 \
                and row[1].strip().lower() == "caption":  # fmt: skip
            continue
        if len(row) < 2 or not row[1].strip():
            raise ValueError(f"{path} line {number}: expected 'file<TAB>caption', got {chr(9).join(row)[:60]!r}")
        file = directory / row[0].strip()
        if not file.is_file():
            missing.append((number, row[0].strip()))
            continue
        by_file.setdefault(file, []).append(row[1].strip())
    if missing:
        first = ", ".join(f"{name!r} (line {n})" for n, name in missing[:3])
        raise FileNotFoundError(f"{path} names {len(missing)} image(s) missing from {directory}: {first}")
    if not by_file:
        raise ValueError(f"{path} captions no images")
    return Captioned(list(by_file), list(by_file.values()), str(path))


def build_vocabulary(captions: Sequence[Sequence[str]], min_count: int) -> Vocabulary:
    counts = Counter(w for group in captions for caption in group for w in words(caption))
    return Vocabulary.from_counts(counts, specials=SPECIALS, unknown=UNK, min_count=min_count)


def encode_captions(vocab: Vocabulary, captions: Sequence[str], max_words: int) -> Tensor:
    """``(N, max_words + 1)`` ids: the words, ``<end>``, then ``<pad>``."""
    end, pad = vocab.index[END], vocab.index[PAD]
    out = torch.full((len(captions), max_words + 1), pad, dtype=torch.long)
    for i, caption in enumerate(captions):
        ids = vocab.encode(words(caption)[:max_words]) + [end]
        out[i, : len(ids)] = torch.tensor(ids)
    return out


def decode_tokens(vocab: Vocabulary, ids: Sequence[int]) -> list[str]:
    """The words of a decoded row, up to its end token."""
    out = []
    for i in ids:
        symbol = vocab.symbols[int(i)]
        if symbol in (END, PAD):
            break
        out.append(symbol)
    return out


class CaptionBatches(AugmentedBatches):
    """``(images (B, 3, S, S) float, targets (B, T))`` batches of (image, caption) pairs; training
    images shifted by up to ``shift`` pixels (seeded by the seed, epoch and batch)."""

    def __init__(self, images: Tensor, image_index: Tensor, targets: Tensor, *, shift: int = 0, **options) -> None:
        super().__init__(image_index, targets, **options)
        self.images, self.shift = images, shift

    def transform(self, batch: tuple[Tensor, Tensor], generator: torch.Generator) -> tuple[Tensor, Tensor]:
        rows, targets = batch
        images = self.images[rows].float() / 255.0  # (B, 3, S, S)
        if self.shift:
            images = shifted(images, self.shift, generator)
        width = int((targets != 0).sum(1).max())  # cut the padding no caption of the batch needs
        return images, targets[:, :width]


def shifted(images: Tensor, shift: int, generator: torch.Generator) -> Tensor:
    """Each image translated by up to ``shift`` pixels each way, the border filled with white."""
    B, _, S, _ = images.shape
    padded = torch.nn.functional.pad(images, (shift, shift, shift, shift), value=1.0)
    offsets = torch.randint(0, 2 * shift + 1, (B, 2), generator=generator)
    return torch.stack([padded[i, :, dy : dy + S, dx : dx + S] for i, (dy, dx) in enumerate(offsets.tolist())])
