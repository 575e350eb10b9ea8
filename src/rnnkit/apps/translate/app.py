"""``rnnkit train translate --data PAIRS.tsv``: machine translation with an attentional encoder-decoder.

The data, in order: ``source TAB target`` lines read (:mod:`rnnkit.data.pairs`), put in Unicode
NFC, duplicate pairs removed, pairs longer than ``max_words`` words on a side dropped (counted in
one warning), a seeded split **by source sentence** (all translations of a sentence on one side:
``test_pairs`` rows for testing, ``val_pairs`` for validation), then one byte-level BPE model
trained on both sides of the training pairs (``tokenizer.json``). Batches are bucketed by length.

The model is :class:`~rnnkit.models.EncoderDecoder`: a bidirectional encoder, Luong attention
with input feeding, the decoder's embedding tied to its output layer, trained with label
smoothing. The test set is decoded greedily and by beam search with Wu et al.'s length penalty;
sacrebleu's BLEU and chrF (with their signatures) and exact match are reported, beside the same
figures of a translation memory (the nearest training sentence's translation,
:mod:`~rnnkit.apps.translate.memory`) on the same split. ``sample.md`` holds 20 test sentences
side by side.
"""

from __future__ import annotations

import json
import random
from dataclasses import asdict, dataclass, field
from typing import Any

import torch

from ..._io import atomic_write_text
from ...data.pairs import deduplicate, filter_length, read_pairs, warn_dropped
from ...data.splits import split_by_group_size
from ...data.tokenizers import BPETokenizer
from ...models import TeacherForcingSchedule
from ...training import BucketBatches, TensorBatches
from ..base import App, Prepared, Run
from ..commands import Command
from ..seq2seq import Seq2SeqObjective
from .memory import TranslationMemory
from .translator import END, PAD, START, TOKENIZER_FILE, TRANSLATE, TRANSLATOR_FILE, Codec, DecodeSettings, Translator

SAMPLE_FILE = "sample.md"
SAMPLE_SIZE = 20


@dataclass(frozen=True)
class TranslateConfig:
    """Settings of the data, the tokenizer, the batches and decoding (see the module docstring)."""

    data: str | None = None
    source_column: int = 0
    target_column: int = 1
    max_words: int = 12  # pairs with more words on either side are dropped
    test_pairs: int = 2000
    val_pairs: int = 1000
    split_seed: int = 0
    vocab_size: int = 8000  # the shared BPE model's
    batch_size: int = 64
    bucket_batches: int = 100  # batches of similar length are cut from pools of this many
    label_smoothing: float = 0.1
    teacher_forcing: TeacherForcingSchedule = field(default_factory=TeacherForcingSchedule)
    beam_size: int = 5
    length_penalty: float = 0.6  # Wu et al. (2016)'s alpha
    max_output_tokens: int = 64

    def __post_init__(self) -> None:
        for name in ("max_words", "test_pairs", "val_pairs", "vocab_size", "batch_size", "bucket_batches",
                     "beam_size", "max_output_tokens"):  # fmt: skip
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, int) or value < 1:
                raise ValueError(f"task.{name} must be a positive integer, got {value!r}")
        if not 0.0 <= self.label_smoothing < 1.0:
            raise ValueError(f"task.label_smoothing must be in [0, 1), got {self.label_smoothing!r}")
        if self.length_penalty < 0:
            raise ValueError(f"task.length_penalty must be >= 0, got {self.length_penalty!r}")

    def decode_settings(self) -> DecodeSettings:
        return DecodeSettings(self.beam_size, float(self.length_penalty), "wu", self.max_output_tokens).check()


def load_pairs(config: TranslateConfig) -> tuple[list[tuple[str, str]], dict[str, int]]:
    """The pairs of ``config.data`` after NFC, deduplication and the length filter, and the counts."""
    if config.data is None:
        raise ValueError("translation needs --data FILE: one 'source TAB target' pair per line")
    raw = read_pairs(config.data, source_column=config.source_column, target_column=config.target_column)
    unique = deduplicate(raw)
    kept, dropped = filter_length(unique, max_words=config.max_words)
    warn_dropped(dropped, len(unique), config.max_words, config.data)
    return kept, {"read": len(raw), "duplicates": len(raw) - len(unique), "too_long": dropped, "kept": len(kept)}


