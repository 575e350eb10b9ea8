"""A trained tagger: ``Tagger.load(run_dir).tag(sentences)``, and ``rnnkit tag RUN_DIR [FILE]``."""

from __future__ import annotations

import argparse
import sys
from collections.abc import Iterable, Iterator, Sequence
from pathlib import Path

import torch
from torch import nn

from ...data.textfiles import read_text_file, text_lines
from ...data.tokenizers import UNK, Vocabulary
from ..base import read_run_file
from ..commands import Command, closed_stdout_is_fine

VOCABULARY_FILE = "vocabulary.json"  # the token and label vocabularies
BATCH = 256


class Tagger:
    """The model and vocabularies of a ``rnnkit train tag`` run."""

    def __init__(self, model: nn.Module, tokens: Vocabulary, labels: Vocabulary, *, lowercase: bool = False) -> None:
        config = model.config
        if config.input.vocab_size != len(tokens) or config.outputs != len(labels):
            raise ValueError(f"the vocabularies ({len(tokens)} tokens, {len(labels)} labels) are not the model's"
                             f" ({config.input.vocab_size} tokens, {config.outputs} labels)")  # fmt: skip
        self.model, self.tokens, self.labels, self.lowercase = model.eval(), tokens, labels, lowercase

    @classmethod
    def load(cls, run_dir: str | Path) -> Tagger:
        from ...training import load

        run_dir = Path(run_dir)
        path, saved = read_run_file(run_dir, VOCABULARY_FILE, "tag")
        try:
            tokens = Vocabulary(saved["tokens"], unknown=UNK)
            labels = Vocabulary(saved["labels"], unknown=saved["labels"][0])
            lowercase = bool(saved["lowercase"])
        except (KeyError, TypeError, IndexError, ValueError) as error:
            raise ValueError(f"{path} is not a tagger's vocabulary file ({error})") from None
        return cls(load(run_dir), tokens, labels, lowercase=lowercase)

    @torch.no_grad()
    def tag(self, sentences: Sequence[Sequence[str]]) -> list[list[str]]:
        """One label per token of each sentence (a list of tokens); an empty sentence gets none."""
        if isinstance(sentences, str) or any(isinstance(s, str) for s in sentences):
            raise TypeError("sentences must be lists of tokens, e.g. [['EU', 'rejects', 'German', 'call']]")
        out: list[list[str]] = []
        for start in range(0, len(sentences), BATCH):
            batch = [list(s) for s in sentences[start : start + BATCH]]
            lengths = torch.tensor([max(len(s), 1) for s in batch])
            ids = torch.zeros(len(batch), int(lengths.max()), dtype=torch.long)  # (B, T); 0 is <pad>
            for row, words in enumerate(batch):
                if words:
                    ids[row, : len(words)] = torch.tensor(self.tokens.encode(w.lower() if self.lowercase else w
                                                                             for w in words))  # fmt: skip
            predicted = self.model(ids, lengths=lengths)[0].argmax(-1)  # (B, T)
            out += [self.labels.decode(predicted[row, : len(words)].tolist()) for row, words in enumerate(batch)]
        return out


def sentences_of(lines: Iterable[str], *, conll: bool) -> Iterator[list[str]]:
    """Sentences to tag: one a line, tokens split at white space; or, with ``conll``, a token per
    line (the first column) and a blank line between sentences."""
    current: list[str] = []
    for line in lines:
        fields = line.split()
        if not conll:
            yield fields
        elif fields:
            current.append(fields[0])
        elif current:
            yield current
            current = []
    if conll and current:
        yield current


def _tag_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("run_dir", metavar="RUN_DIR", help="a run directory of 'rnnkit train tag'")
    parser.add_argument("file", metavar="FILE", nargs="?", default="-",
                        help="a sentence per line, tokens separated by spaces ('-' or omitted: stdin, each answered"
                             " as it arrives)")
    parser.add_argument("--conll", action="store_true",
                        help="FILE holds a token per line (first column), a blank line between sentences")


def _tag(args: argparse.Namespace) -> int:
    tagger = Tagger.load(args.run_dir)
    streaming = args.file == "-"
    lines = text_lines(sys.stdin) if streaming else read_text_file(args.file, what="input file").splitlines()
    sentences = sentences_of(lines, conll=args.conll)
    # stdin: each sentence answered as it arrives; a file: all of it, in the tagger's batches
    groups = ([words] for words in sentences) if streaming else [list(sentences)]
    with closed_stdout_is_fine():
        for group in groups:
            for words, labels in zip(group, tagger.tag(group)):
                sys.stdout.write("".join(f"{w}\t{label}\n" for w, label in zip(words, labels)) + "\n")
            if streaming:
                sys.stdout.flush()
        sys.stdout.flush()
    return 0


TAG = Command(
    help="tag new text with a trained tagger; prints token TAB label, a blank line after each sentence",
    example="rnnkit tag runs/tag-20261122-101500 sentences.txt",
    add_arguments=_tag_arguments,
    run=_tag,
)
