"""Online handwriting: pen strokes read from UNIPEN, JSON or CSV files, and the pre-processing
that online recognisers apply before a recurrent network reads them (Graves et al. 2009,
section 4.1: per-sample normalisation, arc-length resampling, offsets and pen-up features).

A sample is a :class:`StrokeSample`: its strokes (each an ``(n, 2)`` float array of ``x, y``
points, in the order they were written, y growing upwards), its label and its writer.

File formats (:func:`read_strokes` chooses by the file's name and first character):

* UNIPEN text (``pendigits-orig.tra``): ``.SEGMENT <level> <n> ? "<label>"`` starts a sample,
  ``.COMMENT <label> <writer> <index>`` names its writer (the pendigits convention; a
  ``.WRITER_ID`` line does too), then ``.PEN_DOWN`` ... ``.PEN_UP`` blocks of ``x y`` points.
  Other ``.KEYWORD`` lines (``.DT``, ``.LEXICON``, ``.X_DIM``, ...) are skipped.
* JSON: ``[{"strokes": [[[x, y], ...], ...], "label": "7", "writer": "w1"}, ...]``; ``label``
  and ``writer`` optional.
* CSV with a header ``sample,stroke,x,y`` and optional ``label``, ``writer`` columns, one row a
  point, rows of a sample contiguous.

Every error names the file and the line (UNIPEN, CSV, JSON syntax) or the sample (JSON
structure); a sample without strokes, or whose strokes hold a single point between them, is an
error, never dropped.

>>> import numpy as np
>>> sample = StrokeSample([np.array([[0.0, 0.0], [0.0, 2.0]]), np.array([[1.0, 0.0], [1.0, 2.0]])], "11")
>>> points, pen = resample(normalise(sample.strokes), 4)
>>> points.round(3).tolist(), pen.tolist()
([[-0.25, -0.5], [-0.25, 0.5], [0.25, -0.5], [0.25, 0.5]], [False, False, True, False])
"""

from __future__ import annotations

import csv
import io
import json
import math
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
from torch import Tensor

from .._validation import check_positive_int
from .textfiles import read_text_file

FORMATS = ("unipen", "json", "csv")


@dataclass
class StrokeSample:
    """One handwritten sample: strokes of ``(n, 2)`` points, its label and writer."""

    strokes: list[np.ndarray]
    label: str | None = None
    writer: str | None = None
    where: str = ""  # "FILE line N" or "FILE sample N": where errors point

    @property
    def points(self) -> int:
        return sum(len(s) for s in self.strokes)


# -----------------------------------------------------------------------------
# reading


def read_strokes(path: str | Path, *, format: str | None = None, what: str = "strokes file") -> list[StrokeSample]:
    """The samples of a UNIPEN, JSON or CSV file (``format``: ``"unipen"``, ``"json"``, ``"csv"``;
    default: ``.json``/``.csv`` by name, JSON if the text starts with ``[``, else UNIPEN)."""
    text = read_text_file(path, what=what).lstrip("\ufeff")
    if format is None:
        suffix = Path(path).suffix.lower()
        format = "json" if suffix == ".json" or text.lstrip().startswith("[") else "csv" if suffix == ".csv" else "unipen"
    if format not in FORMATS:
        raise ValueError(f"format must be one of {', '.join(map(repr, FORMATS))}, got {format!r}")
    reader = {"unipen": parse_unipen, "json": parse_strokes_json, "csv": parse_strokes_csv}[format]
    samples = reader(text, str(path))
    if not samples:
        raise ValueError(f"{what} {path} holds no samples")
    return samples