def _encode(pairs, codec: Codec) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    sources = [codec.encode(s) or [END] for s, _ in pairs]
    targets = [codec.encode(t) + [END] for _, t in pairs]
    lengths = torch.tensor([len(s) for s in sources])
    source = torch.full((len(pairs), int(lengths.max())), PAD, dtype=torch.long)
    target = torch.full((len(pairs), max(map(len, targets))), PAD, dtype=torch.long)
    for i, (s, t) in enumerate(zip(sources, targets)):
        source[i, : len(s)] = torch.tensor(s)
        target[i, : len(t)] = torch.tensor(t)
    return source, target, lengths


class TranslateApp(App):
    name = "translate"
    help = "machine translation from 'source TAB target' pairs: subwords, attention, beam search, BLEU"
    example = "rnnkit train translate --data eng-fra.tsv --train.max_minutes=45"
    config_class = TranslateConfig
    model_name = "encoder_decoder"
    default_model = {
        "source": {"embedding_dim": 256}, "embedding_dim": 256, "attention": "general", "input_feeding": True,
        "encoder": {"cell": "gru", "hidden_size": 256, "bidirectional": True},
        "decoder": {"cell": "gru", "hidden_size": 256}, "tie_embeddings": True, "head_dropout": 0.2,
    }  # fmt: skip
    default_train = {"lr": 2e-3, "schedule": "cosine", "warmup_steps": 200, "max_epochs": 10, "clip_norm": 1.0,
                     "eval_every": 500, "patience": 6}  # fmt: skip
    arguments = {"--data": "task.data"}

    # --- the data and the model ------------------------------------------------------------
    def prepare(self, config: TranslateConfig, model_settings: dict[str, Any], seed: int) -> Prepared:
        pairs, counts = load_pairs(config)
        split = split_by_group_size([s for s, _ in pairs], test_rows=config.test_pairs, val_rows=config.val_pairs,
                                    seed=config.split_seed)  # fmt: skip
        train, val, test = ([pairs[i] for i in rows] for rows in (split.train, split.val, split.test))
        lines = [side for pair in train for side in pair]
        random.Random(config.split_seed).shuffle(lines)  # the BPE trainer reads chunks: no order in the text
        codec = Codec(BPETokenizer.train("\n".join(lines), vocab_size=config.vocab_size))
        source, target, lengths = _encode(train, codec)
        val_tensors = _encode(val, codec)
        vocab = codec.vocab_size
        settings = dict(model_settings)
        settings["source"] = {**settings.get("source", {}), "vocab_size": vocab}
        settings.update(target_vocab_size=vocab, start_token=START, end_token=END, pad_token=PAD,
                        max_length=config.max_output_tokens)  # fmt: skip
        model = self.build_model(settings)
        objective = Seq2SeqObjective(config.teacher_forcing, pad_token=PAD, label_smoothing=config.label_smoothing)
        size = (target != PAD).sum(1) + lengths  # a pair's tokens: what bucketing groups by
        counts.update(train=len(train), val=len(val), test=len(test), test_sources=split.groups[2],
                      vocab_size=vocab)  # fmt: skip
        artifacts = {
            TOKENIZER_FILE: json.dumps(codec.bpe.to_json(), ensure_ascii=False),
            TRANSLATOR_FILE: json.dumps(asdict(config.decode_settings())),
        }
        return Prepared(
            model, objective,
            BucketBatches(source, target, lengths, lengths=size, batch_size=config.batch_size,
                          bucket_batches=config.bucket_batches, seed=seed),
            TensorBatches(*val_tensors, batch_size=256, shuffle=False), "pairs", artifacts,
            {"train": train, "test": test, "codec": codec, "counts": counts},
        )  # fmt: skip

    # --- after training --------------------------------------------------------------------
    def _outputs(self, run: Run) -> dict[str, Any]:
        """The test sources' translations by greedy and beam search, and the memory's (cached)."""
        if "outputs" not in run.cache:
            test, c = run.context["test"], run.config
            sources = list(dict.fromkeys(s for s, _ in test))
            translator = Translator(run.model(), run.context["codec"], c.decode_settings())
            greedy = dict(zip(sources, translator.translate(sources, beam_size=1)))
            beam = dict(zip(sources, translator.translate(sources)))
            memory = dict(zip(sources, TranslationMemory(run.context["train"]).translate(sources)))
            run.cache["outputs"] = {"greedy": greedy, "beam": beam, "memory": memory}
        return run.cache["outputs"]

    def finalize(self, run: Run) -> None:
        path = run.run_dir / SAMPLE_FILE
        if path.is_file() and not run.trained:
            return
        outputs, test = self._outputs(run), run.context["test"]
        chosen = random.Random(run.config.split_seed).sample(range(len(test)), min(SAMPLE_SIZE, len(test)))
        rows = ["| source | reference | beam search | translation memory |", "|---|---|---|---|"]
        for i in sorted(chosen):
            s, t = test[i]
            cells = [s, t, outputs["beam"][s], outputs["memory"][s]]
            rows.append("| " + " | ".join(x.replace("|", "\\|") for x in cells) + " |")
        atomic_write_text(path, f"# {len(chosen)} test sentences, side by side\n\n" + "\n".join(rows) + "\n")

    def evaluate(self, run: Run) -> dict[str, Any]:
        from ...metrics.translation import translation_scores

        outputs, test = self._outputs(run), run.context["test"]
        references = [t for _, t in test]
        grouped: dict[str, list[str]] = {}
        for s, t in test:
            grouped.setdefault(s, []).append(t)
        results: dict[str, Any] = {"data": run.context["counts"], "decoding": asdict(run.config.decode_settings())}
        for name, out in outputs.items():
            results[name] = translation_scores([out[s] for s, _ in test], references)
            results[name]["multi_reference"] = {
                k: v for k, v in translation_scores([out[s] for s in grouped], list(grouped.values())).items()
                if k in ("bleu", "chrf", "exact_match", "sentences", "references")
            }  # fmt: skip
        return results

    def report(self, run: Run, results: dict[str, Any]) -> str:
        n = results["data"]
        lines = [
            f"translation: {n['read']:,} pairs read, {n['duplicates']:,} duplicates and {n['too_long']:,} longer than"
            f" {run.config.max_words} words dropped; {n['train']:,} train, {n['val']:,} validation, {n['test']:,} test"
            f" pairs ({n['test_sources']:,} test source sentences, none in training); shared BPE of {n['vocab_size']:,}",
        ]
        names = {"greedy": "greedy", "beam": f"beam {run.config.beam_size}", "memory": "translation memory"}
        for key, label in names.items():
            r = results[key]
            lines.append(f"  {label:<20} BLEU {r['bleu']:5.2f}  chrF {r['chrf']:5.2f}  exact match {r['exact_match']:.2%}"
                         f"  (all references: BLEU {r['multi_reference']['bleu']:.2f})")  # fmt: skip
        lines.append(f"BLEU signature: {results['beam']['bleu_signature']}")
        lines.append(f"chrF signature: {results['beam']['chrf_signature']}")
        lines.append(f"sample: {run.run_dir / SAMPLE_FILE}")
        return "\n".join(lines)

    def evaluate_file(self, run: Run, path) -> dict[str, Any]:
        from ...data.pairs import read_pairs
        from ...metrics.translation import translation_scores

        pairs = read_pairs(path, source_column=run.config.source_column, target_column=run.config.target_column)
        translator = self.load(run.run_dir)
        out = translator.translate([s for s, _ in pairs])
        return {"source": str(path), **translation_scores(out, [t for _, t in pairs])}

    def load(self, run_dir) -> Translator:
        return Translator.load(run_dir)

    def commands(self) -> dict[str, Command]:
        return {"translate": TRANSLATE}
