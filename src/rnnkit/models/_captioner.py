"""Image to sequence: a convolutional encoder's grid, read by a recurrent decoder with soft attention.

Show, Attend and Tell (Xu et al. 2015): the encoder turns an image into ``L = h * w`` annotation
vectors ``a_i`` (section 3.1.1: a convolutional feature map, not a pooled vector, so the decoder
can look at parts of the picture). The decoder's initial state is predicted from their mean
(section 3.1.2: ``c_0 = f_init,c(mean a_i)``, ``h_0 = f_init,h(mean a_i)``); at each step the
previous state ``h_{t-1}`` scores every annotation additively, the soft weights ``alpha_ti``
(eq. 4-5) give the context ``z_t = sum_i alpha_ti a_i``, optionally gated by ``beta_t =
sigmoid(f_beta(h_{t-1}))`` (section 4.2.1), which the LSTM reads with the previous word (eq.
1-3); the word comes from the deep output ``L_o (E y_{t-1} + L_h h_t + L_z z_t)`` (eq. 7), here
``tanh(W [h_t; z_t; E y_{t-1}])`` as in :class:`~rnnkit.models.EncoderDecoder`'s Bahdanau readout.

The encoder is a small network trained from scratch (``ConvEncoder``): blocks of 3x3 convolution,
batch norm, ReLU and 2x2 max pooling.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import torch
from torch import Tensor, nn

from .._validation import check_bool, check_floating, check_positive_int, check_tensor
from ._generator import DecoderCarry, StateBridge, TokenDecoder, check_decoder_config, check_teacher_forcing
from ._generator import check_token_tensor, layer_state_layout, top_output
from ._parts import EncoderConfig, build_encoder
from ._registry import register_model
from ._seq2seq import Attention, Memory
from .beam import Beams, Decoded, check_tokens


@dataclass(frozen=True)
class ConvEncoderConfig:
    """``channels``: the input's channels (3: RGB); ``widths``: output channels of each block,
    each block halving the image's height and width (a 64x64 image and three blocks: an 8x8 grid)."""

    channels: int = 3
    widths: tuple[int, ...] = (32, 64, 128)
    dropout: float = 0.0  # on the annotation vectors

    def __post_init__(self) -> None:
        check_positive_int("channels", self.channels)
        if not self.widths:
            raise ValueError("widths must name at least one block's channels, got an empty list")
        for width in self.widths:
            check_positive_int("widths", width)
        if not 0 <= self.dropout < 1:
            raise ValueError(f"dropout must be in [0, 1), got {self.dropout}")


class ConvEncoder(nn.Module):
    """Images ``(B, C, H, W)`` -> annotation vectors ``(B, H', W', D)`` (``D = widths[-1]``)."""

    def __init__(self, config: ConvEncoderConfig) -> None:
        super().__init__()
        self.config = config
        layers: list[nn.Module] = []
        previous = config.channels
        for width in config.widths:
            layers += [nn.Conv2d(previous, width, 3, padding=1, bias=False), nn.BatchNorm2d(width), nn.ReLU(),
                       nn.Conv2d(width, width, 3, padding=1, bias=False), nn.BatchNorm2d(width), nn.ReLU(),
                       nn.MaxPool2d(2)]  # fmt: skip
            previous = width
        self.blocks = nn.Sequential(*layers)
        self.dropout = nn.Dropout(config.dropout)
        self.output_size = previous
        self.reduction = 2 ** len(config.widths)

    def forward(self, images: Tensor) -> Tensor:
        grid = self.blocks(images)  # (B, D, H', W')
        return self.dropout(grid.permute(0, 2, 3, 1))  # (B, H', W', D)


