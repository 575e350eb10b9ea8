"""Speech data: settings, the recordings and their transcripts, the split by speaker, features.

A data directory holds WAV files and either a transcript table (a CSV with columns ``file`` and
``text``, optionally ``speaker``) or file names ``{label}_{speaker}_{index}.wav`` (the Free Spoken
Digit Dataset's). Targets are labels (one symbol per recording: isolated words) or texts (one
symbol per character). The test split holds out whole speakers (``split="speaker"``), the files
of low index (``split="index"``, FSDD's official test set: indices 0-4) or random files; validation
is a random part of the rest. Normalisation and the vocabulary are fitted on the training part.
"""

from __future__ import annotations

import csv
import re
import warnings
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

import numpy as np
import torch
from torch import Tensor

from .audio import AudioError, FeatureExtractor, FeatureSettings, read_audio, say_notes

FSDD_NAME = re.compile(r"^(?P<label>[^_]+)_(?P<speaker>[^_]+)_(?P<index>\d+)$")


# -----------------------------------------------------------------------------
# settings


@dataclass(frozen=True)
class SpeechConfig:
    data: str | None = None  # a directory of WAV files
    transcripts: str | None = None  # a CSV (file,text[,speaker]); default: the directory's only .csv, else FSDD names
    target: Literal["label", "text"] = "label"  # label: one symbol per recording; text: one per character
    sample_rate: int = 8000  # recordings at another rate are resampled
    features: Literal["logmel", "mfcc"] = "logmel"
    n_mels: int = 40
    n_mfcc: int = 13
    window_ms: float = 25.0
    hop_ms: float = 10.0
    normalize: Literal["global", "utterance"] = "global"  # global: training frames' mean and std per feature
    split: Literal["speaker", "index", "table", "random"] = "speaker"  # table: the CSV's split column (train/test)
    test_speakers: str = ""  # split=speaker: these (comma-separated); empty: test_fraction of the speakers, by split_seed
    test_indices: int = 5  # split=index: file index below this is test (FSDD's official split: 5)
    test_fraction: float = 0.2
    val_fraction: float = 0.1  # of the training files, at random: early stopping and model selection
    split_seed: int = 0
    batch_size: int = 32
    time_masks: int = 0  # SpecAugment (Park et al. 2019): masks of up to time_mask_width frames per utterance
    time_mask_width: int = 10
    freq_masks: int = 0  # and of up to freq_mask_width feature channels
    freq_mask_width: int = 8
    beam_width: int = 1  # decoding for the reports and transcribe: 1 is greedy
    prior: Literal["none", "words", "ngram"] = "none"  # words: the training transcripts' words; ngram: a char 3-gram
    prior_weight: float = 0.5

    def __post_init__(self) -> None:
        if self.data is not None:  # absolute, so a resumed run or a command from elsewhere reads the same
            object.__setattr__(self, "data", str(Path(self.data).expanduser().resolve()))
        for name in ("sample_rate", "n_mels", "n_mfcc", "batch_size", "beam_width", "time_mask_width", "freq_mask_width",
                     "test_indices"):  # fmt: skip
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, int) or value < 1:
                raise ValueError(f"task.{name} must be a positive integer, got {value!r}")
        for name in ("time_masks", "freq_masks"):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, int) or value < 0:
                raise ValueError(f"task.{name} must be an integer >= 0, got {value!r}")
        if not 0 < self.window_ms <= 200 or not 0 < self.hop_ms <= self.window_ms:
            raise ValueError(f"task.window_ms must be in (0, 200] and task.hop_ms in (0, window_ms],"
                             f" got {self.window_ms} and {self.hop_ms}")  # fmt: skip
        for name in ("test_fraction", "val_fraction"):
            if not 0 < getattr(self, name) < 1:
                raise ValueError(f"task.{name} must be in (0, 1), got {getattr(self, name)}")
        if self.sample_rate < 1000:
            raise ValueError(f"task.sample_rate must be at least 1000 Hz, got {self.sample_rate}")
        if self.features == "mfcc" and self.n_mfcc > self.n_mels:
            raise ValueError(f"task.n_mfcc ({self.n_mfcc}) must not exceed task.n_mels ({self.n_mels})")
        if self.prior_weight < 0:
            raise ValueError(f"task.prior_weight must be >= 0, got {self.prior_weight}")

    def feature_settings(self) -> FeatureSettings:
        return FeatureSettings(self.sample_rate, self.features, self.n_mels, self.n_mfcc, self.window_ms, self.hop_ms)


