"""Many-to-many with unaligned lengths: an encoder-decoder with attention (sequence to sequence).

The encoder (any registered layer, optionally bidirectional) reads the source; a bridge maps its
final states to the decoder's initial state; at each step the decoder attends over the encoder's
outputs at the valid source positions and writes the next token (:class:`TokenDecoder`). Training
is teacher-forced, with scheduled sampling as an option (:class:`TeacherForcingSchedule`).

Attention (``attention=``):

* ``"bahdanau"`` -- additive (Bahdanau et al. 2015, appendix A.1.2): the previous decoder state
  ``s_{t-1}`` queries ``e_tj = v^T tanh(W s_{t-1} + U h_j)``; the context ``c_t`` is read
  together with ``y_{t-1}`` to give ``s_t``, and ``tanh(W_o [s_t; c_t; E y_{t-1}])`` the logits
  (their deep output, section A.2.2, with tanh in place of maxout).
* ``"dot"`` and ``"general"`` -- multiplicative (Luong et al. 2015, section 3.1): the new decoder
  state ``h_t`` queries ``h_t^T h_s`` or ``h_t^T W_a h_s``; ``~h_t = tanh(W_c [c_t; h_t])`` (their
  eq. 5) gives the logits and, with ``input_feeding`` (section 3.3), is read with the next token.
* ``"none"`` -- no attention: the bridged state is all the decoder knows of the source
  (Sutskever et al. 2014; Cho et al. 2014).

Padded source positions (``source_lengths``) get zero attention weight, and the encoder reads each
sequence as if it were alone, so a sequence's outputs never depend on the padding of its batch.
"""

from __future__ import annotations

import math
import numbers
from dataclasses import dataclass, field
from typing import Literal, NamedTuple

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from .._validation import check_bool, check_choice, check_floating, check_lengths, check_positive_int, check_tensor
from ._generator import (
    DecoderCarry,
    StateBridge,
    TokenDecoder,
    check_decoder_config,
    check_teacher_forcing,
    check_token_tensor,
    layer_state_layout,
    top_output,
)
from ._parts import EncoderConfig, InputConfig, InputLayer, build_encoder
from ._registry import register_model
from .beam import Beams, Decoded, check_tokens

ATTENTION = ("bahdanau", "dot", "general", "none")
SCHEDULES = ("constant", "linear", "exponential", "inverse_sigmoid")


@dataclass(frozen=True)
class TeacherForcingSchedule:
    """The probability of reading the true previous token at training step ``i`` (Bengio et al. 2015).

    Section 2.4 of the paper decays it from 1 towards 0 over training, "scheduled sampling":

    * ``constant``: ``start`` at every step;
    * ``linear``: ``max(minimum, start - (start - minimum) * i / steps)`` (the paper's ``max(eps, k - c i)``);
    * ``exponential``: ``max(minimum, k ** i)``, ``0 < k < 1``;
    * ``inverse_sigmoid``: ``max(minimum, k / (k + exp(i / k)))``, ``k >= 1`` (0.5 at ``i = k ln k``).

    >>> schedule = TeacherForcingSchedule("linear", steps=1000, minimum=0.25)
    >>> [schedule(i) for i in (0, 500, 1000, 5000)]
    [1.0, 0.625, 0.25, 0.25]
    >>> round(TeacherForcingSchedule("inverse_sigmoid", k=100.0)(461), 2)
    0.5
    """

    kind: Literal["constant", "linear", "exponential", "inverse_sigmoid"] = "constant"
    start: float = 1.0
    minimum: float = 0.0
    steps: int = 10_000
    k: float | None = None

    def __post_init__(self) -> None:
        check_choice("kind", self.kind, SCHEDULES)
        for name in ("start", "minimum"):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, numbers.Real) or not 0.0 <= value <= 1.0:
                raise ValueError(f"{name} must be a probability in [0, 1], got {value!r}")
        if self.kind == "linear":
            check_positive_int("steps", self.steps)
            if self.minimum > self.start:
                raise ValueError(
                    f"minimum must be <= start for a linear decay, got minimum={self.minimum}, start={self.start}"
                )
        k = self.k
        if self.kind == "exponential" and not (isinstance(k, numbers.Real) and not isinstance(k, bool) and 0 < k < 1):
            raise ValueError(f"k must be a number in (0, 1) for an exponential decay, got {k!r}")
        if self.kind == "inverse_sigmoid" and not (isinstance(k, numbers.Real) and not isinstance(k, bool) and k >= 1):
            raise ValueError(f"k must be a number >= 1 for an inverse sigmoid decay, got {k!r}")

    def __call__(self, step: int) -> float:
        if isinstance(step, bool) or not isinstance(step, numbers.Integral) or step < 0:
            raise ValueError(f"step must be an integer >= 0, got {step!r}")
        if self.kind == "constant":
            return float(self.start)
        if self.kind == "linear":
            value = self.start - (self.start - self.minimum) * step / self.steps
        elif self.kind == "exponential":
            value = self.k**step
        else:
            value = self.k / (self.k + math.exp(min(step / self.k, 700.0)))  # exp overflows past ~709
        return float(max(self.minimum, value))


