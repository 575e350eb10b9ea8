"""Musical checks of pieces on a grid (rows of pitches, -1 for silence, holds resolved).

``sounding`` arrays are ``(T, V)`` MIDI pitches per 16th step and voice, -1 where a voice is
silent, as :func:`rnnkit.data.music.sounding_pitches` gives them; ``onsets`` is ``(T, V)`` bool,
true where a voice starts a note.

- :func:`estimate_key`: the Krumhansl-Kessler key profiles correlated with the duration-weighted
  pitch-class histogram (Krumhansl 1990, the Krumhansl-Schmuckler algorithm).
- :func:`in_key_fraction`: the share of notes (onsets) whose pitch class is in the key's scale
  (major, or harmonic minor with the natural 7th also allowed).
- :func:`parallel_motion`: parallel fifths and octaves (unisons included) between every pair of
  voices, counted where both voices move in the same direction from one perfect interval to
  the same perfect interval.
- :func:`range_fraction`: the share of notes inside each voice's range.
"""

from __future__ import annotations

import numpy as np

MAJOR_PROFILE = np.array([6.35, 2.23, 3.48, 2.33, 4.38, 4.09, 2.52, 5.19, 2.39, 3.66, 2.29, 2.88])
MINOR_PROFILE = np.array([6.33, 2.68, 3.52, 5.38, 2.60, 3.53, 2.54, 4.75, 3.98, 2.69, 3.34, 3.17])
MAJOR_SCALE = (0, 2, 4, 5, 7, 9, 11)
MINOR_SCALE = (0, 2, 3, 5, 7, 8, 10, 11)  # natural minor with the raised 7th
NAMES = ("C", "C#", "D", "Eb", "E", "F", "F#", "G", "Ab", "A", "Bb", "B")


def _check(sounding: np.ndarray) -> np.ndarray:
    sounding = np.asarray(sounding)
    if sounding.ndim != 2:
        raise ValueError(f"sounding must be (steps, voices) pitches, got shape {sounding.shape}")
    return sounding


def estimate_key(sounding: np.ndarray) -> tuple[int, str]:
    """``(tonic pitch class, 'major' | 'minor')`` of the piece.

    >>> c_major = np.array([[60], [64], [67], [65], [62], [60], [59], [60]])
    >>> estimate_key(c_major)
    (0, 'major')
    """
    sounding = _check(sounding)
    notes = sounding[sounding >= 0]
    if notes.size == 0:
        raise ValueError("estimate_key needs at least one sounding note")
    histogram = np.bincount(notes % 12, minlength=12).astype(float)
    best, key = -np.inf, (0, "major")
    for tonic in range(12):
        for mode, profile in (("major", MAJOR_PROFILE), ("minor", MINOR_PROFILE)):
            r = np.corrcoef(histogram, np.roll(profile, tonic))[0, 1]
            if r > best:
                best, key = r, (tonic, mode)
    return key


def key_name(key: tuple[int, str]) -> str:
    return f"{NAMES[key[0]]} {key[1]}"


def parse_key(text: str) -> tuple[int, str]:
    """'C', 'c', 'F# minor', 'Bb major', 'g minor' -> (tonic, mode); lower case alone means minor."""
    parts = text.strip().split()
    if not parts or len(parts) > 2:
        raise ValueError(f"key must look like 'C', 'G major', 'F# minor' or 'a' (minor), got {text!r}")
    tonic = parts[0]
    mode = parts[1].lower() if len(parts) == 2 else ("minor" if tonic[:1].islower() else "major")
    if mode not in ("major", "minor"):
        raise ValueError(f"key mode must be major or minor, got {text!r}")
    letters = {"C": 0, "D": 2, "E": 4, "F": 5, "G": 7, "A": 9, "B": 11}
    base = letters.get(tonic[:1].upper())
    accidentals = tonic[1:]
    if base is None or any(ch not in "#b" for ch in accidentals):
        raise ValueError(f"key must start with a note name A-G, optionally # or b, got {text!r}")
    return (base + accidentals.count("#") - accidentals.count("b")) % 12, mode


def onsets_of(tokens: np.ndarray) -> np.ndarray:
    """``(T, V)`` true where a grid's token is a pitch (a note starts)."""
    return np.asarray(tokens) < 128


def in_key_fraction(sounding: np.ndarray, onsets: np.ndarray, key: tuple[int, str] | None = None) -> float:
    """The share of note onsets in the key's scale (the estimated key when ``key`` is None).

    >>> s = np.array([[60], [61], [62], [64]])
    >>> in_key_fraction(s, s >= 0, (0, "major"))  # C# is not in C major
    0.75
    """
    sounding = _check(sounding)
    key = estimate_key(sounding) if key is None else key
    scale = MAJOR_SCALE if key[1] == "major" else MINOR_SCALE
    notes = sounding[np.asarray(onsets) & (sounding >= 0)]
    if notes.size == 0:
        return float("nan")
    return float(np.isin((notes - key[0]) % 12, scale).mean())


def parallel_motion(sounding: np.ndarray) -> dict[str, int]:
    """Counts of parallel fifths and octaves (unisons too) between every pair of voices.

    At each step where a pair of voices both sound before and after, both move, in the same
    direction, from an interval to the same interval class: a fifth (7 semitones mod 12) or an
    octave/unison (0 mod 12).

    >>> s = np.array([[60, 53], [62, 55]])  # both up a tone, a fifth apart before and after
    >>> parallel_motion(s)
    {'fifths': 1, 'octaves': 0}
    """
    sounding = _check(sounding)
    fifths = octaves = 0
    before, after = sounding[:-1], sounding[1:]
    V = sounding.shape[1]
    for a in range(V):
        for b in range(a + 1, V):
            ok = (before[:, a] >= 0) & (before[:, b] >= 0) & (after[:, a] >= 0) & (after[:, b] >= 0)
            move_a, move_b = after[:, a] - before[:, a], after[:, b] - before[:, b]
            ok &= (move_a != 0) & (move_b != 0) & (np.sign(move_a) == np.sign(move_b))
            i0 = (before[:, a] - before[:, b]) % 12
            i1 = (after[:, a] - after[:, b]) % 12
            fifths += int((ok & (i0 == 7) & (i1 == 7)).sum())
            octaves += int((ok & (i0 == 0) & (i1 == 0)).sum())
    return {"fifths": fifths, "octaves": octaves}


def range_fraction(sounding: np.ndarray, onsets: np.ndarray, ranges) -> float:
    """The share of note onsets inside their voice's ``(low, high)`` range."""
    sounding = _check(sounding)
    onsets = np.asarray(onsets) & (sounding >= 0)
    low = np.array([r[0] for r in ranges])
    high = np.array([r[1] for r in ranges])
    inside = (sounding >= low) & (sounding <= high)
    total = onsets.sum()
    return float((inside & onsets).sum() / total) if total else float("nan")


def piece_statistics(sounding: np.ndarray, onsets: np.ndarray, ranges=None) -> dict[str, float]:
    """Steps, in-key fraction (estimated key), parallel fifths and octaves per 100 steps, in-range share."""
    parallels = parallel_motion(sounding)
    steps = sounding.shape[0]
    result = {"steps": steps, "in_key": in_key_fraction(sounding, onsets),
              "fifths_per_100": 100 * parallels["fifths"] / max(steps - 1, 1),
              "octaves_per_100": 100 * parallels["octaves"] / max(steps - 1, 1)}  # fmt: skip
    if ranges is not None:
        result["in_range"] = range_fraction(sounding, onsets, ranges)
    return result
