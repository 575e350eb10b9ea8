"""Many-to-many, unaligned: a CTC model (Graves et al. 2006) over any rnnkit encoder.

Input frames ``(B, T, F)`` (or token ids ``(B, T)``) pass an optional front end of causal 1-D
convolutions, whose first may stride in time to shorten long inputs; the recurrent encoder (any
registered cell, stacked, uni- or bidirectional) reads the result and a linear head gives, at every
output frame, logits over the blank and the symbols. The convolutions are causal (frame ``j``
sees input frames up to ``j * stride`` only), so padding never reaches a valid output frame and a
unidirectional model runs frame by frame through :meth:`CTC.step` with the offline outputs.
The loss, decoders and alignment are in :mod:`rnnkit.models.ctc`.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, NamedTuple

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from .._validation import check_lengths, check_tensor
from ._parts import EncoderConfig, InputConfig, InputLayer, build_encoder
from ._registry import register_model
from .ctc import Hypothesis, Prior, ctc_loss, greedy_decode, prefix_beam_search


@dataclass(frozen=True)
class FrontEndConfig:
    """Causal convolutions over time before the encoder (``layers=0``: none).

    Each is a ``Conv1d(kernel_size)`` padded on the left only, then ReLU; the first has
    ``stride``, so the encoder reads ``ceil(T / stride)`` frames.
    """

    layers: int = 0
    channels: int = 64
    kernel_size: int = 3
    stride: int = 1

    def __post_init__(self) -> None:
        for name, least in (("layers", 0), ("channels", 1), ("kernel_size", 1), ("stride", 1)):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, int) or value < least:
                raise ValueError(f"model.frontend.{name} must be an integer >= {least}, got {value!r}")
        if self.layers == 0 and self.stride != 1:
            raise ValueError(f"model.frontend.stride={self.stride} needs a convolution: set model.frontend.layers >= 1")


@dataclass(frozen=True)
class CTCConfig:
    input: InputConfig = field(default_factory=lambda: InputConfig(features=1))
    frontend: FrontEndConfig = field(default_factory=FrontEndConfig)
    encoder: EncoderConfig = field(default_factory=EncoderConfig)
    outputs: int = 2  # classes: the blank and the symbols
    blank: int = 0
    head_dropout: float = 0.0

    def __post_init__(self) -> None:
        if isinstance(self.outputs, bool) or not isinstance(self.outputs, int) or self.outputs < 2:
            raise ValueError(f"model.outputs must be an integer >= 2 (the blank and a symbol), got {self.outputs!r}")
        if isinstance(self.blank, bool) or not isinstance(self.blank, int) or not 0 <= self.blank < self.outputs:
            raise ValueError(f"model.blank must be a class id in [0, {self.outputs}), got {self.blank!r}")


class CTCState(NamedTuple):
    """What :meth:`CTC.step` carries from one input frame to the next."""

    frames: int  # input frames read so far
    buffers: tuple[Tensor, ...]  # per convolution: its last kernel_size inputs (B, kernel_size, channels_in)
    encoder: Any  # the encoder's state (its forward's hx form)


class CausalFrontEnd(nn.Module):
    """Causal, optionally strided convolutions over time: ``(B, T, F) -> (B, ceil(T / stride), channels)``."""

    def __init__(self, config: FrontEndConfig, input_size: int) -> None:
        super().__init__()
        self.config = config
        sizes = [input_size] + [config.channels] * config.layers
        self.convs = nn.ModuleList(
            nn.Conv1d(sizes[i], sizes[i + 1], config.kernel_size, stride=config.stride if i == 0 else 1)
            for i in range(config.layers)
        )
        self.output_size = sizes[-1]

    def output_lengths(self, lengths: Tensor) -> Tensor:
        return torch.div(lengths + self.config.stride - 1, self.config.stride, rounding_mode="floor")

    def forward(self, x: Tensor) -> Tensor:
        h = x.transpose(1, 2)  # (B, F, T)
        for conv in self.convs:
            h = F.relu(conv(F.pad(h, (self.config.kernel_size - 1, 0))))  # left padding only: causal
        return h.transpose(1, 2)  # (B, ceil(T / stride), channels)

    def initial_buffers(self, batch: int, like: Tensor) -> tuple[Tensor, ...]:
        k = self.config.kernel_size
        return tuple(like.new_zeros(batch, k, conv.in_channels) for conv in self.convs)

    def step(self, x_t: Tensor, frames: int, buffers: tuple[Tensor, ...]) -> tuple[Tensor | None, tuple[Tensor, ...]]:
        """Input frame number ``frames`` (0-based) ``(B, F)``: the front end's next output ``(B, channels)``,
        or None where the stride skips this frame; a kernel's worth of inputs kept per convolution."""
        new, h = [], x_t
        for i, (conv, buffer) in enumerate(zip(self.convs, buffers)):
            buffer = torch.cat([buffer[:, 1:], h.unsqueeze(1)], dim=1)  # (B, k, C_in): the newest k inputs
            new.append(buffer)
            if i == 0 and frames % self.config.stride:
                return None, tuple(new) + buffers[1:]
            h = F.relu(F.conv1d(buffer.transpose(1, 2), conv.weight, conv.bias)).squeeze(-1)  # (B, C_out)
        return h, tuple(new)


