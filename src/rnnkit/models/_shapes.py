"""The sequence shapes on a recurrent encoder: many-to-one and aligned many-to-many.

All models are batch-first: inputs ``(B, T, F)`` of features or ``(B, T)`` of token ids.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Literal

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from ..layers import valid_mask
from ._parts import EncoderConfig, InputConfig, InputLayer, build_encoder
from ._registry import register_model

Pooling = Literal["last", "mean", "max", "attention"]


@dataclass(frozen=True)
class ManyToOneConfig:
    input: InputConfig = field(default_factory=lambda: InputConfig(features=1))
    encoder: EncoderConfig = field(default_factory=EncoderConfig)
    outputs: int = 1
    pooling: Pooling = "last"
    head_dropout: float = 0.0


@register_model("many_to_one")
class ManyToOne(nn.Module):
    """A sequence classifier or regressor: one output vector per sequence.

    The encoder's per-step outputs are pooled over each sequence's valid steps: ``last`` (the
    final state of each direction: for the reverse direction, the state after reading back to the
    first step), ``mean``, ``max``, or ``attention`` (a learned query scores every valid step;
    Bahdanau et al. 2015's additive form over a single query). ``forward(x, lengths=None)``
    returns ``(B, outputs)`` logits or values.

    >>> import torch
    >>> model = ManyToOne(ManyToOneConfig(input=InputConfig(vocab_size=50), outputs=2, pooling="mean"))
    >>> model(torch.randint(0, 50, (4, 7)), lengths=torch.tensor([7, 3, 5, 1])).shape
    torch.Size([4, 2])
    """

    config_class = ManyToOneConfig

    def __init__(self, config: ManyToOneConfig) -> None:
        super().__init__()
        self.config = config
        self.input = InputLayer(config.input)
        self.encoder = build_encoder(config.encoder, self.input.output_size)
        size = self.encoder.output_size
        if config.pooling == "attention":
            self.attention = nn.Sequential(nn.Linear(size, size), nn.Tanh(), nn.Linear(size, 1, bias=False))
        self.dropout = nn.Dropout(config.head_dropout)
        self.head = nn.Linear(size, config.outputs)

    def forward(self, x: Tensor, lengths: Tensor | None = None) -> Tensor:
        outputs, state = self.encoder(self.input(x), lengths=lengths)  # (B, T, D*H)
        pooled = self.pool(outputs, state, lengths)  # (B, D*H)
        return self.head(self.dropout(pooled))

    def pool(self, outputs: Tensor, state: Any, lengths: Tensor | None) -> Tensor:
        pooling = self.config.pooling
        if pooling == "last":
            h_n = state[0] if isinstance(state, tuple) else state  # (L*D, B, H)
            directions = 2 if self.encoder.bidirectional else 1
            return torch.cat(list(h_n[-directions:]), dim=-1)
        steps = outputs.shape[1]
        mask = valid_mask(lengths, steps) if lengths is not None else None
        mask = mask.T.unsqueeze(-1) if mask is not None else torch.ones_like(outputs[..., :1], dtype=torch.bool)
        if pooling == "mean":
            return (outputs * mask).sum(1) / mask.sum(1)
        if pooling == "max":
            return outputs.masked_fill(~mask, float("-inf")).amax(1)
        scores = self.attention(outputs).masked_fill(~mask, float("-inf"))  # (B, T, 1)
        return (F.softmax(scores, dim=1) * outputs).sum(1)


@dataclass(frozen=True)
class ManyToManyConfig:
    input: InputConfig = field(default_factory=lambda: InputConfig(features=1))
    encoder: EncoderConfig = field(default_factory=EncoderConfig)
    outputs: int = 1
    head_dropout: float = 0.0


@register_model("many_to_many")
class ManyToMany(nn.Module):
    """Aligned many-to-many: one output per step (a tagger, or a language model's next-token logits).

    ``forward(x, state=None, lengths=None)`` returns ``(outputs (B, T, outputs), state)``; the
    state can be fed back for stateful (truncated-BPTT) training and streaming generation.

    >>> import torch
    >>> model = ManyToMany(ManyToManyConfig(input=InputConfig(vocab_size=30), outputs=30))
    >>> logits, state = model(torch.randint(0, 30, (2, 5)))
    >>> logits.shape
    torch.Size([2, 5, 30])
    """

    config_class = ManyToManyConfig

    def __init__(self, config: ManyToManyConfig) -> None:
        super().__init__()
        self.config = config
        self.input = InputLayer(config.input)
        self.encoder = build_encoder(config.encoder, self.input.output_size)
        self.dropout = nn.Dropout(config.head_dropout)
        self.head = nn.Linear(self.encoder.output_size, config.outputs)

    def forward(self, x: Tensor, state: Any = None, lengths: Tensor | None = None) -> tuple[Tensor, Any]:
        outputs, state = self.encoder(self.input(x), state, lengths=lengths)  # (B, T, D*H)
        return self.head(self.dropout(outputs)), state

    def step(self, x_t: Tensor, state: Any = None) -> tuple[Tensor, Any]:
        """One step for streaming or generation: ``x_t`` ``(B,)`` ids or ``(B, F)`` features."""
        y, state = self.encoder.step(self.input(x_t), state)
        return self.head(y), state
