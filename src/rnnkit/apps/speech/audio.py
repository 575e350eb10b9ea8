"""Audio in, features out: WAV files read with soundfile, log-mel filterbanks (or MFCC) by librosa.

Features are computed frame by frame without centring (frame ``i`` covers samples
``[i * hop, i * hop + n_fft)``), so :class:`FeatureStream` fed the same samples in any chunks
gives exactly :func:`features`' frames: what streaming recognition needs.
"""

from __future__ import annotations

import io
import warnings
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from ..._extras import require

EPSILON = 1e-6  # added to the mel energies before the log: silence stays finite
SILENCE_PEAK = 1e-4  # a recording whose samples never exceed this (of full scale) holds nothing


def librosa():
    return require("librosa", "speech", "speech features")


def soundfile():
    return require("soundfile", "speech", "reading audio", package="soundfile")


# -----------------------------------------------------------------------------
# reading


class AudioError(ValueError):
    """A file that is no usable audio: not WAV, empty, unreadable."""


@dataclass
class Audio:
    samples: np.ndarray  # (N,) float32 in [-1, 1], mono, at sample_rate
    sample_rate: int
    notes: tuple[str, ...] = ()  # what was done to it: resampled, mixed down

    @property
    def seconds(self) -> float:
        return len(self.samples) / self.sample_rate

    @property
    def silent(self) -> bool:
        return len(self.samples) == 0 or float(np.abs(self.samples).max()) <= SILENCE_PEAK


def read_audio(source: str | Path | bytes, sample_rate: int, *, name: str | None = None) -> Audio:
    """A WAV file (a path, or its bytes) as mono float32 at ``sample_rate``.

    Another rate is resampled (librosa's soxr), more than one channel mixed down (their mean);
    each is noted in ``Audio.notes`` for the caller to say. A file that is not WAV, or holds no
    samples, is an :class:`AudioError` naming it.
    """
    sf = soundfile()
    label = name or str(source if not isinstance(source, bytes) else "<stdin>")
    handle = io.BytesIO(source) if isinstance(source, bytes) else source
    try:
        info = sf.info(handle)
        if isinstance(handle, io.BytesIO):
            handle.seek(0)
        if info.format != "WAV" and info.format != "WAVEX":
            raise AudioError(f"{label}: not a WAV file (soundfile reads it as {info.format})")
        data, rate = sf.read(handle, dtype="float32", always_2d=True)  # (N, channels)
    except AudioError:
        raise
    except FileNotFoundError:
        raise
    except Exception as error:  # soundfile's LibsndfileError and friends: one line naming the file
        if not isinstance(source, bytes) and not Path(source).exists():
            raise FileNotFoundError(f"{label} does not exist") from None
        raise AudioError(f"{label}: not a readable WAV file ({str(error).strip().splitlines()[0]})") from None
    notes = []
    if data.shape[0] == 0:
        raise AudioError(f"{label}: the file holds no samples")
    if data.shape[1] > 1:
        notes.append(f"mixed {data.shape[1]} channels down to one")
        data = data.mean(axis=1, keepdims=True)
    samples = data[:, 0]
    if rate != sample_rate:
        notes.append(f"resampled from {rate} Hz to {sample_rate} Hz")
        samples = librosa().resample(samples, orig_sr=rate, target_sr=sample_rate).astype(np.float32)
    return Audio(np.ascontiguousarray(samples, dtype=np.float32), sample_rate, tuple(notes))


def say_notes(notes: dict[str, list[str]], what: str = "file") -> None:
    """One warning line per kind of change, counting the files it was done to."""
    by_kind: dict[str, list[str]] = {}
    for file, changes in notes.items():
        for change in changes:
            by_kind.setdefault(change, []).append(file)
    for change, files in by_kind.items():
        more = f" and {len(files) - 1} more" if len(files) > 1 else ""
        warnings.warn(f"{change}: {files[0]}{more} ({len(files)} {what}{'s' if len(files) > 1 else ''})", stacklevel=3)


# -----------------------------------------------------------------------------
# features


