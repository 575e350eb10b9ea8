"""Scores on a 16th-note grid: voices of pitch, hold and rest tokens, as DeepBach and BachBot write them.

A piece is a :class:`Grid`: ``tokens`` ``(T, V)`` integers, one row per 16th note and one column
per voice (soprano first), where ``0..127`` is a MIDI pitch that starts at that step, :data:`HOLD`
continues the voice's previous note and :data:`REST` is silence (Hadjeres et al. 2017, section
3.1, write the hold symbol "__"; Liang 2016 writes the same per-voice tuples). ``positions``
``(T,)`` is each step's place in its bar (``0`` on a downbeat), which a model may read.

Reading scores needs music21 (the ``music`` extra): :func:`read_scores` turns MusicXML, MIDI,
ABC or kern files (or music21's own Bach chorales, :func:`bach_chorales`) into grids, and
:func:`grid_to_score` turns a grid back into a music21 score (MIDI, MusicXML). Everything else
here -- transposition, ranges, the by-piece split -- is numpy only.
"""

from __future__ import annotations

import hashlib
import json
import os
import warnings
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from .._extras import require

HOLD = 128  # the voice's previous note goes on
REST = 129  # the voice is silent
START = 130  # before the first step: what a model reads to write step 0
SYMBOLS = 131  # token values on the grid and START; a model predicts the first 130
VOICE_NAMES = ("soprano", "alto", "tenor", "bass")
STEPS_PER_QUARTER = 4  # a 16th-note grid
SCORE_SUFFIXES = (".mxl", ".musicxml", ".xml", ".mid", ".midi", ".abc", ".krn")


@dataclass
class Grid:
    """One piece on the grid: ``tokens`` ``(T, V)``, ``positions`` ``(T,)`` in its bar, and its name."""

    tokens: np.ndarray
    positions: np.ndarray
    name: str = ""
    steps_per_bar: int = 16
    voices: tuple[str, ...] = field(default=VOICE_NAMES)

    def __post_init__(self) -> None:
        self.tokens = np.asarray(self.tokens, dtype=np.int64)
        self.positions = np.asarray(self.positions, dtype=np.int64)
        if self.tokens.ndim != 2 or self.tokens.shape[0] < 1:
            raise ValueError(f"tokens must be (steps, voices) with at least one step, got shape {self.tokens.shape}")
        if self.positions.shape != (self.tokens.shape[0],):
            raise ValueError(f"positions must be ({self.tokens.shape[0]},) like the steps, got {self.positions.shape}")
        if self.tokens.size and (self.tokens.min() < 0 or self.tokens.max() > REST):
            raise ValueError(f"tokens must be pitches 0..127, HOLD ({HOLD}) or REST ({REST}),"
                             f" got values {self.tokens.min()}..{self.tokens.max()}")  # fmt: skip
        if len(self.voices) != self.tokens.shape[1]:
            raise ValueError(f"voices must name the {self.tokens.shape[1]} columns, got {self.voices}")

    def __len__(self) -> int:
        return self.tokens.shape[0]

    def transposed(self, semitones: int) -> Grid:
        """The piece ``semitones`` higher (lower if negative); holds and rests stay."""
        tokens = self.tokens.copy()
        notes = tokens < 128
        tokens[notes] += semitones
        if notes.any() and (tokens[notes].min() < 0 or tokens[notes].max() > 127):
            raise ValueError(f"transposing {self.name or 'the piece'} by {semitones} leaves the MIDI range 0..127")
        return Grid(tokens, self.positions, self.name, self.steps_per_bar, self.voices)

    def sounding(self) -> np.ndarray:
        """``(T, V)`` the pitch each voice sounds at each step (holds filled in), -1 where silent."""
        return sounding_pitches(self.tokens)


def sounding_pitches(tokens: np.ndarray) -> np.ndarray:
    """``(T, V)`` pitch per step and voice with holds resolved to the note they continue; -1 silent."""
    tokens = np.asarray(tokens)
    out = np.full(tokens.shape, -1, dtype=np.int64)
    current = np.full(tokens.shape[1:], -1, dtype=np.int64)
    for t in range(tokens.shape[0]):
        row = tokens[t]
        current = np.where(row < 128, row, np.where(row == REST, -1, current))
        out[t] = current
    return out


