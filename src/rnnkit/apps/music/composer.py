"""A trained music run as a composer: ``Composer.load(run_dir).compose(bars=16, ...)`` -> a :class:`Grid`.

Generation runs through the model's ``step`` (the state carries; history is never re-read), one
step at a time, voice by voice. Two constraints shape the sampled distribution: pitches outside
each voice's training range are never sampled, and a move into parallel fifths or octaves with
a voice already chosen for the same step is made less likely by a factor (``parallels``):

- ``parallels=f`` (or ``(f_fifths, f_octaves)``): the model's probability of a candidate pitch
  that would make ``n`` parallel fifths and ``m`` parallel octaves with the voices above it is
  multiplied by ``f_fifths ** n * f_octaves ** m`` (``log f`` added to its logit per parallel),
  so its odds against every other candidate drop by exactly that factor; temperature and top-p
  then act on the penalised distribution as on any other (at temperature ``T`` the sampled odds
  drop by ``f ** (1 / T)``).
- ``'ban'`` is the factor 0 (the candidate is removed), ``'allow'`` the factor 1 (the model's
  choice). A hold, or a rest, always stays possible.

The default, :data:`PARALLELS`, is set so that chorales composed at temperature 0.7 write
parallel fifths and octaves at the training corpus's rates per 100 steps (docs/music.md has the
measurement; a factor on the model's probability, rather than on the tempered one, keeps the
rate nearer the corpus's at other temperatures).

``fixed`` voices (``harmonize``) are taken from the prime instead of sampled, as DeepBach
harmonises a given soprano.
"""

from __future__ import annotations

import math
import numbers
from pathlib import Path
from typing import Any

import numpy as np
import torch

from ..._io import read_json, run_file
from ...data.music import HOLD, REST, START, Grid, sounding_pitches
from ...metrics.music import estimate_key, parse_key

MUSIC_FILE = "music.json"  # what a composer needs of a run: voices, bar length, ranges
PARALLELS = (0.019, 0.028)  # (fifths, octaves) factors: the corpus's rates at temperature 0.7 (docs/music.md)


def parallel_factors(value: str | float | tuple[float, float], name: str = "parallels") -> tuple[float, float]:
    """``'ban'``, ``'allow'``, a factor, ``'F5,F8'`` or ``(F5, F8)`` -> the (fifths, octaves) factors in [0, 1].

    >>> parallel_factors("ban"), parallel_factors("0.1"), parallel_factors("0.05,0.02")
    ((0.0, 0.0), (0.1, 0.1), (0.05, 0.02))
    """
    given, named = value, {"ban": (0.0, 0.0), "allow": (1.0, 1.0)}
    expected = "'ban', 'allow', a factor in [0, 1], or two factors 'FIFTHS,OCTAVES'"
    if isinstance(value, bool):
        raise TypeError(f"{name} must be {expected}, got {value!r} (say 'ban' or 'allow', not True/False)")
    if isinstance(value, str):
        text = value.strip().lower()
        if text in named:
            return named[text]
        try:
            value = tuple(float(part) for part in text.split(","))
        except ValueError:
            raise ValueError(f"{name} must be {expected}, got {value!r}") from None
    if isinstance(value, numbers.Real):
        value = (float(value), float(value))
    if not isinstance(value, tuple) or len(value) not in (1, 2) or not all(isinstance(v, numbers.Real) for v in value):
        raise ValueError(f"{name} must be {expected}, got {given!r}")
    factors = (float(value[0]), float(value[-1]))
    if not all(0.0 <= f <= 1.0 for f in factors):
        raise ValueError(f"{name} factors must lie in [0, 1] (0 bans, 1 allows), got {given!r}")
    return factors