@dataclass(frozen=True)
class FeatureSettings:
    """How frames become feature vectors (saved with a trained model)."""

    sample_rate: int = 8000
    kind: str = "logmel"  # "logmel" or "mfcc"
    n_mels: int = 40
    n_mfcc: int = 13
    window_ms: float = 25.0
    hop_ms: float = 10.0

    @property
    def win_length(self) -> int:
        return max(1, round(self.sample_rate * self.window_ms / 1000))

    @property
    def hop_length(self) -> int:
        return max(1, round(self.sample_rate * self.hop_ms / 1000))

    @property
    def n_fft(self) -> int:
        return 1 << (self.win_length - 1).bit_length()  # the next power of two

    @property
    def size(self) -> int:
        return self.n_mfcc if self.kind == "mfcc" else self.n_mels

    def frames(self, samples: int) -> int:
        """Frames of a recording of ``samples`` samples (one, zero-padded, for a short one)."""
        return 1 + max(0, samples - self.n_fft) // self.hop_length

    def to_dict(self) -> dict[str, Any]:
        return {"sample_rate": self.sample_rate, "kind": self.kind, "n_mels": self.n_mels, "n_mfcc": self.n_mfcc,
                "window_ms": self.window_ms, "hop_ms": self.hop_ms}  # fmt: skip


class FeatureExtractor:
    """Log-mel energies (or their MFCC: the orthonormal DCT-II of them, librosa's) of frames of samples."""

    def __init__(self, settings: FeatureSettings) -> None:
        lr = librosa()
        self.settings = s = settings
        self._mel = lr.filters.mel(sr=s.sample_rate, n_fft=s.n_fft, n_mels=s.n_mels).astype(np.float32)  # (M, n_fft/2+1)

    def __call__(self, samples: np.ndarray) -> np.ndarray:
        """``samples`` ``(N,)`` -> features ``(frames(N), size)``: float32."""
        s, lr = self.settings, librosa()
        if len(samples) < s.n_fft:
            samples = np.pad(samples, (0, s.n_fft - len(samples)))
        usable = s.n_fft + (len(samples) - s.n_fft) // s.hop_length * s.hop_length
        spectrum = lr.stft(samples[:usable], n_fft=s.n_fft, hop_length=s.hop_length, win_length=s.win_length,
                           window="hann", center=False)  # fmt: skip  # (n_fft/2+1, frames)
        log_mel = np.log(self._mel @ (np.abs(spectrum) ** 2) + EPSILON)  # (M, frames)
        if s.kind == "mfcc":
            log_mel = lr.feature.mfcc(S=log_mel, n_mfcc=s.n_mfcc)  # (n_mfcc, frames)
        return np.ascontiguousarray(log_mel.T, dtype=np.float32)


class FeatureStream:
    """Features of samples that arrive in chunks: ``push(samples)`` returns the frames now complete.

    Every frame equals :class:`FeatureExtractor`'s on the whole recording; the work per frame is
    constant (the samples kept are less than one window). ``finish()`` gives the single padded
    frame of a recording shorter than one window, as the offline features do, and nothing else.
    """

    def __init__(self, extractor: FeatureExtractor) -> None:
        self.extractor = extractor
        self.buffer = np.zeros(0, dtype=np.float32)
        self.emitted = 0

    def push(self, samples: np.ndarray) -> np.ndarray:
        s = self.extractor.settings
        self.buffer = np.concatenate([self.buffer, np.asarray(samples, dtype=np.float32)])
        if len(self.buffer) < s.n_fft:
            return np.zeros((0, s.size), dtype=np.float32)
        count = 1 + (len(self.buffer) - s.n_fft) // s.hop_length
        frames = self.extractor(self.buffer[: s.n_fft + (count - 1) * s.hop_length])
        self.buffer = self.buffer[count * s.hop_length :]
        self.emitted += count
        return frames

    def finish(self) -> np.ndarray:
        if self.emitted == 0 and len(self.buffer):
            self.emitted = 1
            return self.extractor(self.buffer)
        return np.zeros((0, self.extractor.settings.size), dtype=np.float32)
