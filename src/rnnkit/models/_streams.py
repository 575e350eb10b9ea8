"""Several token streams per step, predicted one after another: a factorised head over a recurrent body.

At step ``t`` the model has read the rows ``x_{<=t}`` of ``S`` parallel token streams (the four
voices of a chorale, soprano first) and predicts the next row stream by stream,

.. math::

    p(y_t) = \\prod_{s=1}^{S} p(y_t^s \\mid h_t, y_t^1, \\dots, y_t^{s-1})

so that the streams of one step condition on each other (BachBot, Liang 2016, section 4.1,
orders a step's voices the same way; DeepBach, Hadjeres et al. 2017, samples one voice given the
others). The body reads the sum of one embedding per stream (plus an optional embedding of a
position, such as the place in the bar) through any rnnkit layer; stream ``s``'s head reads
``h_t`` and the embeddings of the ``s - 1`` targets before it.

>>> import torch
>>> model = StreamModel(StreamModelConfig(streams=2, vocab_size=10, outputs=9, positions=4))
>>> x, y = torch.randint(0, 10, (3, 5, 2)), torch.randint(0, 9, (3, 5, 2))
>>> logits, state = model(x, y, positions=torch.randint(0, 4, (3, 5)))
>>> logits.shape
torch.Size([3, 5, 2, 9])
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import torch
from torch import Tensor, nn

from .._validation import check_positive_int
from ._parts import EncoderConfig, build_encoder
from ._registry import register_model
from .sampling import check_sampling, filter_logits


@dataclass(frozen=True)
class StreamModelConfig:
    streams: int = 4  # token streams per step
    vocab_size: int = 131  # token ids the body reads (the predicted ones and any start token)
    outputs: int = 130  # token ids a head predicts: 0..outputs-1
    embedding_dim: int = 64
    positions: int = 0  # 0: no position input; else positions are 0..positions-1
    encoder: EncoderConfig = field(default_factory=lambda: EncoderConfig(cell="lstm", hidden_size=256, num_layers=2))
    head_hidden: int = 0  # 0: each head is linear; else one hidden ReLU layer of this size
    head_dropout: float = 0.0

    def __post_init__(self) -> None:
        for name in ("streams", "vocab_size", "outputs", "embedding_dim"):
            check_positive_int(name, getattr(self, name))
        if self.outputs > self.vocab_size:
            raise ValueError(f"outputs must be at most vocab_size ({self.vocab_size}), got {self.outputs}")
        if self.positions < 0 or self.head_hidden < 0:
            raise ValueError(f"positions and head_hidden must be >= 0, got {self.positions}, {self.head_hidden}")
        if self.encoder.bidirectional:
            raise ValueError("encoder.bidirectional must be False: the model writes left to right, got True")


@register_model("streams")
class StreamModel(nn.Module):
    """``forward(x (B, T, S), targets (B, T, S), state=None, positions=None)`` -> ``(logits (B, T, S, outputs), state)``.

    ``targets`` are the rows the model is scored on (teacher forcing for the later streams of a
    step); :meth:`step` and :meth:`sample_row` generate one row at a time.
    """

    config_class = StreamModelConfig

    def __init__(self, config: StreamModelConfig) -> None:
        super().__init__()
        self.config = c = config
        self.embeddings = nn.ModuleList(nn.Embedding(c.vocab_size, c.embedding_dim) for _ in range(c.streams))
        self.position = nn.Embedding(c.positions, c.embedding_dim) if c.positions else None
        self.encoder = build_encoder(c.encoder, c.embedding_dim)
        H = self.encoder.output_size
        # stream s's head reads the targets of streams < s through its own embeddings
        self.target_embeddings = nn.ModuleList(nn.Embedding(c.outputs, c.embedding_dim) for _ in range(c.streams - 1))
        self.dropout = nn.Dropout(c.head_dropout)

        def head(inputs: int) -> nn.Module:
            if not c.head_hidden:
                return nn.Linear(inputs, c.outputs)
            return nn.Sequential(nn.Linear(inputs, c.head_hidden), nn.ReLU(), nn.Linear(c.head_hidden, c.outputs))

        self.heads = nn.ModuleList(head(H + s * c.embedding_dim) for s in range(c.streams))

    def _check(self, x: Tensor, name: str, vocab: int) -> Tensor:
        if not isinstance(x, Tensor) or x.dtype not in (torch.int64, torch.int32, torch.int16, torch.uint8):
            raise TypeError(f"{name} must be a tensor of integer token ids, got {getattr(x, 'dtype', type(x).__name__)}")
        if x.shape[-1] != self.config.streams:
            raise ValueError(f"{name} must have {self.config.streams} streams in its last dimension, got shape {tuple(x.shape)}")
        if x.numel() and (int(x.min()) < 0 or int(x.max()) >= vocab):
            raise ValueError(f"{name} must hold token ids in [0, {vocab}), got {int(x.min())}..{int(x.max())}")
        return x.long()

    def embed(self, x: Tensor, positions: Tensor | None) -> Tensor:
        """``x`` ``(..., S)`` -> ``(..., E)``: the sum of the streams' (and the position's) embeddings."""
        e = sum(self.embeddings[s](x[..., s]) for s in range(self.config.streams))
        if self.position is not None:
            if positions is None:
                raise ValueError(f"positions are required: the model reads positions 0..{self.config.positions - 1}")
            e = e + self.position(positions.long())
        return e

    def forward(self, x: Tensor, targets: Tensor, state: Any = None, positions: Tensor | None = None) -> tuple[Tensor, Any]:
        x = self._check(x, "x", self.config.vocab_size)
        targets = self._check(targets, "targets", self.config.outputs)
        if targets.shape != x.shape:
            raise ValueError(f"targets must have the shape of x {tuple(x.shape)}, got {tuple(targets.shape)}")
        h, state = self.encoder(self.embed(x, positions), state)  # (B, T, H)
        return torch.stack(self.head_logits(self.dropout(h), targets), dim=2), state  # (B, T, S, V)

    def head_logits(self, h: Tensor, targets: Tensor) -> list[Tensor]:
        """Each stream's logits ``(..., V)`` from ``h`` ``(..., H)`` and the targets ``(..., S)`` before it."""
        logits, read = [], [h]
        for s in range(self.config.streams):
            logits.append(self.heads[s](torch.cat(read, dim=-1)))
            if s + 1 < self.config.streams:
                read.append(self.target_embeddings[s](targets[..., s]))
        return logits

    def step(self, x_t: Tensor, state: Any = None, position: Tensor | None = None) -> tuple[Tensor, Any]:
        """Read one row ``x_t`` ``(B, S)``: the top layer's output ``(B, H)`` and the new state."""
        x_t = self._check(x_t, "x_t", self.config.vocab_size)
        return self.encoder.step(self.embed(x_t, position), state)

    @torch.no_grad()
    def sample_row(
        self,
        h: Tensor,
        *,
        temperature: float = 1.0,
        top_p: float | None = None,
        fixed: Tensor | None = None,
        adjust: Callable[[int, Tensor, Tensor], Tensor] | None = None,
        generator: torch.Generator | None = None,
    ) -> Tensor:
        """One row ``(B, S)`` sampled stream by stream from ``h`` ``(B, H)``.

        ``fixed`` ``(B, S)``: a token to keep per stream (``-1`` where the stream is sampled), as
        when a given soprano is harmonised. ``adjust(s, logits (B, V), row so far (B, S))``
        returns the logits to sample stream ``s`` from (constraints and penalties).
        """
        check_sampling(temperature, None, top_p)
        B, S = h.shape[0], self.config.streams
        row = torch.zeros(B, S, dtype=torch.long, device=h.device)
        read = [h]
        for s in range(S):
            logits = self.heads[s](torch.cat(read, dim=-1))  # (B, V)
            if adjust is not None:
                logits = adjust(s, logits, row)
            if temperature == 0:
                token = logits.argmax(-1)
            else:
                p = torch.softmax(filter_logits(logits / temperature, top_p=top_p), dim=-1)
                token = torch.multinomial(p, 1, generator=generator).squeeze(-1)
            if fixed is not None:
                token = torch.where(fixed[:, s] >= 0, fixed[:, s], token)
            row[:, s] = token
            if s + 1 < S:
                read.append(self.target_embeddings[s](token))
        return row