@register_model("ctc")
class CTC(nn.Module):
    """Unaligned many-to-many: per-frame class logits for connectionist temporal classification.

    ``forward(x, state=None, lengths=None)`` returns ``(logits (B, T', C), state)`` with
    ``T' = ceil(T / frontend.stride)``; :meth:`output_lengths` maps input lengths to the valid
    output frames, :meth:`loss` is the CTC loss of padded targets, :meth:`decode` greedy or beam
    decoding, :meth:`step` one input frame at a time (unidirectional encoders). Class ``blank``
    (0 by default) is the blank; targets hold the other ids.

    >>> import torch
    >>> from rnnkit.models import CTC, CTCConfig, EncoderConfig, FrontEndConfig, InputConfig
    >>> model = CTC(CTCConfig(input=InputConfig(features=13), frontend=FrontEndConfig(layers=1, stride=2),
    ...                       encoder=EncoderConfig(cell="gru", hidden_size=32), outputs=11))
    >>> x, lengths = torch.randn(2, 50, 13), torch.tensor([50, 31])
    >>> logits, _ = model(x, lengths=lengths)
    >>> logits.shape, model.output_lengths(lengths).tolist()
    (torch.Size([2, 25, 11]), [25, 16])
    >>> loss = model.loss(x, lengths, torch.tensor([[3, 4, 4], [7, 0, 0]]), torch.tensor([3, 1]))
    >>> len(model.decode(x, lengths))
    2
    """

    config_class = CTCConfig

    def __init__(self, config: CTCConfig) -> None:
        super().__init__()
        self.config = config
        self.input = InputLayer(config.input)
        self.frontend = CausalFrontEnd(config.frontend, self.input.output_size)
        self.encoder = build_encoder(config.encoder, self.frontend.output_size)
        self.dropout = nn.Dropout(config.head_dropout)
        self.head = nn.Linear(self.encoder.output_size, config.outputs)

    @property
    def blank(self) -> int:
        return self.config.blank

    @property
    def stride(self) -> int:
        return self.config.frontend.stride

    def output_lengths(self, lengths: Tensor) -> Tensor:
        """Valid output frames ``(B,)`` of inputs with ``lengths`` valid frames: ``ceil(lengths / stride)``."""
        return self.frontend.output_lengths(lengths)

    def forward(self, x: Tensor, state: Any = None, lengths: Tensor | None = None) -> tuple[Tensor, Any]:
        logits, state, _ = self._run(x, state, lengths)
        return logits, state

    def _run(self, x: Tensor, state: Any, lengths: Any) -> tuple[Tensor, Any, Tensor | None]:
        """Logits ``(B, T', C)``, the encoder's final state, and the valid output frames ``(B,)``."""
        h = self.frontend(self.input(x))  # (B, T', H_in)
        if lengths is not None:
            lengths = self.output_lengths(check_lengths(lengths, h.shape[0], x.shape[1], h.device))
        outputs, state = self.encoder(h, state, lengths=lengths)  # (B, T', D*H)
        return self.head(self.dropout(outputs)), state, lengths

    def loss(self, x: Tensor, lengths: Tensor | None, targets: Tensor, target_lengths: Tensor,
             reduction: str = "mean") -> Tensor:  # fmt: skip
        """The CTC loss (:func:`rnnkit.models.ctc.ctc_loss`) of padded ``targets`` ``(B, S)``."""
        logits, _, out = self._run(x, None, lengths)
        return ctc_loss(logits, targets, out, target_lengths, blank=self.blank, reduction=reduction)

    @torch.no_grad()
    def decode(self, x: Tensor, lengths: Tensor | None = None, *, beam_width: int = 1, prior: Prior | None = None,
               prior_weight: float = 1.0, insertion_bonus: float = 0.0) -> list[list[int]]:  # fmt: skip
        """Each row's labelling: greedy at ``beam_width=1`` without a prior, else prefix beam search."""
        logits, _, out = self._run(x, None, lengths)
        if beam_width == 1 and prior is None:
            return greedy_decode(logits, out, blank=self.blank)
        beams = self.beams(logits, out, beam_width=beam_width, prior=prior, prior_weight=prior_weight,
                           insertion_bonus=insertion_bonus)  # fmt: skip
        return [list(row[0].tokens) if row else [] for row in beams]

    def beams(self, logits: Tensor, lengths: Tensor | None = None, **options) -> list[list[Hypothesis]]:
        """:func:`rnnkit.models.ctc.prefix_beam_search` on this model's ``logits`` (its blank)."""
        return prefix_beam_search(logits, lengths, blank=self.blank, **options)

    def step(self, x_t: Tensor, state: CTCState | None = None) -> tuple[Tensor | None, CTCState]:
        """One input frame ``x_t`` ``(B, F)`` (or ids ``(B,)``): the next output frame's logits
        ``(B, C)``, or None where the front end's stride skips this input; and the new state.
        Stepping through a sequence gives ``forward``'s logits, frame by frame; the work per
        frame is constant (the convolutions keep a kernel's worth of inputs)."""
        if self.encoder.bidirectional:
            raise ValueError("step needs a unidirectional model: model.encoder.bidirectional=True reads the future")
        check_tensor("x_t", x_t)
        h = self.input(x_t)
        if h.dim() != 2:
            raise ValueError(f"x_t must be one frame per row, (batch, features), got shape {tuple(x_t.shape)}")
        if state is None:
            state = CTCState(0, self.frontend.initial_buffers(h.shape[0], h), None)
        frames, buffers, encoder_state = state
        h, buffers = self.frontend.step(h, frames, buffers)
        if h is None:
            return None, CTCState(frames + 1, buffers, encoder_state)
        y, encoder_state = self.encoder.step(h, encoder_state)  # (B, H)
        return self.head(y), CTCState(frames + 1, buffers, encoder_state)
