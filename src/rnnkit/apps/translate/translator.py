"""A trained translator: ``Translator.load(run_dir).translate(sentences)``, and ``rnnkit translate RUN_DIR``.

Token ids: ``0`` pad, ``1`` start, ``2`` end, then the shared byte-level BPE model's ids moved up
by three (``tokenizer.json`` in the run directory). Byte-level BPE encodes any text -- a
character training never saw becomes its UTF-8 bytes -- so every input translates; input is put
in Unicode normal form C first, as the training pairs were.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import torch
from torch import Tensor, nn

from ..._io import read_json, run_file
from ...data.pairs import normalize
from ...data.textfiles import text_lines
from ...data.tokenizers import BPETokenizer
from ..base import read_run_file
from ..commands import Command, check_output_path, closed_stdout_is_fine

PAD, START, END = 0, 1, 2
SPECIALS = 3  # ids below this are PAD, START, END; the BPE model's ids follow
TOKENIZER_FILE = "tokenizer.json"
TRANSLATOR_FILE = "translator.json"  # decoding defaults
BATCH = 64


class Codec:
    """Text to model ids and back, over a BPE tokenizer: the BPE ids moved up by :data:`SPECIALS`."""

    def __init__(self, bpe: BPETokenizer) -> None:
        self.bpe = bpe

    @property
    def vocab_size(self) -> int:
        return self.bpe.vocab_size + SPECIALS

    def encode(self, text: str) -> list[int]:
        return [i + SPECIALS for i in self.bpe.encode(normalize(text))]

    def decode(self, ids: Sequence[int]) -> str:
        """The text of ``ids`` up to the first end token; specials dropped."""
        kept = []
        for i in ids:
            if i == END:
                break
            if i >= SPECIALS:
                kept.append(i - SPECIALS)
        return self.bpe.decode(kept)

    def pieces(self, ids: Sequence[int]) -> list[str]:
        """Each id's piece of text, for labels (byte-level pieces decoded one by one)."""
        names = {PAD: "<pad>", START: "<s>", END: "</s>"}
        return [names[i] if i < SPECIALS else self.bpe.decode([i - SPECIALS]) for i in ids]


def pad_batch(rows: Sequence[Sequence[int]]) -> tuple[Tensor, Tensor]:
    """Token id rows as ``(B, T)`` padded with PAD, and their ``(B,)`` lengths (at least 1)."""
    lengths = torch.tensor([max(len(r), 1) for r in rows])
    out = torch.full((len(rows), int(lengths.max())), PAD, dtype=torch.long)
    for i, r in enumerate(rows):
        if r:
            out[i, : len(r)] = torch.tensor(r)
    return out, lengths


@dataclass(frozen=True)
class Hypothesis:
    text: str
    score: float  # the beam's ranking score: log-probability over the length penalty
    log_prob: float  # log-probability of the tokens under the model


@dataclass(frozen=True)
class DecodeSettings:
    beam_size: int = 5
    length_penalty: float = 0.6
    penalty: str = "wu"
    max_length: int = 64  # output tokens at most

    def check(self) -> DecodeSettings:
        for name in ("beam_size", "max_length"):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, int) or value < 1:
                raise ValueError(f"{name} must be a positive integer, got {value!r}")
        if isinstance(self.length_penalty, bool) or not isinstance(self.length_penalty, (int, float)) or (
            self.length_penalty < 0
        ):
            raise ValueError(f"length_penalty must be a number >= 0, got {self.length_penalty!r}")
        return self