def voice_ranges(grids: Iterable[Grid]) -> list[tuple[int, int]]:
    """The lowest and highest pitch of each voice over ``grids``."""
    lows, highs = None, None
    for g in grids:
        notes = np.where(g.tokens < 128, g.tokens, -1)
        low = np.where(notes >= 0, notes, 999).min(0)
        high = notes.max(0)
        lows = low if lows is None else np.minimum(lows, low)
        highs = high if highs is None else np.maximum(highs, high)
    if lows is None:
        raise ValueError("voice_ranges needs at least one piece")
    return [(int(lo), int(hi)) for lo, hi in zip(lows, highs)]


def transpositions(grid: Grid, ranges: Sequence[tuple[int, int]], max_shift: int = 6) -> list[int]:
    """The shifts in ``-max_shift..max_shift`` that keep every voice of ``grid`` inside ``ranges``
    (DeepBach's augmentation: every key in which the voices stay in their ranges)."""
    notes = np.where(grid.tokens < 128, grid.tokens, -1)
    low = np.where(notes >= 0, notes, 999).min(0)
    high = notes.max(0)
    shifts = []
    for k in range(-max_shift, max_shift + 1):
        ok = all(high[v] < 0 or (low[v] + k >= ranges[v][0] and high[v] + k <= ranges[v][1])
                 for v in range(grid.tokens.shape[1]))  # fmt: skip
        if ok:
            shifts.append(k)
    return shifts or [0]


def split_by_piece(names: Sequence[str], val_fraction: float, test_fraction: float, seed: int) -> dict[str, list[str]]:
    """A seeded split of piece names into train/val/test: no piece on two sides.

    >>> split_by_piece(["a", "b", "c", "d", "e"], 0.2, 0.2, seed=0)["test"]
    ['c']
    """
    if len(set(names)) != len(names):
        raise ValueError("names must be distinct, one per piece")
    for name, value in (("val_fraction", val_fraction), ("test_fraction", test_fraction)):
        if not 0 <= value < 1:
            raise ValueError(f"{name} must be in [0, 1), got {value}")
    if val_fraction + test_fraction >= 1:
        raise ValueError(f"val_fraction + test_fraction must be below 1, got {val_fraction + test_fraction}")
    order = np.random.default_rng(seed).permutation(len(names))
    n_test = int(round(len(names) * test_fraction)) if test_fraction else 0
    n_val = int(round(len(names) * val_fraction)) if val_fraction else 0
    if len(names) - n_test - n_val < 1:
        raise ValueError(f"{len(names)} piece(s) are too few to split with val_fraction={val_fraction},"
                         f" test_fraction={test_fraction}: none is left to train on")  # fmt: skip
    pick = [names[i] for i in order]
    return {"test": sorted(pick[:n_test]), "val": sorted(pick[n_test : n_test + n_val]),
            "train": sorted(pick[n_test + n_val :])}  # fmt: skip


# -- music21: scores <-> grids -----------------------------------------------------------------


def _music21():
    return require("music21", "music", "reading and writing scores")


def _pick_parts(score, voices: str, name: str):
    """The parts for ``voices`` ('satb': four voices, 'melody': the top one, 'auto': four when
    there are four, else the top one); raises ``ValueError`` when the piece has none to give."""
    parts = list(score.parts) if hasattr(score, "parts") and len(score.parts) else [score]
    named = {}
    for p in parts:
        label = f"{p.id or ''} {p.partName or ''}".lower()
        for voice in VOICE_NAMES:
            if voice in label and voice not in named:
                named[voice] = p
    if voices in ("satb", "auto"):
        if len(named) == 4:
            return [named[v] for v in VOICE_NAMES]
        if len(parts) == 4:
            return parts
        if voices == "satb":
            raise ValueError(f"{name} has {len(parts)} part(s), not the four voices soprano, alto, tenor, bass")
    return [named.get("soprano", parts[0])]


