"""Chorales (or melodies) learned on a 16th-note grid, voice by voice; ``rnnkit train music``.

The data are music21's Bach chorales (or ``--data DIR`` of score files) as grids
(:mod:`rnnkit.data.music`), split **by piece** (``split.json`` in the run directory lists
which piece went where), the training pieces transposed to every key in which their voices stay
inside the training ranges. The model (:class:`rnnkit.models.StreamModel`) reads the previous
step's four tokens and the place in the bar and predicts the next step voice by voice. Training
cuts each piece into windows of ``window`` steps; evaluation reads every held-out piece whole,
from its start, as the n-gram baselines do.
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

import numpy as np
import torch
import torch.nn.functional as F

from ...data.music import HOLD, REST, START, Grid, bach_chorales, read_scores, score_files, split_by_piece
from ...data.music import transpositions, voice_ranges
from ...training import StepOutput, TensorBatches
from ..base import App, Prepared, Run
from ..commands import Command
from .composer import MUSIC_FILE, Composer

OUTPUTS = START  # a head predicts pitches, HOLD and REST: 0..129
SPLIT_FILE = "split.json"


@dataclass(frozen=True)
class MusicConfig:
    data: str | None = None  # a directory of score files; None: music21's Bach chorales
    voices: Literal["satb", "melody", "auto"] = "satb"
    val_fraction: float = 0.1
    test_fraction: float = 0.1
    transpose: int = 6  # augment with shifts up to this many semitones each way (0: none)
    window: int = 128  # training steps per window (8 bars of 4/4)
    batch_size: int = 32
    ngram_max: int = 5
    limit: int = 0  # 0: every piece; else the first N (quick experiments, tests)

    def __post_init__(self) -> None:
        for name in ("window", "batch_size", "ngram_max"):
            if getattr(self, name) < 1:
                raise ValueError(f"{name} must be a positive integer, got {getattr(self, name)}")
        if self.transpose < 0 or self.limit < 0:
            raise ValueError(f"transpose and limit must be >= 0, got {self.transpose}, {self.limit}")
        if self.voices not in ("satb", "melody", "auto"):
            raise ValueError(f"voices must be 'satb', 'melody' or 'auto', got {self.voices!r}")


def load_pieces(config: MusicConfig) -> list[Grid]:
    if config.data is None:
        grids = bach_chorales("satb" if config.voices == "auto" else config.voices)
    else:
        root = Path(config.data)
        grids = read_scores(score_files(root), config.voices, root=root if root.is_dir() else None)
    if config.voices == "auto":
        widths = {g.tokens.shape[1] for g in grids}
        if widths != {4}:  # mixed: the soprano line of every piece
            grids = [Grid(g.tokens[:, :1], g.positions, g.name, g.steps_per_bar, ("soprano",)) for g in grids]
    names = [g.name for g in grids]
    if len(set(names)) != len(names):
        raise ValueError("two pieces share a name: file names must be distinct")
    return grids[: config.limit] if config.limit else grids


def inputs_and_targets(grid: Grid) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """What the model reads (START, then the steps but the last), what it predicts, and the positions."""
    x = np.concatenate([np.full((1, grid.tokens.shape[1]), START), grid.tokens[:-1]])
    return x, grid.tokens, grid.positions


def windows(grids: list[Grid], length: int) -> tuple[torch.Tensor, ...]:
    """Every grid cut into windows of ``length`` steps, the last one padded; ``mask`` marks real steps."""
    xs, ys, ps, ms = [], [], [], []
    for g in grids:
        x, y, p = inputs_and_targets(g)
        for s in range(0, len(g), length):
            n = min(length, len(g) - s)
            pad = length - n
            xs.append(np.pad(x[s : s + n], ((0, pad), (0, 0)), constant_values=REST))
            ys.append(np.pad(y[s : s + n], ((0, pad), (0, 0)), constant_values=REST))
            ps.append(np.pad(p[s : s + n], (0, pad)))
            ms.append(np.arange(length) < n)
    return (torch.tensor(np.stack(xs)), torch.tensor(np.stack(ys)), torch.tensor(np.stack(ps)),
            torch.tensor(np.stack(ms)))  # fmt: skip


class StreamsObjective:
    """Cross entropy summed over the voices of a step, averaged over real steps (nats per step)."""

    def __call__(self, model, batch, state=None) -> StepOutput:
        x, y, positions, mask = batch
        logits, _ = model(x, y, positions=positions)  # (B, T, S, V)
        nll = F.cross_entropy(logits.flatten(0, 2), y.flatten(), reduction="none").view(y.shape).sum(-1)  # (B, T)
        steps = int(mask.sum())
        loss = (nll * mask).sum() / max(steps, 1)
        return StepOutput(loss, steps)


def _unigram_base(train: list[Grid]) -> Any:
    """A row's probability as the product of per-voice add-one unigrams over the 130 outputs."""
    V = train[0].tokens.shape[1]
    counts = np.ones((V, OUTPUTS))
    for g in train:
        for v in range(V):
            counts[v] += np.bincount(g.tokens[:, v], minlength=OUTPUTS)
    probs = counts / counts.sum(1, keepdims=True)
    return lambda row: float(np.prod([probs[v, t] for v, t in enumerate(row)]))