def parse_unipen(text: str, source: str = "<text>") -> list[StrokeSample]:
    """The samples of UNIPEN text (see the module docstring)."""
    samples: list[StrokeSample] = []
    current: StrokeSample | None = None
    stroke: list[tuple[float, float]] | None = None  # inside .PEN_DOWN
    start = 0  # the line of the current .SEGMENT
    for number, line in enumerate(text.splitlines(), 1):
        fields = line.split()
        if not fields:
            continue
        keyword = fields[0]
        if not keyword.startswith("."):
            if stroke is None:
                raise ValueError(f"{source} line {number}: a point outside .PEN_DOWN ... .PEN_UP: {line.strip()[:60]!r}")
            stroke.append(_point(fields, source, number, line))
            continue
        if stroke is not None and keyword != ".PEN_UP":
            raise ValueError(f"{source} line {number}: {keyword} inside a .PEN_DOWN block (no .PEN_UP since)")
        if keyword == ".SEGMENT":
            _finish(current, samples, source, start)
            label = line.split('"')[1] if line.count('"') >= 2 else None
            current, start = StrokeSample([], label, None, f"{source} line {number}"), number
        elif keyword == ".COMMENT" and current is not None and len(fields) >= 4 and current.writer is None:
            current.writer = fields[2]  # pendigits: .COMMENT <label> <writer> <index>
        elif keyword == ".WRITER_ID" and len(fields) >= 2 and current is not None:
            current.writer = fields[1]
        elif keyword == ".PEN_DOWN":
            if current is None:
                raise ValueError(f"{source} line {number}: .PEN_DOWN before any .SEGMENT names a sample")
            stroke = []
        elif keyword == ".PEN_UP":
            if stroke is None:
                raise ValueError(f"{source} line {number}: .PEN_UP without a .PEN_DOWN")
            if stroke:
                current.strokes.append(np.asarray(stroke, dtype=np.float64))
            stroke = None
    if stroke is not None:
        raise ValueError(f"{source}: the file ends inside a .PEN_DOWN block (no .PEN_UP)")
    _finish(current, samples, source, start)
    return samples


def _point(fields: list[str], source: str, number: int, line: str) -> tuple[float, float]:
    try:
        x, y = float(fields[0]), float(fields[1])
    except (ValueError, IndexError):
        raise ValueError(f"{source} line {number}: expected a point 'x y', got {line.strip()[:60]!r}") from None
    if not (math.isfinite(x) and math.isfinite(y)):
        raise ValueError(f"{source} line {number}: point coordinates must be finite, got {line.strip()[:60]!r}")
    return x, y


def _finish(sample: StrokeSample | None, samples: list[StrokeSample], source: str, line: int) -> None:
    if sample is None:
        return
    check_sample(sample)
    samples.append(sample)


def check_sample(sample: StrokeSample) -> StrokeSample:
    """``sample`` if it can be recognised: at least one stroke, and two distinct points."""
    where = sample.where or "sample"
    label = f" ({sample.label!r})" if sample.label is not None else ""
    if not sample.strokes:
        raise ValueError(f"{where}{label}: the sample has no strokes")
    points = np.concatenate(sample.strokes)
    if len(points) < 2:
        raise ValueError(f"{where}{label}: the sample is a single point; a trajectory needs two at least")
    if np.ptp(points, axis=0).max() == 0:
        raise ValueError(f"{where}{label}: all {len(points)} points of the sample are at one place")
    return sample


def parse_strokes_json(text: str, source: str = "<text>") -> list[StrokeSample]:
    """The samples of a JSON list ``[{"strokes": [[[x, y], ...], ...], "label": ..., "writer": ...}]``."""
    try:
        data = json.loads(text)
    except json.JSONDecodeError as error:
        raise ValueError(f"{source} is not valid JSON: line {error.lineno} column {error.colno}: {error.msg}") from None
    if not isinstance(data, list):
        raise ValueError(f"{source}: expected a JSON list of samples, got a {type(data).__name__}")
    samples = []
    for i, item in enumerate(data):
        where = f"{source} sample {i}"
        if not isinstance(item, dict) or "strokes" not in item:
            raise ValueError(f'{where}: expected an object with "strokes", got {json.dumps(item)[:60]}')
        strokes = item["strokes"]
        if not isinstance(strokes, list):
            raise ValueError(f'{where}: "strokes" must be a list of strokes, got {type(strokes).__name__}')
        arrays = []
        for j, stroke in enumerate(strokes):
            try:
                array = np.asarray(stroke, dtype=np.float64)
            except (TypeError, ValueError):
                array = None
            if array is None or array.ndim != 2 or array.shape[1] != 2 or len(array) == 0:
                raise ValueError(f"{where} stroke {j}: expected a list of [x, y] points, got {json.dumps(stroke)[:60]}")
            if not np.isfinite(array).all():
                raise ValueError(f"{where} stroke {j}: point coordinates must be finite numbers")
            arrays.append(array)
        label, writer = item.get("label"), item.get("writer")
        samples.append(check_sample(StrokeSample(arrays, None if label is None else str(label),
                                                 None if writer is None else str(writer), where)))  # fmt: skip
    return samples