def score_to_grid(score, name: str = "", voices: str = "satb") -> Grid:
    """A music21 score (or part) as a :class:`Grid` on the 16th-note grid.

    ``voices``: ``"satb"`` (four parts, soprano first; other pieces are refused), ``"melody"``
    (the soprano or top part only) or ``"auto"`` (four voices where the piece has them, else the
    top part). Chords keep their top note; notes shorter than a 16th are dropped; a pickup bar
    counts its positions from the bar's end, so downbeats are position 0.
    """
    m21 = _music21()
    if voices not in ("satb", "melody", "auto"):
        raise ValueError(f"voices must be 'satb', 'melody' or 'auto', got {voices!r}")
    parts = _pick_parts(score, voices, name or "the score")
    flat_parts = [p.stripTies().flatten() for p in parts]
    end = max(float(p.highestTime) for p in flat_parts)
    steps = int(round(end * STEPS_PER_QUARTER))
    if steps < 1:
        raise ValueError(f"{name or 'the score'} has no notes")
    tokens = np.full((steps, len(parts)), REST, dtype=np.int64)
    for v, part in enumerate(flat_parts):
        for element in part.notes:
            start = int(round(float(element.offset) * STEPS_PER_QUARTER))
            length = int(round(float(element.quarterLength) * STEPS_PER_QUARTER))
            if length < 1 or start >= steps:
                continue
            pitch = max(p.midi for p in element.pitches) if isinstance(element, m21.chord.Chord) else element.pitch.midi
            tokens[start, v] = pitch
            tokens[start + 1 : start + length, v] = HOLD
    signatures = list(parts[0].recurse().getElementsByClass("TimeSignature"))
    bar = int(round(float(signatures[0].barDuration.quarterLength) * STEPS_PER_QUARTER)) if signatures else 16
    measures = list(parts[0].getElementsByClass("Measure"))
    pickup = int(round(float(measures[0].paddingLeft) * STEPS_PER_QUARTER)) if measures else 0
    positions = (np.arange(steps) + pickup) % bar
    labels = VOICE_NAMES if len(parts) == 4 else ("soprano",)
    return Grid(tokens, positions, name, bar, labels)


def _parse(path: Path):
    m21 = _music21()
    return m21.converter.parse(str(path))


def score_files(directory: str | os.PathLike) -> list[Path]:
    """The score files under ``directory`` (recursively), sorted; ``ValueError`` if there are none."""
    directory = Path(directory)
    if not directory.exists():
        raise FileNotFoundError(f"data: {directory} does not exist")
    if directory.is_file():
        return [directory]
    files = sorted(p for p in directory.rglob("*") if p.is_file() and p.suffix.lower() in SCORE_SUFFIXES)
    if not files:
        raise ValueError(f"data: {directory} holds no score files ({', '.join(SCORE_SUFFIXES)})")
    return files


def read_scores(paths: Iterable[str | os.PathLike], voices: str = "satb", root: Path | None = None) -> list[Grid]:
    """Every file of ``paths`` as a :class:`Grid`; files music21 cannot parse and pieces without the
    voices asked for are skipped and named in one warning; ``ValueError`` if none is left."""
    grids, unreadable, refused = [], [], []
    paths = [Path(p) for p in paths]
    for path in paths:
        name = str(path.relative_to(root)) if root is not None and path.is_relative_to(root) else path.name
        try:
            score = _parse(path)
        except Exception:  # music21 raises many kinds; a file it cannot read is skipped and named
            unreadable.append(name)
            continue
        try:
            grids.append(score_to_grid(score, name, voices))
        except ValueError:
            refused.append(name)
    if unreadable:
        warnings.warn(f"skipped {len(unreadable)} file(s) music21 cannot parse: {', '.join(unreadable)}", stacklevel=2)
    if refused:
        warnings.warn(f"skipped {len(refused)} piece(s) without the voices {voices!r} asks for (four: soprano,"
                      f" alto, tenor, bass; task.voices=melody reads the top line): {', '.join(refused[:20])}"
                      + (", ..." if len(refused) > 20 else ""), stacklevel=2)  # fmt: skip
    if not grids:
        raise ValueError(f"no piece could be read from {len(paths)} file(s)")
    return grids