# -----------------------------------------------------------------------------
# the recordings and their transcripts


@dataclass
class Recordings:
    files: list[Path]
    texts: list[str]  # the label or the transcript of each
    speakers: list[str] | None
    indices: list[int] | None  # FSDD's per-speaker index, where the names give it
    source: str  # how the transcripts were found
    sides: list[str] | None = None  # the transcript table's split column (train/test), where it has one


def read_recordings(config: SpeechConfig) -> Recordings:
    if config.data is None:
        raise ValueError("task speech needs a directory of WAV files: --data DIR (task.data)")
    folder = Path(config.data)
    if not folder.exists():
        raise FileNotFoundError(f"--data {folder}: no such directory")
    if not folder.is_dir():
        raise ValueError(f"--data must be a directory of WAV files, got the file {folder}")
    table = Path(config.transcripts).expanduser() if config.transcripts else None
    if table is None:
        tables = sorted(folder.glob("*.csv"))
        if len(tables) > 1:
            raise ValueError(f"--data {folder} holds {len(tables)} CSV files ({tables[0].name}, {tables[1].name}, ...):"
                             " name the transcripts with --task.transcripts=FILE")  # fmt: skip
        table = tables[0] if tables else None
    if table is not None:
        return _read_table(folder, table)
    waves = sorted(p for p in folder.iterdir() if p.suffix.lower() == ".wav")
    if not waves:
        raise ValueError(f"--data {folder} holds no .wav files (and no transcript CSV)")
    parsed = [FSDD_NAME.match(p.stem) for p in waves]
    unnamed = [p.name for p, m in zip(waves, parsed) if m is None]
    if unnamed:
        raise ValueError(f"{len(unnamed)} file(s) in {folder} are not named {{label}}_{{speaker}}_{{index}}.wav"
                         f" (the first: {unnamed[0]}) and there is no transcript CSV (file,text)")  # fmt: skip
    return Recordings(waves, [m["label"] for m in parsed], [m["speaker"] for m in parsed],
                      [int(m["index"]) for m in parsed], f"{folder} (file names label_speaker_index.wav)")  # fmt: skip


def _read_table(folder: Path, table: Path) -> Recordings:
    if not table.is_file():
        raise FileNotFoundError(f"--task.transcripts {table}: no such file")
    with open(table, newline="", encoding="utf-8-sig") as f:
        rows = list(csv.DictReader(f))
    columns = set(rows[0]) if rows else set()
    if not rows or not {"file", "text"} <= columns:
        raise ValueError(f"transcript table {table} needs a header with columns file,text and at least one row,"
                         f" got columns {sorted(c for c in columns if c)}")  # fmt: skip
    files, texts, speakers, missing, sides = [], [], [], [], []
    for row in rows:
        sides.append((row.get("split") or "").strip().lower())
        path = (folder / row["file"]).resolve() if not Path(row["file"]).is_absolute() else Path(row["file"])
        if not path.is_file():
            missing.append(row["file"])
        files.append(path)
        texts.append((row["text"] or "").strip())
        speakers.append((row.get("speaker") or "").strip())
    if missing:
        raise FileNotFoundError(f"transcript table {table} names {len(missing)} file(s) that do not exist in {folder}"
                                f" (the first: {missing[0]})")  # fmt: skip
    if "" in texts:
        raise ValueError(f"transcript table {table}: {texts.count('')} row(s) have an empty text"
                         f" (the first: {files[texts.index('')].name})")  # fmt: skip
    has_speakers = "speaker" in columns and all(speakers)
    if not has_speakers:  # FSDD-style names still give the speaker
        matched = [FSDD_NAME.match(p.stem) for p in files]
        has_speakers = all(matched)
        speakers = [m["speaker"] for m in matched] if has_speakers else speakers
    if "split" in columns:
        odd = sorted(set(sides) - {"train", "test"})
        if odd:
            raise ValueError(f"transcript table {table}: the split column must say train or test, got {odd[:3]}")
    return Recordings(files, texts, speakers if has_speakers else None, None, f"{table}",
                      sides if "split" in columns else None)  # fmt: skip


