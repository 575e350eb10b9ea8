"""Image captioning (one-to-many with attention): ``rnnkit train caption --data DIR`` and
``rnnkit caption RUN_DIR IMAGE... [--beam K] [--plot FILE.png]``.

A small convolutional encoder trained from scratch and an LSTM decoder with soft attention over
its grid (:class:`~rnnkit.models.ImageCaptioner`, Show, Attend and Tell). The test split holds
bases never seen in training (:mod:`rnnkit.apps.caption.data`); it is scored by BLEU-4
(sacrebleu), exact match and position-wise token accuracy, against two nearest-neighbour
baselines (Devlin et al. 2015): the caption of the training image closest in pixel space, and in
the trained encoder's feature space (its mean annotation vector). Skin-tone and gender words are
scored per attribute. The vocabulary and image size are saved as ``captioner.json``.
"""

from __future__ import annotations

import argparse
import json
import sys
import warnings
from pathlib import Path
from typing import Any

import torch

from ...data.images import ImageReader
from ...data.splits import split_examples
from ...metrics.captions import corpus_bleu, exact_match_rate, token_accuracy
from ...metrics.neighbours import nearest
from ..base import App, Prepared, Run
from ..commands import Command, check_output_path, closed_stdout_is_fine
from ..seq2seq.sequences import Seq2SeqObjective
from .captioner import CAPTIONER_FILE, Captioner, generate_words
from .data import (
    END,
    PAD,
    START,
    CaptionBatches,
    CaptionConfig,
    base_name,
    build_vocabulary,
    detokenize,
    encode_captions,
    read_captions,
    words,
)

SKIN_TONES = ("light skin tone", "medium-light skin tone", "medium skin tone", "medium-dark skin tone",
              "dark skin tone")  # fmt: skip
GENDER_WORDS = frozenset({"man", "woman", "men", "women", "person", "people", "boy", "girl"})


def skin_tones(caption: str) -> list[str]:
    """The skin tones a caption names, in order ("medium skin tone" is not read inside "medium-dark")."""
    found = []
    for part in caption.replace(":", ",").split(","):
        part = part.strip()
        if part in SKIN_TONES:
            found.append(part)
    return found


def genders(tokens: list[str]) -> list[str]:
    return [t for t in tokens if t in GENDER_WORDS]


def attribute_accuracy(hypotheses: list[str], references: list[str]) -> dict[str, Any]:
    """Over the test captions that name a skin tone (a gender word): the fraction whose
    hypothesis names the same ones, in the same order."""
    out = {}
    for name, read in (("skin_tone", skin_tones), ("gender", lambda c: genders(words(c)))):
        rows = [(read(h), read(r)) for h, r in zip(hypotheses, references) if read(r)]
        out[name] = {"accuracy": sum(h == r for h, r in rows) / len(rows) if rows else None, "captions": len(rows)}
    return out


def caption_scores(hypotheses: list[str], references: list[str]) -> dict[str, Any]:
    return {"bleu4": corpus_bleu(hypotheses, references), "exact_match": exact_match_rate(hypotheses, references),
            "token_accuracy": token_accuracy([words(h) for h in hypotheses], [words(r) for r in references]),
            "attributes": attribute_accuracy(hypotheses, references)}  # fmt: skip