class Translator:
    """A ``rnnkit train translate`` run's model and tokenizer."""

    def __init__(self, model: nn.Module, codec: Codec, defaults: DecodeSettings = DecodeSettings()) -> None:
        if model.config.target_vocab_size != codec.vocab_size:
            raise ValueError(f"the tokenizer ({codec.vocab_size} ids) is not the model's"
                             f" ({model.config.target_vocab_size} target ids)")  # fmt: skip
        self.model, self.codec, self.defaults = model.eval(), codec, defaults.check()

    @classmethod
    def load(cls, run_dir: str | Path) -> Translator:
        from ...training import load

        run_dir = Path(run_dir)
        path, saved = read_run_file(run_dir, TOKENIZER_FILE, "translate")
        if not isinstance(saved, dict) or saved.get("kind") != "bpe" or "tokenizer" not in saved:
            raise ValueError(f"{path} is not a BPE tokenizer file")
        try:
            codec = Codec(BPETokenizer.from_json(saved))
        except Exception as error:  # noqa: BLE001 - the tokenizers library's own errors, as one line
            raise ValueError(f"{path} does not load as a BPE tokenizer ({str(error).splitlines()[0]})") from None
        defaults = DecodeSettings()
        settings_path = run_file(run_dir, TRANSLATOR_FILE)
        if settings_path.is_file():
            try:
                defaults = DecodeSettings(**read_json(settings_path)).check()
            except (TypeError, ValueError) as error:
                raise ValueError(f"{settings_path} holds no decoding settings ({error})") from None
        return cls(load(run_dir), codec, defaults)

    def _settings(self, beam_size, length_penalty, max_length) -> DecodeSettings:
        d = self.defaults
        return DecodeSettings(
            d.beam_size if beam_size is None else beam_size, d.length_penalty if length_penalty is None else length_penalty,
            d.penalty, d.max_length if max_length is None else max_length,
        ).check()  # fmt: skip

    @torch.no_grad()
    def n_best(
        self,
        sentences: Sequence[str],
        *,
        n: int = 1,
        beam_size: int | None = None,
        length_penalty: float | None = None,
        max_length: int | None = None,
    ) -> list[list[Hypothesis]]:
        """The ``n`` best translations of each sentence, best first (``n <= beam_size``); an
        empty sentence gets one empty translation."""
        if isinstance(sentences, str):
            raise TypeError("sentences must be a list of strings, e.g. ['I am cold.'], got a str")
        s = self._settings(beam_size, length_penalty, max_length)
        if isinstance(n, bool) or not isinstance(n, int) or not 1 <= n <= s.beam_size:
            raise ValueError(f"n must be an integer from 1 to the beam size {s.beam_size}, got {n!r}")
        out: list[list[Hypothesis]] = [[] for _ in sentences]
        encoded = [(i, self.codec.encode(text)) for i, text in enumerate(sentences)]
        for i, ids in encoded:
            if not ids:
                out[i] = [Hypothesis("", 0.0, 0.0)]
        todo = [(i, ids) for i, ids in encoded if ids]
        for start in range(0, len(todo), BATCH):
            chunk = todo[start : start + BATCH]
            source, lengths = pad_batch([ids for _, ids in chunk])
            if s.beam_size == 1:
                d = self.model.generate(source, lengths, max_length=s.max_length)
                tokens, log_prob, score = d.tokens[:, None], d.log_prob[:, None], d.log_prob[:, None]
            else:
                beams = self.model.beam_search(source, lengths, beam_size=s.beam_size, max_length=s.max_length,
                                               length_penalty=s.length_penalty, penalty=s.penalty)  # fmt: skip
                tokens, log_prob, score = beams.tokens, beams.log_prob, beams.score
            for row, (i, _) in enumerate(chunk):
                out[i] = [Hypothesis(self.codec.decode(tokens[row, k].tolist()), float(score[row, k]),
                                     float(log_prob[row, k])) for k in range(n)]  # fmt: skip
        return out

    def translate(self, sentences: Sequence[str], **settings) -> list[str]:
        """The best translation of each sentence (:meth:`n_best` with ``n=1``)."""
        return [h[0].text for h in self.n_best(sentences, n=1, **settings)]

    @torch.no_grad()
    def attention(self, sentence: str, **settings) -> tuple[list[str], list[str], Tensor]:
        """Source pieces, output pieces (the translation's tokens, its end token included) and the
        attention weights ``(output, source)`` of the model reading its own translation."""
        if getattr(self.model, "attention", None) is None:
            raise ValueError("the model has no attention (model.attention='none'): there are no weights to plot")
        source_ids = self.codec.encode(sentence)
        if not source_ids:
            raise ValueError("the sentence to plot is empty")
        (best,) = self.n_best([sentence], n=1, **settings)
        target_ids = [i + SPECIALS for i in self.codec.bpe.encode(best[0].text)] + [END]
        source, lengths = pad_batch([source_ids])
        _, weights = self.model(source, torch.tensor([target_ids]), lengths, return_attention=True)  # (1, T, S)
        return self.codec.pieces(source_ids), self.codec.pieces(target_ids), weights[0]