# -----------------------------------------------------------------------------
# the split


@dataclass
class SpeechSplit:
    train: list[int]
    val: list[int]
    test: list[int]
    test_speakers: list[str]  # empty unless the test split holds out speakers
    description: str


def split_recordings(config: SpeechConfig, recordings: Recordings) -> SpeechSplit:
    n = len(recordings.files)
    generator = torch.Generator().manual_seed(config.split_seed)
    speakers = recordings.speakers
    held: list[str] = []
    if config.split == "speaker":
        if speakers is None:
            raise ValueError("task.split=speaker needs speakers: a 'speaker' column in the transcript table or"
                             " file names label_speaker_index.wav; or use --task.split=random")  # fmt: skip
        distinct = sorted(set(speakers))
        named = sorted({s.strip() for s in config.test_speakers.split(",") if s.strip()})
        if named:
            unknown = sorted(set(named) - set(distinct))
            if unknown:
                raise ValueError(f"task.test_speakers names {unknown}, not among the speakers {distinct}")
            held = named
        else:
            if len(distinct) < 2:
                raise ValueError(f"task.split=speaker needs at least two speakers, got {distinct}")
            count = min(max(1, round(config.test_fraction * len(distinct))), len(distinct) - 1)
            held = sorted(distinct[i] for i in torch.randperm(len(distinct), generator=generator)[:count].tolist())
        if len(held) == len(distinct):
            raise ValueError(f"task.test_speakers holds out every speaker {distinct}: none is left to train on")
        test = [i for i in range(n) if speakers[i] in held]
        description = f"speakers {', '.join(held)} held out for testing"
    elif config.split == "index":
        if recordings.indices is None:
            raise ValueError("task.split=index needs file names label_speaker_index.wav")
        test = [i for i in range(n) if recordings.indices[i] < config.test_indices]
        description = f"files of index < {config.test_indices} for testing (FSDD's official split at 5)"
    elif config.split == "table":
        if recordings.sides is None:
            raise ValueError("task.split=table needs a 'split' column (train or test) in the transcript table")
        test = [i for i in range(n) if recordings.sides[i] == "test"]
        description = "the transcript table's split column"
    else:
        test = sorted(torch.randperm(n, generator=generator)[: max(1, round(config.test_fraction * n))].tolist())
        description = "random files for testing"
    rest = sorted(set(range(n)) - set(test))
    if not test or len(rest) < 2:
        raise ValueError(f"data too short to split: {n} recordings give {len(test)} test and {len(rest)} others")
    order = torch.randperm(len(rest), generator=generator).tolist()
    n_val = min(max(1, round(config.val_fraction * len(rest))), len(rest) - 1)
    val = sorted(rest[i] for i in order[:n_val])
    train = sorted(rest[i] for i in order[n_val:])
    return SpeechSplit(train, val, test, held, description)


# -----------------------------------------------------------------------------
# the vocabulary: symbol 0 is the blank


def symbols_of(text: str, target: str) -> list[str]:
    """The symbols of one target: the label itself, or the characters of the text."""
    return [text] if target == "label" else list(text)


def build_vocabulary(texts: list[str], target: str) -> list[str]:
    """The training targets' symbols, sorted: ids 1..n (0 is the CTC blank)."""
    symbols = {s for text in texts for s in symbols_of(text, target)}
    try:
        return sorted(symbols, key=float) if target == "label" else sorted(symbols)
    except ValueError:
        return sorted(symbols)


def encode_targets(texts: list[str], vocabulary: list[str], target: str) -> tuple[Tensor, Tensor, list[int]]:
    """Padded symbol ids ``(N, S)``, lengths ``(N,)``, and the rows with symbols outside the vocabulary
    (their unknown symbols dropped)."""
    index = {s: i + 1 for i, s in enumerate(vocabulary)}
    encoded, unknown = [], []
    for row, text in enumerate(texts):
        ids = [index.get(s, 0) for s in symbols_of(text, target)]
        if 0 in ids:
            unknown.append(row)
        encoded.append([i for i in ids if i])
    lengths = torch.tensor([len(e) for e in encoded], dtype=torch.long)
    out = torch.zeros(len(encoded), max(1, int(lengths.max()) if len(encoded) else 1), dtype=torch.long)
    for row, ids in enumerate(encoded):
        out[row, : len(ids)] = torch.tensor(ids, dtype=torch.long)
    return out, lengths, unknown