def parse_strokes_csv(text: str, source: str = "<text>") -> list[StrokeSample]:
    """The samples of a CSV with the header ``sample,stroke,x,y[,label][,writer]``."""
    reader = csv.reader(io.StringIO(text, newline=""))
    try:
        header = [h.strip() for h in next(reader)]
    except (StopIteration, csv.Error):
        raise ValueError(f"{source}: expected a CSV header naming sample, stroke, x, y") from None
    missing = [c for c in ("sample", "stroke", "x", "y") if c not in header]
    if missing:
        raise ValueError(f"{source}: the CSV header has no column {missing[0]!r}; it has {', '.join(header)}")
    col = {name: header.index(name) for name in ("sample", "stroke", "x", "y", "label", "writer") if name in header}
    rows: dict[str, dict] = {}
    try:
        for row in reader:
            number = reader.line_num
            if not row:
                continue
            if len(row) != len(header):
                raise ValueError(f"{source} line {number}: {len(row)} fields, but the header has {len(header)}")
            key = row[col["sample"]]
            point = _point([row[col["x"]], row[col["y"]]], source, number, ",".join(row))
            entry = rows.setdefault(key, {"strokes": {}, "line": number, "label": None, "writer": None})
            entry["strokes"].setdefault(row[col["stroke"]], []).append(point)
            for name in ("label", "writer"):
                if name in col:
                    entry[name] = row[col[name]]
    except csv.Error as error:
        raise ValueError(f"{source} is not valid CSV: line {reader.line_num}: {error}") from None
    return [check_sample(StrokeSample([np.asarray(s) for s in entry["strokes"].values()], entry["label"],
                                      entry["writer"], f"{source} line {entry['line']} (sample {key!r})"))
            for key, entry in rows.items()]  # fmt: skip


def write_strokes_json(samples: Sequence[StrokeSample]) -> str:
    """``samples`` as the JSON format :func:`parse_strokes_json` reads."""
    return json.dumps([{"strokes": [s.tolist() for s in sample.strokes], "label": sample.label,
                        "writer": sample.writer} for sample in samples])  # fmt: skip


# -----------------------------------------------------------------------------
# pre-processing


def normalise(strokes: Sequence[np.ndarray]) -> list[np.ndarray]:
    """The strokes centred on their bounding box and scaled so its longer side is 1 (the
    aspect ratio kept: a "1" stays thin)."""
    points = np.concatenate(strokes)
    low, high = points.min(0), points.max(0)
    extent = float((high - low).max())
    if extent == 0:
        raise ValueError("strokes must span more than one place to be normalised; every point is the same")
    centre = (low + high) / 2
    return [(s - centre) / extent for s in strokes]


def resample(strokes: Sequence[np.ndarray], points: int) -> tuple[np.ndarray, np.ndarray]:
    """``points`` points spaced evenly by arc length along the trajectory: ``(coords (points,
    2), pen_up (points,))``, where ``pen_up`` marks a point reached with the pen lifted (the
    first point of every stroke after the first).

    Each stroke gets points in proportion to its length, at least one (a dot stays a dot), and
    keeps its first and last point; the pen-up jumps between strokes are not part of the length
    (the pen writes nothing there). Resampling removes the writer's speed, which the tablet's
    fixed time steps record (Alimoglu & Alpaydin 1996; Graves et al. 2009, section 4.1).
    """
    check_positive_int("points", points)
    if points < len(strokes):
        raise ValueError(f"points must be at least the number of strokes ({len(strokes)}), got {points}")
    lengths = [float(np.linalg.norm(np.diff(s, axis=0), axis=1).sum()) for s in strokes]
    counts = _allocate(points, lengths)
    coords, pen = [], []
    for stroke, length, count in zip(strokes, lengths, counts):
        coords.append(_along(stroke, count) if length > 0 else np.repeat(stroke[:1], count, axis=0))
        flags = np.zeros(count, dtype=bool)
        flags[0] = bool(pen)  # the first stroke starts the sample
        pen.append(flags)
    return np.concatenate(coords), np.concatenate(pen)