def plot_attention(source: list[str], output: list[str], weights: Tensor, title: str = ""):
    """A heat map of attention weights: output pieces down, source pieces across."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    figure, axes = plt.subplots(figsize=(1.0 + 0.45 * len(source), 1.0 + 0.4 * len(output)))
    axes.imshow(weights.numpy(), cmap="viridis", vmin=0.0, vmax=1.0, aspect="auto")
    axes.set_xticks(range(len(source)), [p.replace(" ", "\u2423") for p in source], rotation=60, ha="right")
    axes.set_yticks(range(len(output)), [p.replace(" ", "\u2423") for p in output])
    axes.set_xlabel("source (BPE pieces; \u2423 a space)")
    axes.set_ylabel("translation")
    if title:
        axes.set_title(title, fontsize=9)
    figure.tight_layout()
    return figure


# -----------------------------------------------------------------------------
# the command: `rnnkit translate RUN_DIR`


def _arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("run_dir", metavar="RUN_DIR", help="a run directory of 'rnnkit train translate'")
    parser.add_argument("--text", action="append", default=None,
                        help="a sentence to translate (repeatable); without it, one sentence per line on stdin")
    parser.add_argument("--beam", type=int, default=None, metavar="K",
                        help="beam size; 1 is greedy (default: the run's, 5)")
    parser.add_argument("--n-best", type=int, default=1, metavar="N",
                        help="print the N best translations with their scores: INDEX TAB SCORE TAB TEXT (default: 1)")
    parser.add_argument("--max-length", type=int, default=None, metavar="TOKENS",
                        help="output tokens at most (default: the run's)")
    parser.add_argument("--length-penalty", type=float, default=None, metavar="ALPHA",
                        help="Wu et al.'s length penalty alpha; 0 ranks by log-probability (default: the run's, 0.6)")
    parser.add_argument("--plot", metavar="PNG", default=None,
                        help="write the attention weights of the (first) --text sentence as a heat map")


def _translate(args: argparse.Namespace) -> int:
    check_output_path(args.plot, "--plot")
    if args.plot is not None and not args.text:
        raise ValueError("--plot needs --text SENTENCE: the sentence whose attention to plot")
    translator = Translator.load(args.run_dir)
    settings = dict(beam_size=args.beam, length_penalty=args.length_penalty, max_length=args.max_length)
    translator._settings(**settings)  # bad values fail before any input is read
    lines = args.text if args.text else (line.rstrip("\r\n") for line in text_lines(sys.stdin))
    with closed_stdout_is_fine():
        for index, line in enumerate(lines):
            (hypotheses,) = translator.n_best([line], n=args.n_best, **settings)
            if args.n_best == 1:
                sys.stdout.write(hypotheses[0].text + "\n")
            else:
                sys.stdout.write("".join(f"{index}\t{h.score:.4f}\t{h.text}\n" for h in hypotheses))
            sys.stdout.flush()
    if args.plot is not None:
        from ..._io import save_figure

        source, output, weights = translator.attention(args.text[0], **settings)
        save_figure(plot_attention(source, output, weights, args.text[0]), args.plot)
        print(f"attention plot: {args.plot}", file=sys.stderr)
    return 0


TRANSLATE = Command(
    help="translate sentences with a trained translator; one translation per line",
    example="echo 'I am cold.' | rnnkit translate runs/translate-20261203-120000 --beam 5",
    add_arguments=_arguments,
    run=_translate,
)
