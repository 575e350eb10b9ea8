"""One-to-many: a conditional generator, and the token decoder it shares with the encoder-decoder.

:class:`TokenDecoder` holds what every model that writes a token sequence needs: teacher-forced
training with scheduled sampling, and decoding by greedy, sampled or beam search
(:mod:`rnnkit.models.beam`). A subclass says how decoding starts (``_begin``) and what one step
computes (``_step``); :class:`OneToMany` and :class:`~rnnkit.models.EncoderDecoder` are the two.

Targets are ``(B, T)`` token ids: the sequence, its end token, then ``pad_token``. The decoder
reads ``start_token`` followed by the target shifted right by one (teacher forcing), so the
logits ``(B, T, V)`` line up with the target, step for step.
"""

from __future__ import annotations

import numbers
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, Literal, NamedTuple

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from .._validation import check_choice, check_floating, check_positive_int, check_tensor
from ._parts import EncoderConfig, InputConfig, InputLayer, build_encoder
from ._registry import register_model
from .beam import Beams, Decoded, beam_search, check_tokens, sample_search
from .sampling import check_sampling

INTEGER_TYPES = (torch.int64, torch.int32, torch.int16, torch.uint8)


def _select(value: Any, index: Tensor, dim: int) -> Any:
    """Rows ``index`` of every tensor in a (nested tuple) ``value``, along ``dim``."""
    if value is None:
        return None
    if isinstance(value, Tensor):
        return value.index_select(dim, index)
    return type(value)(*(_select(v, index, dim) for v in value)) if hasattr(value, "_fields") else tuple(
        _select(v, index, dim) for v in value
    )


class DecoderCarry(NamedTuple):
    """Everything one decoding step hands the next."""

    state: Any  # the decoder layer's state: a tensor, or a tuple of them, each (L, B, size)
    output: Tensor | None = None  # (B, H) the top layer's last output: the attention query
    feed: Tensor | None = None  # (B, F) fed beside each token: the condition, or the last attentional vector
    memory: Any = None  # what the decoder attends to (the encoder's outputs), batch first

    def select(self, index: Tensor) -> DecoderCarry:
        """The carry of rows ``index`` ``(M,)``: beam search copies and drops hypotheses with it."""
        return DecoderCarry(
            _select(self.state, index, 1), _select(self.output, index, 0),
            _select(self.feed, index, 0), _select(self.memory, index, 0),
        )  # fmt: skip


def check_decoder_config(config: EncoderConfig, name: str = "decoder") -> None:
    if config.bidirectional:
        raise ValueError(f"{name}.bidirectional must be False: a decoder writes left to right, got True")


def layer_state_layout(layer: nn.Module) -> tuple[int, tuple[int, ...], int]:
    """A layer's ``(num_layers, state sizes per component, output size)``."""
    return layer.num_layers, layer.state_sizes, layer.cell(0).output_size


def as_layer_state(parts: tuple[Tensor, ...]) -> Any:
    """State components ``(L, B, size)`` in the form the layers take: a tensor if there is one."""
    return parts[0] if len(parts) == 1 else tuple(parts)


def top_output(state: Any) -> Tensor:
    """The top layer's output from a layer state (the first component: h)."""
    return (state[0] if isinstance(state, tuple) else state)[-1]  # (B, H)


class StateBridge(nn.Module):
    """A vector ``(B, F)`` -> the decoder's initial state: ``tanh(W v + b)`` for every component and layer.

    Bahdanau et al. (2015, appendix A.2.2) start their decoder this way from the encoder's
    backward state, ``s_0 = tanh(W_s h_1)``; Sutskever et al. (2014) pass the encoder's last state
    as it is, which needs equal sizes, where this works for any pair of cells.
    """

    def __init__(self, in_features: int, decoder: nn.Module) -> None:
        super().__init__()
        self.num_layers, self.sizes, _ = layer_state_layout(decoder)
        self.linear = nn.Linear(in_features, self.num_layers * sum(self.sizes))

    def forward(self, vector: Tensor) -> Any:
        B = vector.shape[0]
        flat = torch.tanh(self.linear(vector))  # (B, L * sum(sizes))
        parts = flat.view(B, self.num_layers, -1).split(list(self.sizes), dim=-1)  # each (B, L, size)
        return as_layer_state(tuple(p.transpose(0, 1).contiguous() for p in parts))  # each (L, B, size)


