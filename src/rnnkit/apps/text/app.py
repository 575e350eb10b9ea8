"""Text generation: a character (or BPE) language model trained by truncated BPTT.

``rnnkit train text --data FILE`` and ``rnnkit generate RUN_DIR --prime TEXT``; ``rnnkit demo``
trains one on the text every Python install ships. The last ``val_fraction`` of the text is held
out (nanoGPT's convention); the tokenizer is trained on the rest and saved in the run directory
as ``tokenizer.json``.
"""

from __future__ import annotations

import functools
import json
import math
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

import torch

from ...data.textfiles import default_corpus, read_text_file
from ...data.tokenizers import TOKENIZERS
from ...models.sampling import generate
from ...training import StreamBatches, StreamObjective
from ..base import App, Prepared, Run
from ..commands import Command
from .generator import TOKENIZER_FILE, TextGenerator


@dataclass(frozen=True)
class TextConfig:
    data: str | None = None  # a UTF-8 text file; None: the corpus shipped with Python
    tokenizer: Literal["char", "bpe"] = "char"
    bpe_vocab_size: int = 2000
    val_fraction: float = 0.1
    batch_size: int = 32
    bptt: int = 128  # k1: steps between updates, and what the state carries past
    bptt_overlap: int = 0  # k2 = bptt + overlap: how far back each update looks
    sample_length: int = 400
    sample_temperature: float = 0.8
    sample_prime: str = "\n"

    def __post_init__(self) -> None:
        if not 0 < self.val_fraction < 0.5:
            raise ValueError(f"val_fraction must be in (0, 0.5), got {self.val_fraction}")
        for name in ("batch_size", "bptt", "bpe_vocab_size", "sample_length"):
            if getattr(self, name) < 1:
                raise ValueError(f"{name} must be a positive integer, got {getattr(self, name)}")
        if self.bptt_overlap < 0:
            raise ValueError(f"bptt_overlap must be >= 0, got {self.bptt_overlap}")


def load_text(config: TextConfig) -> tuple[str, str]:
    if config.data is None:
        return default_corpus()
    return read_text_file(config.data), str(config.data)