def _allocate(points: int, lengths: list[float]) -> list[int]:
    """Points per stroke: one each, the rest in proportion to length (largest remainders)."""
    counts = [1] * len(lengths)
    spare, total = points - len(lengths), sum(lengths)
    if spare and total > 0:
        shares = [spare * length / total for length in lengths]
        extra = [int(s) for s in shares]
        order = sorted(range(len(lengths)), key=lambda i: shares[i] - extra[i], reverse=True)
        for i in order[: spare - sum(extra)]:
            extra[i] += 1
        counts = [c + e for c, e in zip(counts, extra)]
    elif spare:  # every stroke is a dot
        counts[0] += spare
    return counts


def _along(stroke: np.ndarray, count: int) -> np.ndarray:
    """``count`` points evenly spaced by arc length from the stroke's first point to its last."""
    steps = np.linalg.norm(np.diff(stroke, axis=0), axis=1)  # (n-1,)
    distance = np.concatenate([[0.0], np.cumsum(steps)])  # (n,)
    targets = np.linspace(0.0, distance[-1], count) if count > 1 else np.array([0.0])
    return np.stack([np.interp(targets, distance, stroke[:, d]) for d in range(2)], axis=1)  # (count, 2)


def offsets(coords: Tensor, pen_up: Tensor) -> Tensor:
    """The recurrent network's input: ``(..., T, 3)`` of ``dx, dy, pen_up`` from points
    ``(..., T, 2)`` and flags ``(..., T)``; the first offset is from the origin (the normalised
    box's centre), so a running sum gives the points back."""
    previous = torch.cat([torch.zeros_like(coords[..., :1, :]), coords[..., :-1, :]], dim=-2)
    return torch.cat([coords - previous, pen_up[..., None].to(coords.dtype)], dim=-1)


def augment(coords: Tensor, generator: torch.Generator, *, rotation: float = 10.0, scale: float = 0.1,
            shear: float = 0.0) -> Tensor:  # fmt: skip
    """``coords`` ``(B, T, 2)`` under a random small affine map per sample: a rotation of up to
    ``rotation`` degrees, a scaling of each axis by a factor in ``[1 - scale, 1 + scale]``, a
    horizontal shear up to ``shear`` (the slant); the writers' variation, drawn by ``generator``."""
    B = coords.shape[0]
    angle = (torch.rand(B, generator=generator) * 2 - 1) * math.radians(rotation)  # (B,)
    factors = 1 + (torch.rand(B, 2, generator=generator) * 2 - 1) * scale  # (B, 2)
    slant = (torch.rand(B, generator=generator) * 2 - 1) * shear  # (B,)
    cos, sin = torch.cos(angle), torch.sin(angle)
    rotate = torch.stack([torch.stack([cos, -sin], -1), torch.stack([sin, cos], -1)], -2)  # (B, 2, 2)
    shearing = torch.eye(2).repeat(B, 1, 1)
    shearing[:, 0, 1] = slant
    matrix = rotate @ shearing @ torch.diag_embed(factors)  # (B, 2, 2)
    return coords @ matrix.transpose(1, 2).to(coords.dtype)  # (B, T, 2) @ (B, 2, 2)


def prepare_samples(samples: Sequence[StrokeSample], points: int) -> tuple[Tensor, Tensor]:
    """Every sample normalised and resampled: ``(coords (N, points, 2) float32, pen_up (N, points) bool)``."""
    coords, pen = zip(*(resample(normalise(check_sample(s).strokes), points) for s in samples))
    return torch.tensor(np.stack(coords), dtype=torch.float32), torch.tensor(np.stack(pen))


def strokes_width(strokes: Sequence[np.ndarray]) -> tuple[float, float]:
    """The horizontal extent ``(min x, max x)`` of a sample's strokes."""
    points = np.concatenate(strokes)
    return float(points[:, 0].min()), float(points[:, 0].max())