def check_token_tensor(name: str, value: object, vocab_size: int, dims: int = 2) -> Tensor:
    check_tensor(name, value)
    if value.dtype not in INTEGER_TYPES:
        raise TypeError(f"{name} must hold integer token ids, got dtype {value.dtype}")
    if value.dim() != dims or value.shape[-1] < 1:
        shape = "(batch, steps)" if dims == 2 else "(batch,)"
        raise ValueError(f"{name} must be {shape} token ids with at least one entry, got shape {tuple(value.shape)}")
    if value.numel() and (int(value.min()) < 0 or int(value.max()) >= vocab_size):
        raise ValueError(
            f"{name} must hold token ids in [0, {vocab_size}), got values from {int(value.min())} to {int(value.max())}"
        )
    return value.long()


def check_teacher_forcing(value: object) -> float:
    if isinstance(value, bool) or not isinstance(value, numbers.Real) or not 0.0 <= float(value) <= 1.0:
        raise ValueError(f"teacher_forcing must be a probability in [0, 1], got {value!r}")
    return float(value)


class TokenDecoder(nn.Module):
    """Base of the token-writing models; see the module docstring.

    Subclasses set ``self.vocab_size`` and the token ids, and implement ``_begin(...) ->
    (carry, batch_size)`` and ``_step(tokens (B,), carry) -> (logits (B, V), carry, attention)``,
    where ``attention`` is ``(B, S)`` weights or None.
    """

    vocab_size: int
    start_token: int
    end_token: int
    pad_token: int
    max_length: int

    def _step(self, tokens: Tensor, carry: DecoderCarry) -> tuple[Tensor, DecoderCarry, Tensor | None]:
        raise NotImplementedError

    def _decode_loop(
        self, target: Tensor, carry: DecoderCarry, teacher_forcing: float
    ) -> tuple[Tensor, Tensor | None]:
        """Teacher-forced logits ``(B, T, V)``, one step at a time, with scheduled sampling.

        With probability ``1 - teacher_forcing`` per sequence and step, the decoder reads a token
        sampled from its own previous distribution instead of the true one (Bengio et al. 2015,
        section 2: training on its own mistakes closes the gap to generation).
        """
        B, T = target.shape
        token = torch.full((B,), self.start_token, dtype=torch.long, device=target.device)
        logits_steps, attention_steps = [], []
        for t in range(T):
            if t > 0:
                token = target[:, t - 1]
                if teacher_forcing < 1.0:
                    guess = torch.multinomial(F.softmax(logits.detach().float(), dim=-1), 1).squeeze(1)  # (B,)
                    truth = torch.rand(B, device=target.device) < teacher_forcing
                    token = torch.where(truth, token, guess)
            logits, carry, attention = self._step(token, carry)  # (B, V)
            logits_steps.append(logits)
            attention_steps.append(attention)
        weights = torch.stack(attention_steps, dim=1) if attention_steps[0] is not None else None  # (B, T, S)
        return torch.stack(logits_steps, dim=1), weights

    def shift_right(self, target: Tensor) -> Tensor:
        """The decoder's teacher-forced input: ``start_token``, then the target less its last step."""
        start = target.new_full((target.shape[0], 1), self.start_token)
        return torch.cat([start, target[:, :-1]], dim=1)  # (B, T)

    def _decode(
        self,
        begin: Callable[[], tuple[DecoderCarry, int]],
        *,
        beams: bool,
        max_length: int | None,
        beam_size: int,
        length_penalty: float,
        temperature: float,
        penalty: str = "power",
        top_k: int | None,
        top_p: float | None,
        generator: torch.Generator | None,
    ) -> Decoded | Beams:
        """Start the carry with ``begin`` and search, in eval mode: every beam with ``beams``."""
        check_sampling(temperature, top_k, top_p)
        check_positive_int("beam_size", beam_size)
        if beam_size > 1 and (temperature != 0 or top_k is not None or top_p is not None):
            raise ValueError(
                "beam_size > 1 searches deterministically: temperature must be 0 and top_k, top_p None,"
                f" got beam_size={beam_size}, temperature={temperature}, top_k={top_k}, top_p={top_p}"
            )
        length = self.max_length if max_length is None else check_positive_int("max_length", max_length)
        tokens = dict(start_token=self.start_token, end_token=self.end_token, pad_token=self.pad_token)
        device = next(self.parameters()).device

        def step(token: Tensor, carry: DecoderCarry) -> tuple[Tensor, DecoderCarry]:
            logits, carry, _ = self._step(token, carry)
            return logits, carry

        was_training = self.training
        self.eval()
        try:
            with torch.no_grad():
                carry, batch = begin()
            if beams:
                return beam_search(
                    step, DecoderCarry.select, carry, batch, beam_size=beam_size, max_length=length,
                    length_penalty=length_penalty, penalty=penalty, device=device, **tokens,
                )  # fmt: skip
            return sample_search(
                step, carry, batch, max_length=length, temperature=temperature, top_k=top_k,
                top_p=top_p, generator=generator, device=device, **tokens,
            )  # fmt: skip
        finally:
            self.train(was_training)