class TextApp(App):
    name = "text"
    help = "a character (or BPE) language model on a text file, trained by truncated BPTT"
    example = "rnnkit train text --data input.txt --train.max_minutes=20"
    config_class = TextConfig
    model_name = "many_to_many"
    default_model = {"encoder": {"cell": "lstm", "hidden_size": 512, "num_layers": 2, "dropout": 0.2},
                     "input": {"embedding_dim": 64}, "head_dropout": 0.2}  # fmt: skip
    default_train = {"lr": 2e-3, "max_epochs": 50, "clip_norm": 1.0, "schedule": "cosine", "warmup_steps": 100,
                     "log_every": 20}  # fmt: skip
    arguments = {"--data": "task.data", "--tokenizer": "task.tokenizer"}

    def prepare(self, config: TextConfig, model_settings: dict[str, Any], seed: int) -> Prepared:
        text, source = load_text(config)
        split = int(len(text) * (1 - config.val_fraction))
        train_text, val_text = text[:split], text[split:]
        tokenizer = TOKENIZERS[config.tokenizer].train(
            train_text, **({"vocab_size": config.bpe_vocab_size} if config.tokenizer == "bpe" else {})
        )
        train_ids = torch.tensor(tokenizer.encode(train_text), dtype=torch.long)
        val_ids = torch.tensor(tokenizer.encode(val_text), dtype=torch.long)
        k1, k2 = config.bptt, config.bptt + config.bptt_overlap
        train = StreamBatches(train_ids, batch_size=config.batch_size, k1=k1, k2=k2)
        # the held-out text may be too short for the training batch size: use fewer, longer streams
        val_batch = max(1, min(config.batch_size, (len(val_ids) - 1) // k1))
        if (len(val_ids) - 1) // val_batch < k1:
            raise ValueError(
                f"data too short for one batch: the held-out {config.val_fraction:.0%} of {source} has"
                f" {len(val_ids)} tokens, fewer than bptt={k1} + 1"
            )
        val = StreamBatches(val_ids, batch_size=val_batch, k1=k1)
        settings = dict(model_settings)
        settings["input"] = {"embedding_dim": 64, **settings.get("input", {}), "vocab_size": tokenizer.vocab_size}
        settings["outputs"] = tokenizer.vocab_size
        model = self.build_model(settings)
        context = {"source": source, "characters": len(text), "tokenizer": tokenizer,
                   "chars_per_token": len(val_text) / max(len(val_ids), 1)}  # fmt: skip
        artifacts = {TOKENIZER_FILE: json.dumps(tokenizer.to_json(), ensure_ascii=False)}
        unit = {"char": "chars", "word": "words"}.get(config.tokenizer, "tokens")  # what a stream position holds
        return Prepared(model, StreamObjective("cross_entropy"), train, val, unit, artifacts, context)

    def evaluate(self, run: Run) -> dict[str, Any]:
        c, context, result = run.config, run.context, run.result
        tokenizer = context["tokenizer"]
        results = {"source": context["source"], "characters": context["characters"], "tokenizer": c.tokenizer,
                   "vocab_size": tokenizer.vocab_size,
                   "val_loss": result.best.get("val_loss", result.last_eval.get("val_loss"))}  # fmt: skip
        loss = results["val_loss"]
        if loss is None:
            return results
        results.update(val_bits=loss / math.log(2), perplexity=math.exp(loss))
        if c.tokenizer != "char":
            per_char = loss / context["chars_per_token"]
            results.update(val_loss_per_char=per_char, val_bits_per_char=per_char / math.log(2))
        prime = torch.tensor([tokenizer.encode(c.sample_prime)])
        ids = generate(run.last_model(), prime, c.sample_length, temperature=c.sample_temperature,
                       generator=torch.Generator().manual_seed(run.seed))  # fmt: skip
        results["sample"] = c.sample_prime + tokenizer.decode(ids[0].tolist())
        return results

    def evaluate_file(self, run: Run, path) -> dict[str, Any]:
        """The model's loss on every next token of a text file, read in one stream (state carried
        across chunks of 512 tokens), in nats and bits per token and per character."""
        generator = self.load(run.run_dir)
        text = read_text_file(path)
        ids = torch.tensor(generator.tokenizer.encode(text), dtype=torch.long)  # (N,)
        if len(ids) < 2:
            raise ValueError(f"{path} is too short to score: {len(ids)} token(s), at least 2 are needed")
        total, state = 0.0, None
        with torch.no_grad():
            for start in range(0, len(ids) - 1, 512):
                x, y = ids[start : start + 512], ids[start + 1 : start + 513]
                logits, state = generator.model(x[: len(y)].unsqueeze(0), state)  # (1, n, V)
                total += float(torch.nn.functional.cross_entropy(logits[0], y, reduction="sum"))
        tokens = len(ids) - 1
        unseen = generator.tokenizer.unknown(text) if hasattr(generator.tokenizer, "unknown") else []
        return {"source": str(path), "tokens": tokens, "characters": len(text), "loss": total / tokens,
                "bits": total / tokens / math.log(2), "loss_per_char": total / len(text),
                "bits_per_char": total / len(text) / math.log(2), "unknown_characters": len(unseen)}  # fmt: skip

    def report(self, run: Run, results: dict[str, Any]) -> str:
        c, loss = run.config, results["val_loss"]
        if loss is None:
            return "no validation result"
        unit = "char" if c.tokenizer == "char" else "token"
        lines = [
            f"text: {results['source']}, {results['characters']:,} characters, vocabulary {results['vocab_size']}"
            f" ({c.tokenizer}), last {c.val_fraction:.0%} held out",
            f"validation loss {loss:.4f} nats/{unit}, {results['val_bits']:.4f} bits/{unit},"
            f" perplexity {results['perplexity']:.2f}",
        ]
        if unit == "token":
            lines.append(f"per character: {results['val_loss_per_char']:.4f} nats,"
                         f" {results['val_bits_per_char']:.4f} bits")  # fmt: skip
        lines += [f"sample (temperature {c.sample_temperature}):", "-" * 60, results["sample"], "-" * 60]
        return "\n".join(lines)

    def load(self, run_dir: str | Path) -> TextGenerator:
        return TextGenerator.load(run_dir)

    def commands(self) -> dict[str, Command]:
        return dict(self._commands)

    @functools.cached_property
    def _commands(self) -> dict[str, Command]:  # built once: the demo command is bound to this app
        from .commands import GENERATE, demo_command

        return {"demo": demo_command(self), "generate": GENERATE}