def model_nll(model, grids: list[Grid]) -> tuple[float, int]:
    """The model's summed NLL (nats) over every step of ``grids``, each read whole from its start."""
    total, steps = 0.0, 0
    model.eval()
    with torch.no_grad():
        for g in grids:
            x, y, p = (torch.tensor(a).unsqueeze(0) for a in inputs_and_targets(g))
            logits, _ = model(x, y, positions=p)
            total += float(F.cross_entropy(logits.flatten(0, 2), y.flatten(), reduction="sum"))
            steps += len(g)
    return total, steps


class MusicApp(App):
    name = "music"
    help = "four-voice chorales (or melodies) on a 16th-note grid, an LSTM predicting voice by voice"
    example = "rnnkit train music --train.max_minutes=20"
    config_class = MusicConfig
    model_name = "streams"
    default_model = {"encoder": {"cell": "lstm", "hidden_size": 256, "num_layers": 2, "dropout": 0.2},
                     "embedding_dim": 64, "head_hidden": 128, "head_dropout": 0.2}  # fmt: skip
    default_train = {"lr": 2e-3, "max_epochs": 30, "clip_norm": 1.0, "schedule": "cosine", "warmup_steps": 50,
                     "log_every": 20, "patience": 4}  # fmt: skip
    arguments = {"--data": "task.data", "--voices": "task.voices"}
    files = ()  # task.data is a directory of scores, not one file

    def prepare(self, config: MusicConfig, model_settings: dict[str, Any], seed: int) -> Prepared:
        grids = load_pieces(config)
        split = split_by_piece([g.name for g in grids], config.val_fraction, config.test_fraction, seed)
        by_name = {g.name: g for g in grids}
        train, val, test = ([by_name[n] for n in split[side]] for side in ("train", "val", "test"))
        if not val:
            raise ValueError(f"{len(grids)} piece(s) leave none for validation: raise task.val_fraction")
        ranges = voice_ranges(train)
        augmented = [g.transposed(k) for g in train for k in (transpositions(g, ranges, config.transpose)
                                                             if config.transpose else [0])]  # fmt: skip
        bar = max(g.steps_per_bar for g in grids)
        settings = {**model_settings, "streams": grids[0].tokens.shape[1], "vocab_size": START + 1,
                    "outputs": OUTPUTS, "positions": bar}  # fmt: skip
        model = self.build_model(settings)
        train_batches = TensorBatches(*windows(augmented, config.window), batch_size=config.batch_size, seed=seed)
        val_batches = TensorBatches(*windows(val, config.window), batch_size=config.batch_size, shuffle=False)
        common = int(np.bincount([g.steps_per_bar for g in grids]).argmax())  # what a composed bar is
        info = {"voices": list(grids[0].voices), "steps_per_bar": common, "positions": int(bar), "ranges": ranges,
                "pieces": len(grids), "train_pieces": len(train), "augmented_pieces": len(augmented),
                "source": config.data or "music21 Bach chorales"}  # fmt: skip
        artifacts = {SPLIT_FILE: json.dumps({**split, "seed": seed}, indent=1),
                     MUSIC_FILE: json.dumps(info, indent=1)}  # fmt: skip
        context = {"train": train, "augmented": augmented, "val": val, "test": test, "info": info}
        return Prepared(model, StreamsObjective(), train_batches, val_batches, "windows", artifacts, context)

    def evaluate(self, run: Run) -> dict[str, Any]:
        from ...metrics.music import parallel_motion, piece_statistics
        from ...models.ngram import NGramModel, RepeatModel

        context, c = run.context, run.config
        held = context["test"] or context["val"]
        side = "test" if context["test"] else "val"
        rows = lambda g: [tuple(int(t) for t in r) for r in g.tokens]  # noqa: E731
        notes = sum(int((g.tokens < 128).sum()) for g in held)
        total, steps = model_nll(run.model(), held)
        results: dict[str, Any] = {"split": side, "pieces": len(held), "steps": steps, "notes": notes,
                                   "model": {"nll_per_step": total / steps, "nll_per_note": total / notes}}  # fmt: skip
        base = _unigram_base(context["train"])
        ngram = NGramModel(c.ngram_max, base).fit(rows(g) for g in context["augmented"])
        for n in range(1, c.ngram_max + 1):
            nll = -sum(ngram.log_likelihood(rows(g), order=n) for g in held)
            results[f"{n}-gram"] = {"nll_per_step": nll / steps, "nll_per_note": nll / notes}
        repeat = RepeatModel(base).fit(rows(g) for g in context["augmented"])
        nll = -sum(repeat.log_likelihood(rows(g)) for g in held)
        results["repeat"] = {"nll_per_step": nll / steps, "nll_per_note": nll / notes}
        best = min(range(1, c.ngram_max + 1), key=lambda n: results[f"{n}-gram"]["nll_per_step"])
        results["best_ngram"] = f"{best}-gram"
        results["below_best_ngram"] = 1 - results["model"]["nll_per_step"] / results[f"{best}-gram"]["nll_per_step"]
        train = context["train"]
        corpus = [piece_statistics(g.sounding(), g.tokens < 128, context["info"]["ranges"]) for g in train]
        results["corpus"] = {k: float(np.nanmean([s[k] for s in corpus])) for k in ("in_key", "in_range")}
        transitions = sum(len(g) - 1 for g in train)  # rates pooled over all transitions, as docs/music.md compares them
        for kind in ("fifths", "octaves"):
            count = sum(parallel_motion(g.sounding())[kind] for g in train)
            results["corpus"][f"{kind}_per_100"] = 100 * count / max(transitions, 1)
        return results

    def report(self, run: Run, results: dict[str, Any]) -> str:
        lines = [f"held-out {results['split']}: {results['pieces']} pieces, {results['steps']} steps,"
                 f" {results['notes']} notes; NLL in nats per step (per note)"]  # fmt: skip
        for name in ["model", "repeat"] + [f"{n}-gram" for n in range(1, run.config.ngram_max + 1)]:
            r = results[name]
            lines.append(f"  {name:8s} {r['nll_per_step']:.4f} ({r['nll_per_note']:.4f})")
        lines.append(f"the model is {100 * results['below_best_ngram']:.1f}% below the best n-gram"
                     f" ({results['best_ngram']})")  # fmt: skip
        corpus = results["corpus"]
        lines.append(f"corpus: in key {corpus['in_key']:.3f}, parallel fifths {corpus['fifths_per_100']:.3f}"
                     f" and octaves {corpus['octaves_per_100']:.3f} per 100 steps")  # fmt: skip
        return "\n".join(lines)

    def load(self, run_dir) -> Composer:
        return Composer.load(run_dir)

    def commands(self) -> dict[str, Command]:
        from .commands import COMPOSE

        return {"compose": COMPOSE}
