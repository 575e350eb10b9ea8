"""A convolutional front end before the recurrent encoder: per-step outputs, optionally strided.

DanQ (Quang & Xie 2016) reads DNA with a convolution (motif detectors) and a bidirectional LSTM
over the convolution's outputs. :class:`ConvManyToMany` is that shape for aligned tagging: the
convolution may stride (``stride`` input steps per recurrent step, so the recurrence runs
``stride`` times fewer steps) and the head then emits ``stride`` outputs per recurrent step, one
per input step, so the output stays aligned with the input.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import torch.nn.functional as F
from torch import Tensor, nn

from ._parts import EncoderConfig, InputConfig, InputLayer, build_encoder
from ._registry import register_model


@dataclass(frozen=True)
class ConvConfig:
    """Convolution layers before the encoder: ``channels`` per layer (empty: none), each with
    ``kernel_size`` (odd) and ReLU; the first strides by ``stride`` (``kernel_size - stride``
    must be even, so every output step is centred on its ``stride`` input steps)."""

    channels: tuple[int, ...] = (64,)
    kernel_size: int = 9
    stride: int = 1
    dropout: float = 0.0

    def __post_init__(self) -> None:
        if any(isinstance(c, bool) or not isinstance(c, int) or c < 1 for c in self.channels):
            raise ValueError(f"conv.channels must be positive integers, got {list(self.channels)}")
        if self.kernel_size < 1 or self.kernel_size % 2 == 0:
            raise ValueError(f"conv.kernel_size must be a positive odd number, got {self.kernel_size}")
        if self.stride < 1 or self.stride > self.kernel_size or (self.kernel_size - self.stride) % 2:
            raise ValueError("conv.stride must be in 1..kernel_size with kernel_size - stride even,"
                             f" got stride {self.stride} for kernel_size {self.kernel_size}")  # fmt: skip
        if self.stride > 1 and not self.channels:
            raise ValueError(f"conv.stride {self.stride} needs at least one convolution layer (conv.channels)")
        if not 0 <= self.dropout < 1:
            raise ValueError(f"conv.dropout must be in [0, 1), got {self.dropout}")


class ConvFront(nn.Module):
    """``(B, T, F)`` -> ``(B, ceil(T / stride), channels[-1])``: the convolutions of a :class:`ConvConfig`."""

    def __init__(self, config: ConvConfig, input_size: int) -> None:
        super().__init__()
        self.config = config
        layers: list[nn.Module] = []
        size = input_size
        for i, channels in enumerate(config.channels):
            stride = config.stride if i == 0 else 1
            padding = (config.kernel_size - stride) // 2
            layers += [nn.Conv1d(size, channels, config.kernel_size, stride=stride, padding=padding), nn.ReLU(),
                       nn.Dropout(config.dropout)]  # fmt: skip
            size = channels
        self.layers = nn.Sequential(*layers)
        self.output_size = size

    def forward(self, x: Tensor) -> Tensor:
        if not self.config.channels:
            return x
        pad = -x.shape[1] % self.config.stride
        x = F.pad(x, (0, 0, 0, pad)) if pad else x  # (B, T', F), T' a multiple of the stride
        return self.layers(x.transpose(1, 2)).transpose(1, 2)  # (B, T'/stride, C)


@dataclass(frozen=True)
class ConvManyToManyConfig:
    input: InputConfig = field(default_factory=lambda: InputConfig(features=4))
    conv: ConvConfig = field(default_factory=ConvConfig)
    encoder: EncoderConfig = field(default_factory=lambda: EncoderConfig(bidirectional=True))
    outputs: int = 1
    head_dropout: float = 0.0


@register_model("conv_many_to_many")
class ConvManyToMany(nn.Module):
    """Aligned many-to-many with a convolutional front end (DanQ's CNN + BiLSTM, per step).

    ``forward(x, lengths=None)`` returns ``(outputs (B, T, outputs), state)`` for inputs ``(B, T,
    F)`` (or ``(B, T)`` token ids). With ``lengths`` the encoder stops at each sequence's end (in
    recurrent steps, ``ceil(length / stride)``); outputs past it are not meaningful.

    >>> import torch
    >>> model = ConvManyToMany(ConvManyToManyConfig(conv=ConvConfig(stride=3), outputs=7))
    >>> model(torch.randn(2, 100, 4))[0].shape
    torch.Size([2, 100, 7])
    """

    config_class = ConvManyToManyConfig

    def __init__(self, config: ConvManyToManyConfig) -> None:
        super().__init__()
        self.config = config
        self.input = InputLayer(config.input)
        self.front = ConvFront(config.conv, self.input.output_size)
        self.encoder = build_encoder(config.encoder, self.front.output_size)
        self.dropout = nn.Dropout(config.head_dropout)
        self.stride = config.conv.stride if config.conv.channels else 1
        self.head = nn.Linear(self.encoder.output_size, config.outputs * self.stride)

    def forward(self, x: Tensor, lengths: Tensor | None = None) -> tuple[Tensor, Any]:
        steps = x.shape[1]
        features = self.front(self.input(x))  # (B, T/stride, C)
        if lengths is not None and self.stride > 1:
            lengths = (lengths + self.stride - 1) // self.stride
        outputs, state = self.encoder(features, lengths=lengths)  # (B, T/stride, D*H)
        y = self.head(self.dropout(outputs))  # (B, T/stride, stride*outputs)
        y = y.reshape(y.shape[0], -1, self.config.outputs)  # (B, T', outputs): stride outputs per step
        return y[:, :steps], state
