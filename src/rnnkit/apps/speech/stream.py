"""Audio arriving on a byte stream (stdin): a WAV stream or raw 16-bit PCM, as float32 mono chunks.

A stream starting with ``RIFF`` is read as WAV: its header gives the rate and the channels (16-bit
PCM only), and the data chunk is read as it arrives, never seeking. Anything else is raw signed
16-bit little-endian PCM at ``rate`` with ``channels`` interleaved. Another rate than the model's
is resampled as it streams (soxr, what librosa resamples with), more than one channel mixed down;
each is said once, on stderr.
"""

from __future__ import annotations

import struct
import warnings
from collections.abc import Iterator
from typing import BinaryIO

import numpy as np

from ..._extras import require
from .audio import AudioError

CHUNK_BYTES = 3200  # 100 ms of 16 kHz mono: small enough to answer as one speaks


def _read_exactly(stream: BinaryIO, count: int) -> bytes:
    data = b""
    while len(data) < count:
        more = stream.read(count - len(data))
        if not more:
            break
        data += more
    return data


def _wav_header(stream: BinaryIO, head: bytes) -> tuple[int, int]:
    """Read a WAV header up to its data chunk: ``(rate, channels)``."""
    rest = _read_exactly(stream, 8)
    if len(rest) < 8 or rest[4:8] != b"WAVE":
        raise AudioError("stdin: starts with RIFF but is not a WAV stream")
    rate = channels = None
    while True:
        chunk = _read_exactly(stream, 8)
        if len(chunk) < 8:
            raise AudioError("stdin: the WAV stream ended before its data chunk")
        kind, size = chunk[:4], struct.unpack("<I", chunk[4:])[0]
        if kind == b"fmt ":
            body = _read_exactly(stream, size + (size & 1))
            form, channels, rate, _, _, bits = struct.unpack("<HHIIHH", body[:16])
            if form == 0xFFFE and len(body) >= 26:  # WAVE_FORMAT_EXTENSIBLE: the sub-format's first two bytes
                form = struct.unpack("<H", body[24:26])[0]
            if form != 1 or bits != 16:
                raise AudioError(f"stdin: --stream reads 16-bit PCM WAV, got format {form} with {bits}-bit samples")
        elif kind == b"data":
            if rate is None:
                raise AudioError("stdin: the WAV stream's data chunk comes before its fmt chunk")
            return rate, channels
        else:
            _read_exactly(stream, size + (size & 1))  # a chunk of no interest (LIST, fact...): read past it


def pcm_chunks(stream: BinaryIO, model_rate: int, rate: int | None = None, channels: int = 1) -> Iterator[np.ndarray]:
    """Float32 mono chunks at ``model_rate`` of the audio on ``stream``."""
    head = _read_exactly(stream, 4)
    if head == b"RIFF":
        if rate is not None:
            warnings.warn("--rate is ignored: the WAV stream's header gives its rate", stacklevel=2)
        rate, channels = _wav_header(stream, head)
        pending = b""
    else:
        if isinstance(channels, bool) or not isinstance(channels, int) or channels < 1:
            raise ValueError(f"--channels must be a positive integer, got {channels!r}")
        rate = rate or model_rate
        if rate < 1000:
            raise ValueError(f"--rate must be a sample rate of at least 1000 Hz, got {rate}")
        pending = head
    resampler = None
    if rate != model_rate:
        warnings.warn(f"stdin: resampled from {rate} Hz to {model_rate} Hz as it streams", stacklevel=2)
        resampler = require("soxr", "speech", "resampling a stream").ResampleStream(rate, model_rate, 1, dtype="float32")
    if channels > 1:
        warnings.warn(f"stdin: mixed {channels} channels down to one", stacklevel=2)
    frame = 2 * channels
    read = getattr(stream, "read1", stream.read)  # what has arrived, without waiting for a full chunk
    while True:
        data = read(CHUNK_BYTES)
        pending += data or b""
        usable = len(pending) // frame * frame
        if usable:
            samples = np.frombuffer(pending[:usable], dtype="<i2").astype(np.float32) / 32768.0
            pending = pending[usable:]
            if channels > 1:
                samples = samples.reshape(-1, channels).mean(1)
            if resampler is not None:
                samples = resampler.resample_chunk(samples)
            if len(samples):
                yield samples
        if not data:
            break
    if resampler is not None:
        tail = resampler.resample_chunk(np.zeros(0, dtype=np.float32), last=True)
        if len(tail):
            yield tail
