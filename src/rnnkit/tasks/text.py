"""Text generation: a character (or BPE) language model trained by truncated BPTT.

``rnnkit train text --data FILE`` and ``rnnkit generate RUN_DIR --prime TEXT``. The last
``val_fraction`` of the text is held out (nanoGPT's convention); the tokenizer is trained on the
rest and saved in the run directory as ``tokenizer.json``.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

import torch

from .._io import read_json
from ..config import from_dict
from ..models import ManyToMany, ManyToManyConfig
from ..models.sampling import generate
from ..training import StreamBatches, StreamObjective
from ._registry import Prepared, Task, register_task
from ..data.textfiles import default_corpus, read_text_file
from ..data.tokenizers import TOKENIZERS, tokenizer_from_json

TOKENIZER_FILE = "tokenizer.json"


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


def _prepare(task: TextConfig, model_settings: dict[str, Any], seed: int) -> Prepared:
    text, source = load_text(task)
    split = int(len(text) * (1 - task.val_fraction))
    train_text, val_text = text[:split], text[split:]
    tokenizer = TOKENIZERS[task.tokenizer].train(
        train_text, **({"vocab_size": task.bpe_vocab_size} if task.tokenizer == "bpe" else {})
    )
    train_ids = torch.tensor(tokenizer.encode(train_text), dtype=torch.long)
    val_ids = torch.tensor(tokenizer.encode(val_text), dtype=torch.long)
    k1, k2 = task.bptt, task.bptt + task.bptt_overlap
    train = StreamBatches(train_ids, batch_size=task.batch_size, k1=k1, k2=k2)
    # the held-out text may be too short for the training batch size: use fewer, longer streams
    val_batch = max(1, min(task.batch_size, (len(val_ids) - 1) // k1))
    if (len(val_ids) - 1) // val_batch < k1:
        raise ValueError(
            f"data too short for one batch: the held-out {task.val_fraction:.0%} of {source} has"
            f" {len(val_ids)} tokens, fewer than bptt={k1} + 1"
        )
    val = StreamBatches(val_ids, batch_size=val_batch, k1=k1)

    settings = dict(model_settings)
    settings["input"] = {"embedding_dim": 64, **settings.get("input", {}), "vocab_size": tokenizer.vocab_size}
    settings["outputs"] = tokenizer.vocab_size
    model = ManyToMany(from_dict(ManyToManyConfig, settings, where="model"))
    chars_per_token = len(val_text) / max(len(val_ids), 1)

    def report(result) -> str:
        loss = result.best.get("val_loss", result.last_eval.get("val_loss"))
        if loss is None:
            return "no validation result"
        unit = "char" if task.tokenizer == "char" else "token"
        lines = [
            f"text: {source}, {len(text):,} characters, vocabulary {tokenizer.vocab_size} ({task.tokenizer}),"
            f" last {task.val_fraction:.0%} held out",
            f"validation loss {loss:.4f} nats/{unit}, {loss / math.log(2):.4f} bits/{unit},"
            f" perplexity {math.exp(loss):.2f}",
        ]
        if unit == "token":
            per_char = loss / chars_per_token
            lines.append(f"per character: {per_char:.4f} nats, {per_char / math.log(2):.4f} bits")
        prime = torch.tensor([tokenizer.encode(task.sample_prime)])
        ids = generate(model, prime, task.sample_length, temperature=task.sample_temperature,
                       generator=torch.Generator().manual_seed(seed))  # fmt: skip
        lines += ["sample (temperature {}):".format(task.sample_temperature), "-" * 60,
                  task.sample_prime + tokenizer.decode(ids[0].tolist()), "-" * 60]  # fmt: skip
        return "\n".join(lines)

    import json

    artifacts = {TOKENIZER_FILE: json.dumps(tokenizer.to_json(), ensure_ascii=False)}
    return Prepared(model, StreamObjective("cross_entropy"), train, val, f"{task.tokenizer}s", report, artifacts)


def load_tokenizer(run_dir: str | Path):
    path = Path(run_dir) / TOKENIZER_FILE
    if not Path(run_dir).is_dir():
        raise FileNotFoundError(f"run directory {run_dir} does not exist")
    if not path.is_file():
        raise FileNotFoundError(f"{path} does not exist: is {run_dir} a text run directory?")
    return tokenizer_from_json(read_json(path))


register_task(Task(
    name="text",
    help="a character (or BPE) language model on a text file, trained by truncated BPTT",
    example="rnnkit train text --data input.txt --train.max_minutes=20",
    config_class=TextConfig,
    prepare=_prepare,
    model_name="many_to_many",
    default_model={"encoder": {"cell": "lstm", "hidden_size": 512, "num_layers": 2, "dropout": 0.2},
                   "input": {"embedding_dim": 64}, "head_dropout": 0.2},
    default_train={"lr": 2e-3, "max_epochs": 50, "clip_norm": 1.0, "schedule": "cosine", "warmup_steps": 100,
                   "log_every": 20},
    arguments={"--data": "task.data", "--tokenizer": "task.tokenizer"},
))  # fmt: skip


def generate_text(
    run_dir: str | Path,
    *,
    prime: str = "\n",
    length: int = 500,
    temperature: float = 0.8,
    top_k: int | None = None,
    top_p: float | None = None,
    seed: int | None = None,
    on_text=None,
) -> str:
    """Sample ``length`` tokens from the text model in ``run_dir`` after ``prime``; returns the new text.

    ``on_text`` receives each new piece of text as soon as it is decoded (for streaming output).
    """
    from ..training import load

    if isinstance(length, bool) or not isinstance(length, int) or length < 1:
        raise ValueError(f"length must be a positive integer, got {length!r}")
    if not prime:
        raise ValueError("prime must be at least one character of text, got ''")
    tokenizer = load_tokenizer(run_dir)
    model = load(run_dir)
    if not hasattr(model, "step"):
        raise ValueError(f"{run_dir} does not hold a generative sequence model")
    ids: list[int] = []
    shown = ""

    def emit(token: torch.Tensor) -> None:
        nonlocal shown
        ids.append(int(token[0]))
        text = tokenizer.decode(ids)
        if on_text is not None and len(text) > len(shown) and not text.endswith("\ufffd"):
            on_text(text[len(shown):])  # BPE pieces may need the next token to complete a character
            shown = text

    generator = torch.Generator().manual_seed(seed) if seed is not None else None
    prime_ids = torch.tensor([tokenizer.encode(prime)])
    generate(model, prime_ids, length, temperature=temperature, top_k=top_k, top_p=top_p,
             generator=generator, on_token=emit)  # fmt: skip
    text = tokenizer.decode(ids)
    if on_text is not None and len(text) > len(shown):
        on_text(text[len(shown):])
    return text