class Composer:
    def __init__(self, model, info: dict[str, Any]) -> None:
        self.model, self.info = model, info
        self.voices = tuple(info["voices"])
        self.steps_per_bar = int(info["steps_per_bar"])
        self.ranges = [tuple(r) for r in info["ranges"]]

    @classmethod
    def load(cls, run_dir: str | Path) -> Composer:
        from ...training import load

        if not Path(run_dir).is_dir():
            raise FileNotFoundError(f"run directory {run_dir} does not exist")
        path = run_file(run_dir, MUSIC_FILE)
        if not path.is_file():
            raise FileNotFoundError(f"{path} does not exist: is {run_dir} a music run directory?")
        model = load(run_dir)
        model.eval()
        return cls(model, read_json(path))

    def _adjust(self, prev: np.ndarray, ranges: bool, parallels: tuple[float, float]):
        """The logits filter for one step given the voices' sounding pitches before it ``prev`` ``(S,)``.

        ``parallels``: the (fifths, octaves) factors on the model's probabilities; ``sample_row``
        applies temperature and top-p to what this returns.
        """
        pitches = torch.arange(128)
        logs = [math.log(f) if f > 0 else float("-inf") for f in parallels]  # fifths, octaves

        def adjust(s: int, logits: torch.Tensor, row: torch.Tensor) -> torch.Tensor:
            logits = logits.clone()
            bad = torch.zeros(logits.shape[-1], dtype=torch.bool)
            if ranges:
                low, high = self.ranges[s]
                bad[:128] |= (pitches < low) | (pitches > high)
            made = torch.zeros(2, 128)  # parallel (fifths, octaves) each candidate pitch would make
            if prev[s] >= 0:
                for r in range(s):
                    token = int(row[0, r])
                    current = token if token < 128 else (int(prev[r]) if token == HOLD else -1)
                    if prev[r] < 0 or current < 0 or current == prev[r]:
                        continue
                    # voice r is above voice s (soprano first): the interval is r's pitch minus s's, as
                    # rnnkit.metrics.music.parallel_motion counts it
                    interval = (int(prev[r]) - int(prev[s])) % 12
                    if interval not in (0, 7):
                        continue
                    moved = (pitches != int(prev[s])) & (torch.sign(pitches - int(prev[s])) == int(np.sign(current - prev[r])))
                    made[0 if interval == 7 else 1] += (moved & ((current - pitches) % 12 == interval)).float()
            for kind in range(2):
                if logs[kind] == float("-inf"):
                    bad[:128] |= made[kind] > 0
                elif logs[kind] != 0:
                    logits[..., :128] += logs[kind] * made[kind]
            if bad.all():
                return logits
            return logits.masked_fill(bad, float("-inf"))

        return adjust

    @torch.no_grad()
    def compose(
        self,
        bars: int = 16,
        *,
        temperature: float = 1.0,
        top_p: float | None = None,
        prime: Grid | None = None,
        harmonize: bool = False,
        key: str | None = None,
        seed: int | None = None,
        ranges: bool = True,
        parallels: str | float | tuple[float, float] = PARALLELS,
        tries: int = 12,
    ) -> Grid:
        """A new piece of ``bars`` bars (after the prime, which it includes), or the prime harmonised.

        ``key`` ('C', 'g minor', 'F# major'): the piece is written in the key's mode (up to
        ``tries`` samples) and transposed to its tonic. ``parallels``: 'ban', 'allow', a factor
        or (fifths, octaves) factors, as :func:`parallel_factors` reads them (the module's
        docstring says what a factor does).
        """
        if isinstance(bars, bool) or not isinstance(bars, numbers.Integral) or bars < (0 if harmonize else 1):
            raise ValueError(f"bars must be a positive integer, got {bars!r}")
        target = parse_key(key) if key is not None else None
        factors = parallel_factors(parallels)
        prime = self._check_prime(prime, harmonize)
        generator = torch.Generator().manual_seed(seed) if seed is not None else None
        for attempt in range(tries if target else 1):
            grid = self._sample(bars, temperature, top_p, prime, harmonize, generator, ranges, factors)
            if target is None:
                return grid
            tonic, mode = estimate_key(grid.sounding())
            if mode == target[1] or harmonize:
                break
        shift = (target[0] - tonic) % 12
        shift = shift - 12 if shift > 6 else shift
        notes = grid.tokens[grid.tokens < 128]
        if notes.size and (notes.max() + shift > 127 or notes.min() + shift < 0):
            shift = shift - 12 if shift > 0 else shift + 12
        return grid.transposed(int(shift))

    def _check_prime(self, prime: Grid | None, harmonize: bool) -> Grid | None:
        if prime is None:
            if harmonize:
                raise ValueError("harmonize needs a prime: the melody to harmonise (--prime FILE)")
            return None
        S = len(self.voices)
        width = prime.tokens.shape[1]
        if width != S and not harmonize:
            if S == 1:  # a melody model reads the top line
                return Grid(prime.tokens[:, :1], prime.positions, prime.name, prime.steps_per_bar, ("soprano",))
            raise ValueError(f"the prime has {width} voice(s), the model writes {S}: harmonise a melody with --harmonize")
        return prime

    def _sample(self, bars, temperature, top_p, prime, harmonize, generator, ranges, parallels) -> Grid:
        S, bar = len(self.voices), self.steps_per_bar
        if harmonize:
            steps = len(prime)
            positions = prime.positions % bar
            fixed = np.full((steps, S), -1)
            fixed[:, 0] = prime.tokens[:, 0]
            read = 0
        else:
            read = len(prime) if prime is not None else 0
            steps = read + bars * bar
            first = int(prime.positions[0]) if prime is not None else 0
            positions = (first + np.arange(steps)) % bar
            fixed = None
        tokens = np.zeros((steps, S), dtype=np.int64)
        row = torch.full((1, S), START, dtype=torch.long)
        state = None
        for t in range(steps):
            h, state = self.model.step(row, state, torch.tensor([int(positions[t])]))
            if t < read:  # the prime is read, not sampled
                row = torch.tensor(prime.tokens[t : t + 1], dtype=torch.long)
            else:
                prev = sounding_pitches(tokens[:t])[-1] if t else np.full(S, -1)
                keep = torch.tensor(fixed[t : t + 1]) if fixed is not None else None
                row = self.model.sample_row(h, temperature=temperature, top_p=top_p, fixed=keep, generator=generator,
                                            adjust=self._adjust(prev, ranges, parallels))  # fmt: skip
            tokens[t] = row[0].numpy()
        return Grid(tokens, positions, "composed", bar, self.voices)