# -----------------------------------------------------------------------------
# features of every recording


@dataclass
class Features:
    frames: list[np.ndarray]  # per recording (T_i, F), before normalisation
    kept: list[int]  # the recordings' rows that gave features
    skipped: dict[str, str]  # file -> why it gave none


def extract_all(files: list[Path], settings: FeatureSettings) -> Features:
    """Features of every file; a file that is not usable audio, or silent, is skipped, and said so."""
    extractor = FeatureExtractor(settings)
    frames, kept, skipped, notes = [], [], {}, {}
    for row, path in enumerate(files):
        try:
            audio = read_audio(path, settings.sample_rate)
        except AudioError as error:
            skipped[path.name] = str(error).split(": ", 1)[-1]
            continue
        if audio.silent:
            skipped[path.name] = "silent"
            continue
        if audio.notes:
            notes[path.name] = list(audio.notes)
        frames.append(extractor(audio.samples))
        kept.append(row)
    say_notes(notes)
    if skipped:
        first = next(iter(skipped.items()))
        warnings.warn(f"skipped {len(skipped)} of {len(files)} recordings that hold no usable audio"
                      f" (the first: {first[0]}: {first[1]})", stacklevel=2)  # fmt: skip
    return Features(frames, kept, skipped)


@dataclass
class Normalizer:
    """Per-feature standardisation: ``global`` statistics of the training frames, or each utterance's own."""

    kind: str
    mean: np.ndarray | None = None  # (F,)
    std: np.ndarray | None = None

    @classmethod
    def fit(cls, kind: str, frames: list[np.ndarray]) -> Normalizer:
        if kind == "utterance":
            return cls(kind)
        stacked = np.concatenate(frames, axis=0).astype(np.float64)  # (sum T, F)
        return cls(kind, stacked.mean(0).astype(np.float32), np.maximum(stacked.std(0), 1e-5).astype(np.float32))

    def __call__(self, frames: np.ndarray) -> np.ndarray:
        if self.kind == "utterance":
            return ((frames - frames.mean(0)) / np.maximum(frames.std(0), 1e-5)).astype(np.float32)
        return ((frames - self.mean) / self.std).astype(np.float32)

    def to_dict(self) -> dict:
        if self.kind == "utterance":
            return {"kind": "utterance"}
        return {"kind": "global", "mean": self.mean.tolist(), "std": self.std.tolist()}

    @classmethod
    def from_dict(cls, data: dict) -> Normalizer:
        if data.get("kind") == "utterance":
            return cls("utterance")
        return cls("global", np.asarray(data["mean"], dtype=np.float32), np.asarray(data["std"], dtype=np.float32))


def pad_frames(frames: list[np.ndarray]) -> tuple[Tensor, Tensor]:
    """``(N, T_max, F)`` zero past each end, and lengths ``(N,)``."""
    lengths = torch.tensor([len(f) for f in frames], dtype=torch.long)
    out = torch.zeros(len(frames), int(lengths.max()), frames[0].shape[1])
    for i, f in enumerate(frames):
        out[i, : len(f)] = torch.from_numpy(f)
    return out, lengths


def spec_augment(config: SpeechConfig):
    """SpecAugment's time and frequency masks (Park et al. 2019, section 2; no time warping), set to
    zero (the normalised mean), drawn per utterance from the batch's generator; None when off."""
    if not config.time_masks and not config.freq_masks:
        return None

    def augment(x: Tensor, lengths: Tensor, generator: torch.Generator) -> Tensor:
        x = x.clone()
        B, T, F = x.shape
        for b in range(B):
            length = int(lengths[b])
            for _ in range(config.time_masks):
                width = int(torch.randint(0, min(config.time_mask_width, max(1, length // 5)) + 1, (1,), generator=generator))
                start = int(torch.randint(0, max(1, length - width + 1), (1,), generator=generator))
                x[b, start : start + width] = 0.0
            for _ in range(config.freq_masks):
                width = int(torch.randint(0, min(config.freq_mask_width, F) + 1, (1,), generator=generator))
                start = int(torch.randint(0, F - width + 1, (1,), generator=generator))
                x[b, :length, start : start + width] = 0.0
        return x

    return augment
