"""A trained ``speech`` run, ready to transcribe: ``Recognizer.load(run_dir).transcribe(files)``.

``speech.json`` in the run directory holds what the model alone does not: the feature settings,
the normalisation fitted on the training frames, the symbols (id ``i + 1`` is ``symbols[i]``; 0
the blank), the kind of target and the decoding settings with their prior.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import Tensor

from ...models import CTC
from ...models.ctc import GreedyStream, ctc_loss, greedy_decode, prefix_beam_search, prior_from_dict
from ..base import read_run_file, trained_model
from .audio import Audio, FeatureExtractor, FeatureSettings, FeatureStream, read_audio
from .data import Normalizer

SPEECH_FILE = "speech.json"
EVAL_BATCH = 64


@dataclass
class Decoding:
    beam_width: int = 1
    prior: Any = None  # NGramPrior, WordListPrior or None
    prior_weight: float = 0.5


@dataclass
class Transcript:
    text: str
    symbols: list[int]  # the decoded symbol ids (1..n)
    notes: list[str] = field(default_factory=list)  # what was done to the audio, or why there is nothing


class Recognizer:
    """A CTC model with its features, normalisation, symbols and decoding."""

    def __init__(self, model: CTC, settings: FeatureSettings, normalizer: Normalizer, symbols: Sequence[str],
                 target: str, decoding: Decoding | None = None) -> None:  # fmt: skip
        if model.config.outputs != len(symbols) + 1:
            raise ValueError(f"the model has {model.config.outputs} classes but there are {len(symbols)} symbols and the blank")
        self.model, self.settings, self.normalizer = model.eval(), settings, normalizer
        self.symbols, self.target = list(symbols), target
        self.decoding = decoding or Decoding()
        self.extractor = FeatureExtractor(settings)

    # --- saving and loading ---------------------------------------------------------------
    @staticmethod
    def saved(settings: FeatureSettings, normalizer: Normalizer, symbols: Sequence[str], target: str,
              decoding: Decoding) -> dict[str, Any]:  # fmt: skip
        return {"features": settings.to_dict(), "normalizer": normalizer.to_dict(), "symbols": list(symbols),
                "target": target, "beam_width": decoding.beam_width, "prior_weight": decoding.prior_weight,
                "prior": decoding.prior.to_dict() if decoding.prior is not None else None}  # fmt: skip

    @classmethod
    def load(cls, run_dir: str | Path) -> Recognizer:

        run_dir = Path(run_dir)
        path, saved = read_run_file(run_dir, SPEECH_FILE, "speech")
        model = trained_model(run_dir, CTC, "a CTC speech model")
        try:
            settings = FeatureSettings(**saved["features"])
            prior = prior_from_dict(saved["prior"]) if saved.get("prior") else None
            decoding = Decoding(int(saved["beam_width"]), prior, float(saved["prior_weight"]))
            return cls(model, settings, Normalizer.from_dict(saved["normalizer"]), saved["symbols"], saved["target"],
                       decoding)  # fmt: skip
        except (KeyError, TypeError) as error:
            raise ValueError(f"{path} is not a speech run's settings file: {error}") from None

    # --- offline ------------------------------------------------------------------------------
    def read(self, path: str | Path | bytes, name: str | None = None) -> Audio:
        return read_audio(path, self.settings.sample_rate, name=name)

    def features(self, audio: Audio) -> np.ndarray:
        """Normalised features ``(T, F)`` of a recording."""
        return self.normalizer(self.extractor(audio.samples))

    @torch.no_grad()
    def logits(self, frames: Sequence[np.ndarray]) -> tuple[Tensor, Tensor]:
        """Per-frame logits ``(N, T', C)`` and valid output frames ``(N,)`` of normalised features."""
        out, lengths = [], []
        width = max(len(f) for f in frames)
        width = -(-width // self.model.stride)
        for start in range(0, len(frames), EVAL_BATCH):
            chunk = frames[start : start + EVAL_BATCH]
            n = torch.tensor([len(f) for f in chunk])
            x = torch.zeros(len(chunk), int(n.max()), chunk[0].shape[1])
            for i, f in enumerate(chunk):
                x[i, : len(f)] = torch.from_numpy(f)
            logits, _ = self.model(x, lengths=n)
            padded = logits.new_zeros(len(chunk), width, logits.shape[-1])
            padded[:, : logits.shape[1]] = logits
            out.append(padded)
            lengths.append(self.model.output_lengths(n))
        return torch.cat(out), torch.cat(lengths)

    def label_log_probs(self, logits: Tensor, lengths: Tensor) -> Tensor:
        """``(N, n)``: log p(label | recording) of each single-symbol labelling (CTC's forward sum)."""
        n = len(self.symbols)
        rows = logits.shape[0]
        scores = torch.empty(rows, n)
        for s in range(n):
            targets = torch.full((rows, 1), s + 1, dtype=torch.long)
            scores[:, s] = -ctc_loss(logits, targets, lengths, torch.ones(rows, dtype=torch.long), reduction="none")
        return scores

    def decode(self, logits: Tensor, lengths: Tensor, *, greedy: bool = False) -> list[list[int]]:
        """Symbol ids per row: for labels the single most probable label; for texts greedy decoding
        (``beam_width=1`` without a prior, or ``greedy``) or prefix beam search with the prior."""
        if greedy:
            return greedy_decode(logits, lengths)
        if self.target == "label":
            return [[int(i) + 1] for i in self.label_log_probs(logits, lengths).argmax(-1).tolist()]
        d = self.decoding
        if d.beam_width == 1 and d.prior is None:
            return greedy_decode(logits, lengths)
        beams = prefix_beam_search(logits, lengths, beam_width=d.beam_width, prior=d.prior, prior_weight=d.prior_weight)
        return [list(row[0].tokens) if row else [] for row in beams]

    def text(self, ids: Iterable[int]) -> str:
        """Symbol ids as text: labels joined by spaces, characters as they are."""
        parts = [self.symbols[i - 1] for i in ids]
        return " ".join(parts) if self.target == "label" else "".join(parts)

    def transcribe_audio(self, audios: Sequence[Audio], *, greedy: bool = False) -> list[Transcript]:
        out: list[Transcript | None] = [None] * len(audios)
        speech = [i for i, a in enumerate(audios) if not a.silent]
        for i, a in enumerate(audios):
            if a.silent:
                out[i] = Transcript("", [], list(a.notes) + ["silent: no speech to transcribe"])
        if speech:
            logits, lengths = self.logits([self.features(audios[i]) for i in speech])
            for i, ids in zip(speech, self.decode(logits, lengths, greedy=greedy)):
                out[i] = Transcript(self.text(ids), ids, list(audios[i].notes))
        return out  # type: ignore[return-value]

    def transcribe(self, files: Sequence[str | Path], *, greedy: bool = False) -> list[str]:
        """One transcript per file (silent files give ``""``)."""
        return [t.text for t in self.transcribe_audio([self.read(f) for f in files], greedy=greedy)]

    # --- streaming ---------------------------------------------------------------------------
    def stream(self) -> StreamingRecognizer:
        return StreamingRecognizer(self)


class StreamingRecognizer:
    """Samples in, symbols out, as they arrive: features frame by frame, the model through ``step``
    (its state carried), greedy decoding of each output frame. The work per frame is constant.

    ``push(samples)`` returns the text the new samples add; ``finish()`` what the end adds.
    Pushed the samples of a recording in any chunks, the text is the offline greedy transcript.
    """

    def __init__(self, recognizer: Recognizer) -> None:
        if recognizer.normalizer.kind != "global":
            raise ValueError("streaming needs the global normalisation (task.normalize=global): a run normalised per"
                             " utterance needs the whole utterance first")  # fmt: skip
        if recognizer.model.encoder.bidirectional:
            raise ValueError("streaming needs a unidirectional model: this run's encoder is bidirectional"
                             " (train with --model.encoder.bidirectional=false)")  # fmt: skip
        self.recognizer = recognizer
        self.features = FeatureStream(recognizer.extractor)
        self.state = None
        self.greedy = GreedyStream(1, blank=recognizer.model.blank)
        self.frames = 0  # feature frames read

    @property
    def symbols(self) -> list[int]:
        return self.greedy.tokens[0]

    @property
    def text(self) -> str:
        return self.recognizer.text(self.symbols)

    @torch.no_grad()
    def _frames(self, frames: np.ndarray) -> str:
        before = len(self.symbols)
        r = self.recognizer
        for frame in r.normalizer(frames) if len(frames) else frames:
            logits, self.state = r.model.step(torch.from_numpy(frame)[None], self.state)
            self.frames += 1
            if logits is not None:
                self.greedy.push(logits)
        new = self.symbols[before:]
        if not new:
            return ""
        text = r.text(new)
        return (" " + text if before and r.target == "label" else text)

    def push(self, samples: np.ndarray) -> str:
        return self._frames(self.features.push(samples))

    def finish(self) -> str:
        return self._frames(self.features.finish())