def piano_roll(grid: Grid, title: str = ""):
    """A matplotlib figure of ``grid``: one colour per voice, time in bars."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    sounding = grid.sounding()
    onsets = grid.tokens < 128
    figure, axes = plt.subplots(figsize=(max(6, len(grid) / 24), 4))
    colours = ("tab:red", "tab:blue", "tab:green", "tab:purple")
    for v, voice in enumerate(grid.voices):
        t = 0
        column = sounding[:, v]
        while t < len(column):
            u = t + 1
            while u < len(column) and column[u] == column[t] and not onsets[u, v]:
                u += 1
            if column[t] >= 0:
                axes.add_patch(plt.Rectangle((t, column[t] - 0.4), u - t, 0.8, color=colours[v % 4],
                                             label=voice if t == np.argmax(column >= 0) else None))  # fmt: skip
            t = u
    notes = sounding[sounding >= 0]
    low, high = (int(notes.min()), int(notes.max())) if notes.size else (48, 72)
    axes.set_xlim(0, len(grid))
    axes.set_ylim(low - 2, high + 2)
    axes.set_xticks(np.arange(0, len(grid) + 1, grid.steps_per_bar))
    axes.set_xticklabels([str(i) for i in range(len(np.arange(0, len(grid) + 1, grid.steps_per_bar)))])
    axes.set_xlabel("bar")
    axes.set_ylabel("MIDI pitch")
    axes.grid(axis="x", alpha=0.3)
    axes.legend(loc="upper right", fontsize=8)
    axes.set_title(title)
    figure.tight_layout()
    return figure