class Memory(NamedTuple):
    """The encoded source, batch first: what the decoder attends to."""

    values: Tensor  # (B, S, M) the encoder's outputs
    keys: Tensor | None  # (B, S, K) their projection for scoring, computed once per source
    mask: Tensor  # (B, S) True at valid source positions


class Attention(nn.Module):
    """Scores of queries against the source, a softmax over valid positions, and the context.

    ``forward(query (B, T, Q), memory) -> (context (B, T, M), weights (B, T, S))``; a step of the
    decoder is ``T = 1``, the parallel teacher-forced path of Luong attention ``T`` steps at once.
    """

    def __init__(self, kind: str, query_size: int, memory_size: int, size: int) -> None:
        super().__init__()
        self.kind = kind
        if kind == "bahdanau":
            self.query = nn.Linear(query_size, size, bias=False)  # W
            self.key = nn.Linear(memory_size, size)  # U, with the one bias the sum needs
            self.score = nn.Linear(size, 1, bias=False)  # v
        elif kind == "general":
            self.key = nn.Linear(memory_size, query_size, bias=False)  # W_a, applied to h_s once
        elif query_size != memory_size:
            raise ValueError(
                "attention='dot' needs the decoder's output size to equal the encoder's output size"
                f" (times 2 when bidirectional): expected {memory_size}, got {query_size}; use 'general'"
            )

    def keys(self, values: Tensor) -> Tensor | None:
        return self.key(values) if self.kind in ("bahdanau", "general") else None  # (B, S, K)

    def forward(self, query: Tensor, memory: Memory) -> tuple[Tensor, Tensor]:
        if self.kind == "bahdanau":
            hidden = torch.tanh(self.query(query)[:, :, None] + memory.keys[:, None])  # (B, T, S, A)
            scores = self.score(hidden).squeeze(-1)  # (B, T, S)
        else:
            keys = memory.values if memory.keys is None else memory.keys  # (B, S, Q)
            scores = query @ keys.transpose(1, 2)  # (B, T, Q) @ (B, Q, S) -> (B, T, S)
        scores = scores.masked_fill(~memory.mask[:, None], float("-inf"))  # padding gets weight 0
        weights = F.softmax(scores, dim=-1)  # (B, T, S)
        return weights @ memory.values, weights  # (B, T, M), (B, T, S)