class CaptionApp(App):
    name = "caption"
    help = "image captioning: a small CNN from scratch and an LSTM decoder with soft attention (Show, Attend and Tell)"
    example = "rnnkit train caption --data emoji/"
    config_class = CaptionConfig
    model_name = "image_to_sequence"
    default_model = {"encoder": {"widths": [32, 64, 128], "dropout": 0.1},
                     "decoder": {"cell": "lstm", "hidden_size": 256}, "embedding_dim": 128,
                     "head_dropout": 0.3}  # fmt: skip
    # kept by next-word accuracy: validation loss rises early on bases never seen (confidently wrong
    # words) while the captions still improve, and a run kept by it stopped at its first evaluation
    default_train = {"lr": 2e-3, "schedule": "cosine", "max_epochs": 25, "clip_norm": 5.0, "log_every": 50,
                     "monitor": "val_accuracy", "monitor_mode": "max"}  # fmt: skip
    arguments = {"--data": "task.data"}
    files = ()  # a directory: captions.tsv and the images it names are checked as they are read

    def prepare(self, config: CaptionConfig, model_settings: dict[str, Any], seed: int) -> Prepared:
        data = read_captions(config.data)
        reader = ImageReader(config.image_size)
        images = reader.read_all(data.files)  # (N, 3, S, S) uint8
        reader.say_conversions()
        split = split_examples(len(data.files), [base_name(c[0]) for c in data.captions],
                               test_fraction=config.test_fraction, val_fraction=config.val_fraction,
                               seed=config.split_seed)  # fmt: skip
        vocab = build_vocabulary([data.captions[i] for i in split.train], config.min_count)

        def pairs(rows: list[int]) -> tuple[torch.Tensor, torch.Tensor]:
            index = [i for i in rows for _ in data.captions[i]]
            texts = [c for i in rows for c in data.captions[i]]
            return torch.tensor(index, dtype=torch.long), encode_captions(vocab, texts, config.max_words)

        train_index, train_targets = pairs(split.train)
        val_index, val_targets = pairs(split.val)
        if len(train_index) < config.batch_size:
            raise ValueError(f"data too short for one batch: {len(train_index)} training captions,"
                             f" fewer than batch_size={config.batch_size}")  # fmt: skip
        train = CaptionBatches(images, train_index, train_targets, shift=config.shift,
                               batch_size=config.batch_size, seed=seed)  # fmt: skip
        val = CaptionBatches(images, val_index, val_targets, batch_size=256, shuffle=False)
        model = self.build_model({**model_settings, "encoder": {**model_settings.get("encoder", {}), "channels": 3},
                                  "vocab_size": len(vocab), "pad_token": vocab.index[PAD],
                                  "start_token": vocab.index[START], "end_token": vocab.index[END],
                                  "max_length": config.max_words + 1})  # fmt: skip
        saved = {"vocabulary": vocab.to_json(), "image_size": config.image_size}
        context = {"data": data, "images": images, "split": split, "vocab": vocab}
        return Prepared(model, Seq2SeqObjective(pad_token=vocab.index[PAD]), train, val, "captions",
                        {CAPTIONER_FILE: json.dumps(saved, ensure_ascii=False)}, context)  # fmt: skip

    def evaluate(self, run: Run) -> dict[str, Any]:
        data, images, split, vocab = (run.context[k] for k in ("data", "images", "split", "vocab"))
        model = run.model().eval()
        test, train = split.test, split.train
        references = [data.captions[i][0] for i in test]  # the first caption: what exact match holds to
        all_references = [data.captions[i] for i in test]
        normalised = [detokenize(words(r)) for r in references]
        hypotheses = generate_words(model, vocab, images[test], beam_size=run.config.beam_size)
        generated = [detokenize(h) for h in hypotheses]
        # nearest neighbours: in pixel space, and in the trained encoder's (mean annotation vector)
        pixels = images.flatten(1).float() / 255.0
        by_pixels = nearest(pixels[train], pixels[test], 1)[:, 0]
        with torch.no_grad():
            features = torch.cat([model.encode(images[i : i + 256].float() / 255.0).mean((1, 2))
                                  for i in range(0, len(images), 256)])  # fmt: skip
        by_features = nearest(features[train], features[test], 1)[:, 0]
        neighbour = {name: [detokenize(words(data.captions[train[j]][0])) for j in index.tolist()]
                     for name, index in (("pixels", by_pixels), ("features", by_features))}  # fmt: skip
        unknown = sum(w not in vocab for r in normalised for w in words(r))
        run.cache["examples"] = (test, generated)
        results = {
            "model": caption_scores(generated, normalised),
            "nearest_pixels": caption_scores(neighbour["pixels"], normalised),
            "nearest_features": caption_scores(neighbour["features"], normalised),
            "bleu4_all_references": corpus_bleu(generated, [[detokenize(words(c)) for c in cs] for cs in all_references]),
            "beam_size": run.config.beam_size,
            "images": {"train": len(split.train), "val": len(split.val), "test": len(test)},
            "bases": dict(zip(("train", "val", "test"), split.groups)),
            "vocab_size": len(vocab),
            "unknown_test_words": unknown / max(1, sum(len(words(r)) for r in normalised)),
            "examples": [{"file": data.files[i].name, "reference": r, "caption": g, "nearest_pixels": p,
                          "nearest_features": f}
                         for i, r, g, p, f in list(zip(test, normalised, generated, neighbour["pixels"],
                                                       neighbour["features"]))[:40]],
        }  # fmt: skip
        return results

    def figures(self, run: Run, results: dict[str, Any]) -> dict[str, Any]:
        from .plots import attention_figure

        if "examples" not in run.cache:
            return {}
        test, generated = run.cache["examples"]
        data, images, vocab = run.context["data"], run.context["images"], run.context["vocab"]
        model = run.model().eval()
        figures = {}
        for k, i in enumerate(test[:3]):
            tokens = words(generated[k])
            figures[f"attention_{k}.png"] = attention_figure(model, vocab, images[i], tokens,
                                                             title=f"{data.files[i].name}: {generated[k]}")  # fmt: skip
        return figures

    def report(self, run: Run, results: dict[str, Any]) -> str:
        n, b = results["images"], results["bases"]
        lines = [f"captioning: {n['train']:,} training images ({b['train']:,} bases), {n['val']:,} validation"
                 f" ({b['val']:,}), {n['test']:,} test ({b['test']:,} bases never seen in training);"
                 f" vocabulary {results['vocab_size']:,}, {results['unknown_test_words']:.1%} of test words unseen",
                 f"{'test':<28}{'BLEU-4':>8}{'exact':>8}{'tokens':>8}{'skin tone':>11}{'gender':>8}"]  # fmt: skip
        for key, name in (("model", f"model (beam {results['beam_size']})"), ("nearest_pixels", "nearest image (pixels)"),
                          ("nearest_features", "nearest image (encoder)")):  # fmt: skip
            s = results[key]
            attrs = [s["attributes"][a]["accuracy"] for a in ("skin_tone", "gender")]
            shown = [f"{a:.3f}" if a is not None else "-" for a in attrs]
            lines.append(f"{name:<28}{s['bleu4']:>8.2f}{s['exact_match']:>8.3f}{s['token_accuracy']:>8.3f}"
                         f"{shown[0]:>11}{shown[1]:>8}")  # fmt: skip
        attrs = results["model"]["attributes"]
        lines.append(f"(skin tone over {attrs['skin_tone']['captions']} test captions that name one,"
                     f" gender over {attrs['gender']['captions']})")  # fmt: skip
        return "\n".join(lines)

    def load(self, run_dir: str | Path) -> Captioner:
        return Captioner.load(run_dir)

    def commands(self) -> dict[str, Command]:
        return {"caption": CAPTION}