@dataclass(frozen=True)
class OneToManyConfig:
    """A conditional generator: a fixed-size condition in, a token sequence out.

    ``condition`` is a feature vector (``features``, through a Linear) or a class id
    (``vocab_size`` classes, through an Embedding). ``condition_mode``: ``"state"`` sets the
    decoder's initial state from it, ``"input"`` feeds it beside every token, ``"both"`` does both.
    """

    condition: InputConfig = field(default_factory=lambda: InputConfig(vocab_size=10, embedding_dim=32))
    vocab_size: int = 32
    embedding_dim: int = 32
    decoder: EncoderConfig = field(default_factory=lambda: EncoderConfig(cell="gru", hidden_size=128))
    condition_mode: Literal["state", "input", "both"] = "state"
    start_token: int = 1
    end_token: int = 2
    pad_token: int = 0
    max_length: int = 50
    head_dropout: float = 0.0


@register_model("one_to_many")
class OneToMany(TokenDecoder):
    """One-to-many: a vector or a class id conditions a recurrent decoder that writes tokens.

    ``forward(condition, target, teacher_forcing=1.0)`` returns logits ``(B, T, V)`` aligned with
    ``target`` (trained by cross-entropy with ``pad_token`` ignored); with teacher forcing 1 the
    whole sequence runs in one layer call, below 1 step by step with scheduled sampling.
    ``generate(condition, ...)`` decodes greedily, by sampling (temperature, top-k, top-p) or by
    beam search, up to the end token or ``max_length``.

    >>> import torch
    >>> model = OneToMany(OneToManyConfig(condition=InputConfig(features=8), vocab_size=20))
    >>> model(torch.randn(4, 8), torch.randint(3, 20, (4, 6))).shape
    torch.Size([4, 6, 20])
    >>> out = model.generate(torch.randn(4, 8), max_length=5, temperature=0.8, top_k=5)
    >>> out.tokens.shape[0], bool((out.lengths <= 5).all())
    (4, True)
    """

    config_class = OneToManyConfig

    def __init__(self, config: OneToManyConfig) -> None:
        super().__init__()
        self.config = config
        self.vocab_size = check_positive_int("vocab_size", config.vocab_size)
        check_positive_int("embedding_dim", config.embedding_dim)
        check_tokens(config.start_token, config.end_token, config.pad_token, config.vocab_size)
        self.start_token, self.end_token, self.pad_token = config.start_token, config.end_token, config.pad_token
        self.max_length = check_positive_int("max_length", config.max_length)
        check_choice("condition_mode", config.condition_mode, ("state", "input", "both"))
        check_decoder_config(config.decoder)
        self.condition = InputLayer(config.condition)
        size = self.condition.output_size
        self.feeds_condition = config.condition_mode in ("input", "both")
        self.embedding = nn.Embedding(config.vocab_size, config.embedding_dim)
        self.decoder = build_encoder(config.decoder, config.embedding_dim + (size if self.feeds_condition else 0))
        self.bridge = StateBridge(size, self.decoder) if config.condition_mode in ("state", "both") else None
        self.dropout = nn.Dropout(config.head_dropout)
        self.head = nn.Linear(layer_state_layout(self.decoder)[2], config.vocab_size)

    def _begin(self, condition: Tensor) -> tuple[DecoderCarry, int]:
        check_tensor("condition", condition)
        if self.condition.embedding is not None:
            condition = check_token_tensor("condition", condition, self.config.condition.vocab_size, dims=1)
        elif condition.dim() != 2 or condition.shape[1] != self.condition.output_size:
            raise ValueError(
                f"condition must be (batch, {self.condition.output_size}) features, got shape {tuple(condition.shape)}"
            )
        else:
            check_floating("condition", condition)
        vector = self.condition(condition)  # (B, C)
        state = self.bridge(vector) if self.bridge is not None else None
        return DecoderCarry(state, None, vector if self.feeds_condition else None), vector.shape[0]

    def _step(self, tokens: Tensor, carry: DecoderCarry) -> tuple[Tensor, DecoderCarry, None]:
        x = self.embedding(tokens)  # (B, E)
        if carry.feed is not None:
            x = torch.cat([x, carry.feed], dim=-1)  # (B, E + C)
        y, state = self.decoder.step(x, carry.state)  # (B, H)
        return self.head(self.dropout(y)), carry._replace(state=state), None

    def forward(self, condition: Tensor, target: Tensor, teacher_forcing: float = 1.0) -> Tensor:
        carry, batch = self._begin(condition)
        target = check_token_tensor("target", target, self.vocab_size)
        if target.shape[0] != batch:
            raise ValueError(f"target must have one row per condition: expected {batch}, got {target.shape[0]}")
        if check_teacher_forcing(teacher_forcing) < 1.0:
            return self._decode_loop(target, carry, teacher_forcing)[0]
        x = self.embedding(self.shift_right(target))  # (B, T, E)
        if carry.feed is not None:
            x = torch.cat([x, carry.feed[:, None].expand(-1, x.shape[1], -1)], dim=-1)  # (B, T, E + C)
        y, _ = self.decoder(x, carry.state)  # (B, T, H)
        return self.head(self.dropout(y))

    def generate(
        self,
        condition: Tensor,
        *,
        max_length: int | None = None,
        temperature: float = 0.0,
        top_k: int | None = None,
        top_p: float | None = None,
        beam_size: int = 1,
        length_penalty: float = 1.0,
        generator: torch.Generator | None = None,
    ) -> Decoded:
        """Write one sequence per condition: greedy at temperature 0, sampled above, beam search
        with ``beam_size > 1`` (its best hypothesis; :meth:`beam_search` returns them all)."""
        result = self._decode(
            lambda: self._begin(condition), beams=beam_size > 1, max_length=max_length, beam_size=beam_size,
            length_penalty=length_penalty, temperature=temperature, top_k=top_k, top_p=top_p, generator=generator,
        )  # fmt: skip
        return result.best() if isinstance(result, Beams) else result

    def beam_search(
        self, condition: Tensor, *, beam_size: int = 4, max_length: int | None = None, length_penalty: float = 1.0
    ) -> Beams:
        """Every hypothesis of a beam search, best first (:func:`rnnkit.models.beam.beam_search`)."""
        return self._decode(
            lambda: self._begin(condition), beams=True, max_length=max_length, beam_size=beam_size,
            length_penalty=length_penalty, temperature=0.0, top_k=None, top_p=None, generator=None,
        )  # fmt: skip
