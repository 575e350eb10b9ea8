"""Pieces the model shapes share: the input (features or token ids) and the recurrent encoder."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import torch
from torch import Tensor, nn

from ..layers import create_layer


@dataclass(frozen=True)
class InputConfig:
    """Either real-valued features (``features``) or token ids (``vocab_size``, embedded)."""

    features: int | None = None
    vocab_size: int | None = None
    embedding_dim: int = 64

    def __post_init__(self) -> None:
        if (self.features is None) == (self.vocab_size is None):
            raise ValueError(
                "input needs exactly one of features (real-valued inputs) or vocab_size (token ids),"
                f" got features={self.features}, vocab_size={self.vocab_size}"
            )


@dataclass(frozen=True)
class EncoderConfig:
    """The recurrent body: a registered layer (``rnnkit.layers.LAYERS``) and its options."""

    cell: str = "lstm"
    hidden_size: int = 128
    num_layers: int = 1
    bidirectional: bool = False
    dropout: float = 0.0
    options: dict[str, Any] = field(default_factory=dict)


class InputLayer(nn.Module):
    """Token ids ``(B, T)`` -> embeddings ``(B, T, E)``, or features ``(B, T, F)`` unchanged."""

    def __init__(self, config: InputConfig) -> None:
        super().__init__()
        self.config = config
        self.embedding = nn.Embedding(config.vocab_size, config.embedding_dim) if config.vocab_size else None
        self.output_size = config.embedding_dim if config.vocab_size else config.features

    def forward(self, x: Tensor) -> Tensor:
        if self.embedding is None:
            return x
        if x.dtype not in (torch.int64, torch.int32, torch.int16, torch.uint8):
            raise TypeError(f"input must hold integer token ids, got dtype {x.dtype}")
        return self.embedding(x)


def build_encoder(config: EncoderConfig, input_size: int) -> nn.Module:
    return create_layer(
        config.cell,
        input_size,
        config.hidden_size,
        num_layers=config.num_layers,
        bidirectional=config.bidirectional,
        dropout=config.dropout if config.num_layers > 1 else 0.0,
        batch_first=True,
        **config.options,
    )