@dataclass(frozen=True)
class EncoderDecoderConfig:
    """An encoder-decoder: the source's input, the two recurrent stacks, attention and the tokens.

    ``bridge``: ``"linear"`` starts the decoder from ``tanh(W [final encoder states] + b)`` (the top
    layer, both directions, every state component); ``"zeros"`` from zeros. ``attention_size``
    is the hidden size of additive scoring (default: the decoder's hidden size).
    ``input_feeding`` applies to Luong attention (``"dot"``, ``"general"``) only: Bahdanau's
    decoder always reads the context, and without attention there is nothing to feed.
    ``tie_embeddings`` shares one matrix between the decoder's input embedding and its output
    layer (Press & Wolf 2017; Inan et al. 2017): it needs ``embedding_dim`` equal to the size the
    output layer reads (the decoder's hidden size with attention, its output size without).
    """

    source: InputConfig = field(default_factory=lambda: InputConfig(vocab_size=32, embedding_dim=32))
    target_vocab_size: int = 32
    embedding_dim: int = 32
    encoder: EncoderConfig = field(default_factory=lambda: EncoderConfig(cell="gru", hidden_size=128))
    decoder: EncoderConfig = field(default_factory=lambda: EncoderConfig(cell="gru", hidden_size=128))
    attention: Literal["bahdanau", "dot", "general", "none"] = "bahdanau"
    attention_size: int | None = None
    input_feeding: bool = True
    bridge: Literal["linear", "zeros"] = "linear"
    start_token: int = 1
    end_token: int = 2
    pad_token: int = 0
    max_length: int = 100
    head_dropout: float = 0.0
    tie_embeddings: bool = False