def bach_chorales(voices: str = "satb", cache: bool = True) -> list[Grid]:
    """music21's Bach chorales as grids (about 350 with four voices).

    Parsing takes a few minutes, so the grids are cached in ``$RNNKIT_CACHE`` (default
    ``~/.cache/rnnkit``) under a name that depends on music21's version and the file list.
    """
    m21 = _music21()
    paths = sorted(Path(p) for p in m21.corpus.getComposer("bach") if Path(p).suffix in (".mxl", ".xml", ".krn"))
    key = hashlib.sha256(json.dumps([m21.__version__, voices, [p.name for p in paths]]).encode()).hexdigest()[:16]
    folder = Path(os.environ.get("RNNKIT_CACHE", Path.home() / ".cache" / "rnnkit")) / "music"
    cached = folder / f"bach-{key}.json"
    if cache and cached.is_file():
        return [grid_from_json(item) for item in json.loads(cached.read_text())]
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # the corpus's few pieces with other voices are expected
        grids = read_scores(paths, voices, root=paths[0].parent)
    if cache:
        from .._io import atomic_write_text

        folder.mkdir(parents=True, exist_ok=True)
        atomic_write_text(cached, json.dumps([grid_to_json(g) for g in grids]))
    return grids


def grid_to_json(grid: Grid) -> dict:
    return {"name": grid.name, "tokens": grid.tokens.tolist(), "positions": grid.positions.tolist(),
            "steps_per_bar": grid.steps_per_bar, "voices": list(grid.voices)}  # fmt: skip


def grid_from_json(item: dict) -> Grid:
    return Grid(np.asarray(item["tokens"]), np.asarray(item["positions"]), item["name"], item["steps_per_bar"],
                tuple(item["voices"]))  # fmt: skip


def grid_to_score(grid: Grid, tempo: float | None = 80.0):
    """A music21 score of ``grid``: one part per voice, in 4/4 or the grid's bar, notes from onsets and holds."""
    m21 = _music21()
    score = m21.stream.Score()
    bar_quarters = grid.steps_per_bar / STEPS_PER_QUARTER
    for v, voice in enumerate(grid.voices):
        part = m21.stream.Part(id=voice)
        part.partName = voice.capitalize()
        part.insert(0, m21.meter.TimeSignature(f"{int(bar_quarters)}/4") if bar_quarters.is_integer()
                    else m21.meter.TimeSignature("4/4"))  # fmt: skip
        if v == 0 and tempo:
            part.insert(0, m21.tempo.MetronomeMark(number=tempo))
        lowest = min((int(p) for p in grid.tokens[:, v] if p < 128), default=60)
        part.insert(0, m21.clef.BassClef() if lowest < 55 and v >= 2 else m21.clef.TrebleClef())
        column = grid.tokens[:, v]
        t = 0
        while t < len(column):
            u = t + 1
            if column[t] == REST or column[t] == HOLD:  # a hold with nothing before it is silence
                while u < len(column) and column[u] in (REST, HOLD):  # a hold after silence is silence
                    u += 1
                element = m21.note.Rest()
            else:
                while u < len(column) and column[u] == HOLD:
                    u += 1
                element = m21.note.Note(int(column[t]))
            element.quarterLength = (u - t) / STEPS_PER_QUARTER
            part.insert(t / STEPS_PER_QUARTER, element)
            t = u
        score.insert(0, part)
    return score.makeNotation()


def write_grid(grid: Grid, path: str | os.PathLike) -> Path:
    """``grid`` as a MIDI (``.mid``, ``.midi``) or MusicXML (``.musicxml``, ``.xml``, ``.mxl``) file, atomically."""
    from .._io import atomic_write

    path = Path(path)
    suffix = path.suffix.lower()
    formats = {".mid": "midi", ".midi": "midi", ".musicxml": "musicxml", ".xml": "musicxml", ".mxl": "mxl"}
    if suffix not in formats:
        raise ValueError(f"out must end in .mid, .midi, .musicxml, .xml or .mxl, got {path.name!r}")
    score = grid_to_score(grid)

    def write(tmp: Path) -> None:
        written = Path(score.write(formats[suffix], fp=str(tmp)))
        if written != tmp:  # music21 may add its own suffix
            os.replace(written, tmp)

    return atomic_write(path, write)


def read_prime(path: str | os.PathLike, voices: str = "auto") -> Grid:
    """A prime (or a melody to harmonise) from a score file."""
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"prime: {path} does not exist")
    try:
        score = _parse(path)
    except Exception as error:
        raise ValueError(f"prime: music21 cannot parse {path}: {str(error).splitlines()[0] if str(error) else type(error).__name__}") from None
    return score_to_grid(score, path.name, voices)