# -----------------------------------------------------------------------------
# `rnnkit caption`


def _caption_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("run_dir", metavar="RUN_DIR", help="a run directory of 'rnnkit train caption'")
    parser.add_argument("images", metavar="IMAGE", nargs="+", help="images to caption (any format Pillow reads)")
    parser.add_argument("--beam", type=int, default=3, metavar="K", help="beam size (1: greedy; default 3)")
    parser.add_argument("--plot", metavar="FILE.png", default=None,
                        help="save each image with the attention map of every word (several images:"
                             " FILE-1.png, FILE-2.png, ...)")  # fmt: skip


def _caption(args: argparse.Namespace) -> int:
    from ..._io import save_figure
    from .plots import attention_figure

    check_output_path(args.plot, "--plot")
    if args.beam < 1:
        raise ValueError(f"--beam must be a positive integer, got {args.beam}")
    captioner = Captioner.load(args.run_dir)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        images = captioner.read(args.images)
    for w in caught:
        sys.stderr.write(f"warning: {w.message}\n")
    captions = captioner.caption_images(images, beam_size=args.beam)
    with closed_stdout_is_fine():
        for path, caption in zip(args.images, captions):
            sys.stdout.write(f"{path}\t{detokenize(caption)}\n")
        sys.stdout.flush()
    if args.plot:
        plot = Path(args.plot)
        for k, (path, caption) in enumerate(zip(args.images, captions)):
            target = plot if len(args.images) == 1 else plot.with_name(f"{plot.stem}-{k + 1}{plot.suffix}")
            figure = attention_figure(captioner.model, captioner.vocab, images[k], caption,
                                      title=f"{Path(path).name}: {detokenize(caption)}")  # fmt: skip
            save_figure(figure, target)
    return 0


CAPTION = Command(
    help="caption images with a trained captioner; prints file and caption per image (TSV)",
    example="rnnkit caption runs/caption-20261203-120000 cat.png dog.png --beam 5 --plot attention.png",
    add_arguments=_caption_arguments,
    run=_caption,
)