@register_model("encoder_decoder")
class EncoderDecoder(TokenDecoder):
    """Sequence to sequence with attention; see the module docstring.

    ``forward(source, target, source_lengths=None, teacher_forcing=1.0, return_attention=False)``
    returns logits ``(B, T, V)`` aligned with ``target`` (and the attention weights ``(B, T, S)``).
    Luong attention without input feeding, and no attention, run the decoder over the whole
    target in one layer call when ``teacher_forcing`` is 1; everything else steps.
    ``generate(source, source_lengths=None, ...)`` decodes greedily, by sampling, or by beam
    search with ``beam_size > 1``.

    >>> import torch
    >>> model = EncoderDecoder(EncoderDecoderConfig(source=InputConfig(vocab_size=12), target_vocab_size=12))
    >>> source, lengths = torch.randint(3, 12, (2, 7)), torch.tensor([7, 4])
    >>> logits, weights = model(source, torch.randint(3, 12, (2, 5)), lengths, return_attention=True)
    >>> logits.shape, weights.shape, weights[1, :, 4:].abs().sum().item()
    (torch.Size([2, 5, 12]), torch.Size([2, 5, 7]), 0.0)
    >>> model.generate(source, lengths, beam_size=3, max_length=6).tokens.shape[0]
    2
    """

    config_class = EncoderDecoderConfig

    def __init__(self, config: EncoderDecoderConfig) -> None:
        super().__init__()
        self.config = config
        self.vocab_size = check_positive_int("target_vocab_size", config.target_vocab_size)
        check_positive_int("embedding_dim", config.embedding_dim)
        check_tokens(config.start_token, config.end_token, config.pad_token, config.target_vocab_size)
        self.start_token, self.end_token, self.pad_token = config.start_token, config.end_token, config.pad_token
        self.max_length = check_positive_int("max_length", config.max_length)
        kind = check_choice("attention", config.attention, ATTENTION)
        check_choice("bridge", config.bridge, ("linear", "zeros"))
        check_bool("input_feeding", config.input_feeding)
        if config.attention_size is not None:
            check_positive_int("attention_size", config.attention_size)
        if kind == "none" and config.bridge == "zeros":
            raise ValueError(
                "bridge must be 'linear' when attention='none': nothing else carries the source, got 'zeros'"
            )
        check_decoder_config(config.decoder)
        self.feeds_attentional = kind in ("dot", "general") and config.input_feeding
        hidden = config.decoder.hidden_size  # the size of ~h_t, Luong's attentional vector

        self.source = InputLayer(config.source)
        self.encoder = build_encoder(config.encoder, self.source.output_size)
        memory_size = self.encoder.output_size
        decoder_input = config.embedding_dim + (memory_size if kind == "bahdanau" else 0)
        decoder_input += hidden if self.feeds_attentional else 0
        self.embedding = nn.Embedding(config.target_vocab_size, config.embedding_dim)
        self.decoder = build_encoder(config.decoder, decoder_input)
        _, _, output_size = layer_state_layout(self.decoder)
        self.output_size = output_size

        _, encoder_sizes, _ = layer_state_layout(self.encoder)
        directions = 2 if self.encoder.bidirectional else 1
        self.bridge = StateBridge(directions * sum(encoder_sizes), self.decoder) if config.bridge == "linear" else None
        self.attention = None
        if kind != "none":
            self.attention = Attention(kind, output_size, memory_size, config.attention_size or hidden)
            readout = output_size + memory_size + (config.embedding_dim if kind == "bahdanau" else 0)
            self.readout = nn.Linear(readout, hidden)  # W_o [s_t; c_t; E y] or W_c [c_t; h_t]
        self.dropout = nn.Dropout(config.head_dropout)
        head_input = hidden if kind != "none" else output_size
        self.head = nn.Linear(head_input, config.target_vocab_size)
        if check_bool("tie_embeddings", config.tie_embeddings):
            if head_input != config.embedding_dim:
                raise ValueError(
                    "tie_embeddings needs embedding_dim equal to the size the output layer reads (the decoder's"
                    f" hidden size{' with attention' if kind != 'none' else ''}): expected {head_input},"
                    f" got {config.embedding_dim}"
                )
            self.head.weight = self.embedding.weight  # (V, E): one matrix reads and writes the tokens

    # --- encoding ----------------------------------------------------------------------
    def _begin(self, source: Tensor, source_lengths: Tensor | None) -> tuple[DecoderCarry, int]:
        check_tensor("source", source)
        if self.source.embedding is not None:
            source = check_token_tensor("source", source, self.config.source.vocab_size)
        elif source.dim() != 3 or source.shape[-1] != self.source.output_size:
            raise ValueError(
                f"source must be (batch, steps, {self.source.output_size}) features, got shape {tuple(source.shape)}"
            )
        else:
            check_floating("source", source)
        B, S = source.shape[:2]
        if S < 1:
            raise ValueError("source must have at least one step, got 0")
        lengths = None if source_lengths is None else check_lengths(source_lengths, B, S, source.device)
        values, final = self.encoder(self.source(source), lengths=lengths)  # (B, S, M)
        steps = torch.arange(S, device=source.device)
        if lengths is None:
            mask = torch.ones(B, S, dtype=torch.bool, device=source.device)
        else:
            mask = steps < lengths[:, None]  # (B, S)
        memory = Memory(values, self.attention.keys(values) if self.attention is not None else None, mask)
        state = self.bridge(self._summary(final)) if self.bridge is not None else None
        output = top_output(state) if state is not None else values.new_zeros(B, self.output_size)
        feed = values.new_zeros(B, self.config.decoder.hidden_size) if self.feeds_attentional else None
        return DecoderCarry(state, output, feed, memory), B

    def _summary(self, final) -> Tensor:
        """The encoder's top-layer final states, both directions, every component: ``(B, D * sum(sizes))``."""
        directions = 2 if self.encoder.bidirectional else 1
        parts = final if isinstance(final, tuple) else (final,)
        top = [p[-directions:].transpose(0, 1).flatten(1) for p in parts]  # each (L*D, B, size) -> (B, D*size)
        return torch.cat(top, dim=-1)

    # --- one decoding step ---------------------------------------------------------------
    def _step(self, tokens: Tensor, carry: DecoderCarry) -> tuple[Tensor, DecoderCarry, Tensor | None]:
        embedded = self.embedding(tokens)  # (B, E)
        kind = self.config.attention
        if kind == "none":
            y, state = self.decoder.step(embedded, carry.state)  # (B, H)
            return self.head(self.dropout(y)), carry._replace(state=state, output=y), None
        if kind == "bahdanau":  # s_{t-1} queries, then c_t is read with y_{t-1}
            context, weights = self.attention(carry.output[:, None], carry.memory)  # (B, 1, M), (B, 1, S)
            context = context[:, 0]
            y, state = self.decoder.step(torch.cat([embedded, context], dim=-1), carry.state)  # (B, H)
            out = torch.tanh(self.readout(torch.cat([y, context, embedded], dim=-1)))  # deep output
            return self.head(self.dropout(out)), carry._replace(state=state, output=y), weights[:, 0]
        # Luong: h_t queries after the step; input feeding reads ~h_{t-1} with the token
        x = embedded if carry.feed is None else torch.cat([embedded, carry.feed], dim=-1)
        y, state = self.decoder.step(x, carry.state)  # (B, H)
        context, weights = self.attention(y[:, None], carry.memory)  # (B, 1, M), (B, 1, S)
        attentional = torch.tanh(self.readout(torch.cat([context[:, 0], y], dim=-1)))  # eq. 5
        feed = attentional if self.feeds_attentional else None
        return self.head(self.dropout(attentional)), carry._replace(state=state, output=y, feed=feed), weights[:, 0]

    # --- training --------------------------------------------------------------------------
    def forward(
        self,
        source: Tensor,
        target: Tensor,
        source_lengths: Tensor | None = None,
        teacher_forcing: float = 1.0,
        return_attention: bool = False,
    ) -> Tensor | tuple[Tensor, Tensor | None]:
        carry, batch = self._begin(source, source_lengths)
        target = check_token_tensor("target", target, self.vocab_size)
        if target.shape[0] != batch:
            raise ValueError(f"target must have one row per source: expected {batch}, got {target.shape[0]}")
        teacher_forcing = check_teacher_forcing(teacher_forcing)
        if teacher_forcing == 1.0 and self.config.attention != "bahdanau" and not self.feeds_attentional:
            logits, weights = self._parallel(target, carry)
        else:
            logits, weights = self._decode_loop(target, carry, teacher_forcing)
        return (logits, weights) if return_attention else logits

    def _parallel(self, target: Tensor, carry: DecoderCarry) -> tuple[Tensor, Tensor | None]:
        """The teacher-forced decoder over all steps at once, when no step reads the last one's attention."""
        y, _ = self.decoder(self.embedding(self.shift_right(target)), carry.state)  # (B, T, H)
        if self.attention is None:
            return self.head(self.dropout(y)), None
        context, weights = self.attention(y, carry.memory)  # (B, T, M), (B, T, S)
        attentional = torch.tanh(self.readout(torch.cat([context, y], dim=-1)))  # (B, T, hidden)
        return self.head(self.dropout(attentional)), weights

    # --- decoding --------------------------------------------------------------------------
    def generate(
        self,
        source: Tensor,
        source_lengths: Tensor | None = None,
        *,
        max_length: int | None = None,
        temperature: float = 0.0,
        top_k: int | None = None,
        top_p: float | None = None,
        beam_size: int = 1,
        length_penalty: float = 1.0,
        penalty: str = "power",
        generator: torch.Generator | None = None,
    ) -> Decoded:
        """One output sequence per source: greedy at temperature 0, sampled above, beam search
        with ``beam_size > 1`` (its best hypothesis; :meth:`beam_search` returns them all)."""
        result = self._decode(
            lambda: self._begin(source, source_lengths), beams=beam_size > 1, max_length=max_length,
            beam_size=beam_size, length_penalty=length_penalty, penalty=penalty, temperature=temperature,
            top_k=top_k, top_p=top_p, generator=generator,
        )  # fmt: skip
        return result.best() if isinstance(result, Beams) else result

    def beam_search(
        self,
        source: Tensor,
        source_lengths: Tensor | None = None,
        *,
        beam_size: int = 4,
        max_length: int | None = None,
        length_penalty: float = 1.0,
        penalty: str = "power",
    ) -> Beams:
        """Every hypothesis of a beam search, best first (:func:`rnnkit.models.beam.beam_search`)."""
        return self._decode(
            lambda: self._begin(source, source_lengths), beams=True, max_length=max_length, beam_size=beam_size,
            length_penalty=length_penalty, penalty=penalty, temperature=0.0, top_k=None, top_p=None, generator=None,
        )  # fmt: skip