@dataclass(frozen=True)
class ImageCaptionerConfig:
    """A convolutional encoder, a recurrent decoder (not bidirectional) and soft attention.

    ``gate``: Xu et al.'s gating scalar ``beta_t`` on the context (section 4.2.1).
    ``attention_size``: the hidden size of the additive scoring (default: the decoder's).
    """

    encoder: ConvEncoderConfig = field(default_factory=ConvEncoderConfig)
    decoder: EncoderConfig = field(default_factory=lambda: EncoderConfig(cell="lstm", hidden_size=256))
    vocab_size: int = 32
    embedding_dim: int = 128
    attention_size: int | None = None
    gate: bool = True
    start_token: int = 1
    end_token: int = 2
    pad_token: int = 0
    max_length: int = 30
    head_dropout: float = 0.0


@register_model("image_to_sequence")
class ImageCaptioner(TokenDecoder):
    """One-to-many with attention: an image in, a token sequence out; see the module docstring.

    ``forward(images, target, teacher_forcing=1.0, return_attention=False)`` returns logits
    ``(B, T, V)`` aligned with ``target`` (and the attention ``(B, T, H', W')``);
    ``generate(images, beam_size=...)`` decodes; :meth:`attend` gives the attention maps of given
    captions (e.g. the decoded ones). ``encode(images)`` gives the annotation grid.

    >>> import torch
    >>> model = ImageCaptioner(ImageCaptionerConfig(vocab_size=12, encoder=ConvEncoderConfig(widths=(8, 8))))
    >>> logits, maps = model(torch.rand(2, 3, 16, 16), torch.randint(3, 12, (2, 5)), return_attention=True)
    >>> logits.shape, maps.shape, torch.allclose(maps.sum((-1, -2)), torch.ones(2, 5))
    (torch.Size([2, 5, 12]), torch.Size([2, 5, 4, 4]), True)
    >>> model.generate(torch.rand(2, 3, 16, 16), beam_size=3, max_length=6).tokens.shape[0]
    2
    """

    config_class = ImageCaptionerConfig

    def __init__(self, config: ImageCaptionerConfig) -> None:
        super().__init__()
        self.config = config
        self.vocab_size = check_positive_int("vocab_size", config.vocab_size)
        check_positive_int("embedding_dim", config.embedding_dim)
        check_tokens(config.start_token, config.end_token, config.pad_token, config.vocab_size)
        self.start_token, self.end_token, self.pad_token = config.start_token, config.end_token, config.pad_token
        self.max_length = check_positive_int("max_length", config.max_length)
        check_bool("gate", config.gate)
        if config.attention_size is not None:
            check_positive_int("attention_size", config.attention_size)
        check_decoder_config(config.decoder)
        self.encoder = ConvEncoder(config.encoder)
        memory = self.encoder.output_size
        self.embedding = nn.Embedding(config.vocab_size, config.embedding_dim)
        self.decoder = build_encoder(config.decoder, config.embedding_dim + memory)
        _, _, hidden = layer_state_layout(self.decoder)
        self.bridge = StateBridge(memory, self.decoder)  # f_init from the mean annotation
        self.attention = Attention("bahdanau", hidden, memory, config.attention_size or config.decoder.hidden_size)
        self.beta = nn.Linear(hidden, 1) if config.gate else None
        self.readout = nn.Linear(hidden + memory + config.embedding_dim, config.decoder.hidden_size)
        self.dropout = nn.Dropout(config.head_dropout)
        self.head = nn.Linear(config.decoder.hidden_size, config.vocab_size)

    # --- encoding ----------------------------------------------------------------------
    def encode(self, images: Tensor) -> Tensor:
        """The annotation grid ``(B, H', W', D)`` of images ``(B, C, H, W)``."""
        check_tensor("images", images)
        check_floating("images", images)
        c = self.config.encoder.channels
        if images.dim() != 4 or images.shape[1] != c:
            raise ValueError(f"images must be (batch, {c}, height, width), got shape {tuple(images.shape)}")
        r = self.encoder.reduction
        if images.shape[2] < r or images.shape[3] < r:
            raise ValueError(f"images must be at least {r}x{r} pixels for {len(self.config.encoder.widths)}"
                             f" pooling blocks, got {images.shape[2]}x{images.shape[3]}")  # fmt: skip
        return self.encoder(images)

    def _begin(self, images: Tensor) -> tuple[DecoderCarry, int]:
        grid = self.encode(images)  # (B, H', W', D)
        B = grid.shape[0]
        values = grid.flatten(1, 2)  # (B, L, D)
        mask = torch.ones(values.shape[:2], dtype=torch.bool, device=values.device)
        state = self.bridge(values.mean(1))  # h_0, c_0 from the mean annotation
        memory = Memory(values, self.attention.keys(values), mask)
        return DecoderCarry(state, top_output(state), None, memory), B

    # --- one decoding step ---------------------------------------------------------------
    def _step(self, tokens: Tensor, carry: DecoderCarry) -> tuple[Tensor, DecoderCarry, Tensor]:
        embedded = self.embedding(tokens)  # (B, E)
        context, weights = self.attention(carry.output[:, None], carry.memory)  # (B, 1, D), (B, 1, L)
        context = context[:, 0]
        if self.beta is not None:
            context = torch.sigmoid(self.beta(carry.output)) * context  # beta_t z_t
        y, state = self.decoder.step(torch.cat([embedded, context], dim=-1), carry.state)  # (B, H)
        out = torch.tanh(self.readout(torch.cat([y, context, embedded], dim=-1)))  # deep output
        return self.head(self.dropout(out)), carry._replace(state=state, output=y), weights[:, 0]

    # --- training --------------------------------------------------------------------------
    def forward(
        self, images: Tensor, target: Tensor, teacher_forcing: float = 1.0, return_attention: bool = False
    ) -> Tensor | tuple[Tensor, Tensor]:
        carry, batch = self._begin(images)
        target = check_token_tensor("target", target, self.vocab_size)
        if target.shape[0] != batch:
            raise ValueError(f"target must have one row per image: expected {batch}, got {target.shape[0]}")
        logits, weights = self._decode_loop(target, carry, check_teacher_forcing(teacher_forcing))
        if not return_attention:
            return logits
        h, w = self._grid_size(images)
        return logits, weights.unflatten(-1, (h, w))  # (B, T, H', W')

    def _grid_size(self, images: Tensor) -> tuple[int, int]:
        r = self.encoder.reduction
        return images.shape[2] // r, images.shape[3] // r

    @torch.no_grad()
    def attend(self, images: Tensor, tokens: Tensor) -> Tensor:
        """The attention maps ``(B, T, H', W')`` with which the model reads each of ``tokens``
        (``(B, T)``, e.g. :meth:`generate`'s output), in eval mode."""
        was_training = self.training
        self.eval()
        try:
            return self(images, tokens, return_attention=True)[1]
        finally:
            self.train(was_training)

    # --- decoding --------------------------------------------------------------------------
    def generate(
        self,
        images: Tensor,
        *,
        max_length: int | None = None,
        temperature: float = 0.0,
        top_k: int | None = None,
        top_p: float | None = None,
        beam_size: int = 1,
        length_penalty: float = 1.0,
        generator: torch.Generator | None = None,
    ) -> Decoded:
        """One caption per image: greedy at temperature 0, sampled above, beam search with
        ``beam_size > 1`` (its best hypothesis)."""
        result = self._decode(
            lambda: self._begin(images), beams=beam_size > 1, max_length=max_length, beam_size=beam_size,
            length_penalty=length_penalty, temperature=temperature, top_k=top_k, top_p=top_p, generator=generator,
        )  # fmt: skip
        return result.best() if isinstance(result, Beams) else result

    def beam_search(
        self, images: Tensor, *, beam_size: int = 4, max_length: int | None = None, length_penalty: float = 1.0
    ) -> Beams:
        """Every hypothesis of a beam search, best first (:func:`rnnkit.models.beam.beam_search`)."""
        return self._decode(
            lambda: self._begin(images), beams=True, max_length=max_length, beam_size=beam_size,
            length_penalty=length_penalty, temperature=0.0, top_k=None, top_p=None, generator=None,
        )  # fmt: skip
