"""Export-friendly graphs of a recurrent model: the state an explicit input and output.

:class:`SequenceGraph` runs a whole (padded) sequence, :class:`StepGraph` one time step. Both run
the cells' own step math (the step loop of :mod:`rnnkit.scan`, the reference every fast route is
held to) with no Python decision on tensor values, so a tracer records one graph that is right
for every batch size and every ``lengths``: padding is masked, never packed. The state of each
component (``h``, and ``c`` for the LSTM) is ``(num_layers * num_directions, B, size)``, as
``forward``'s ``hx``; batch-first models take ``(B, T, ...)`` input as in PyTorch.
"""

from __future__ import annotations

from typing import Any

import torch
from torch import Tensor, nn

from ..layers import RecurrentLayer, reverse_padded

#: model shapes this module knows how to export, by registered name
SUPPORTED_MODELS = ("many_to_one", "many_to_many")


def recurrent_layer(model: nn.Module) -> RecurrentLayer:
    """The recurrent layer of ``model``: the model itself, or its ``encoder``."""
    if isinstance(model, RecurrentLayer):
        return model
    name = getattr(model, "registry_name", None)
    if name in SUPPORTED_MODELS and isinstance(getattr(model, "encoder", None), RecurrentLayer):
        return model.encoder
    raise TypeError(
        "model must be an rnnkit recurrent layer (rnnkit.LSTM, rnnkit.MinGRU...) or a registered"
        f" {' or '.join(repr(n) for n in SUPPORTED_MODELS)} model, got {type(model).__name__}"
        + (f" ({name!r})" if name else "")
    )


def initial_state(model: nn.Module, batch_size: int, dtype: torch.dtype = torch.float32) -> tuple[Tensor, ...]:
    """The state a stream starts from: zeros, or the layer's learned ``h0``/``c0``; each component
    ``(num_layers * num_directions, batch_size, size)``."""
    layer = recurrent_layer(model)
    slots = layer.num_layers * layer.num_directions
    if layer.learn_initial_state:
        return tuple(
            getattr(layer, f"{name}0").detach().to(dtype).unsqueeze(1).expand(slots, batch_size, size).contiguous()
            for name, size in zip(layer.state_names, layer.state_sizes)
        )
    return tuple(torch.zeros(slots, batch_size, size, dtype=dtype) for size in layer.state_sizes)


def run_layer(layer: RecurrentLayer, x: Tensor, state: tuple[Tensor, ...], lengths: Tensor) -> tuple[Tensor, tuple[Tensor, ...]]:
    """``layer`` in eval mode over time-major ``x`` ``(T, B, I)`` with ``lengths`` ``(B,)``:
    ``(output (T, B, D*H), final state)``, equal to ``layer(x, state, lengths=lengths)``."""
    steps, batch = x.shape[0], x.shape[1]
    mask = (torch.arange(steps, device=x.device).unsqueeze(1) < lengths.unsqueeze(0)).unsqueeze(-1)  # (T, B, 1)
    layer_input = torch.where(mask, x, torch.zeros_like(x))
    finals: list[tuple[Tensor, ...]] = []
    for index in range(layer.num_layers):
        outputs = []
        for direction in range(layer.num_directions):
            cell, params = layer.cell(index, direction), layer.cell_parameters(index, direction)
            slot = index * layer.num_directions + direction
            carry = tuple(s[slot] for s in state)  # each (B, size)
            # the reverse direction reads each sequence backwards from its last valid step
            seq = layer_input if direction == 0 else reverse_padded(layer_input, lengths)
            ctx = cell.begin_sequence(batch, params, training=False)
            xp = cell.project_input(seq, params)  # (T, B, G*H)
            ys = []
            for t in range(steps):
                y, new = cell.step(xp[t], carry, params, ctx)
                keep = mask[t]  # (B, 1): past its end a sequence's state stays, its output is zero
                carry = tuple(torch.where(keep, n, c) for n, c in zip(new, carry))
                ys.append(torch.where(keep, y, torch.zeros_like(y)))
            out = torch.stack(ys)  # (T, B, H)
            outputs.append(out if direction == 0 else reverse_padded(out, lengths))
            finals.append(carry)
        layer_input = outputs[0] if len(outputs) == 1 else torch.cat(outputs, dim=-1)
    return layer_input, tuple(torch.stack(parts) for parts in zip(*finals))


def step_layer(layer: RecurrentLayer, x: Tensor, state: tuple[Tensor, ...]) -> tuple[Tensor, tuple[Tensor, ...]]:
    """One eval-mode step of a unidirectional ``layer``: ``x`` ``(B, I)``, state ``(L, B, size)``."""
    finals = []
    for index in range(layer.num_layers):
        cell, params = layer.cell(index, 0), layer.cell_parameters(index, 0)
        ctx = cell.begin_sequence(x.shape[0], params, training=False)
        x, new = cell.step(cell.project_input(x, params), tuple(s[index] for s in state), params, ctx)
        finals.append(new)
    return x, tuple(torch.stack(parts) for parts in zip(*finals))


class SequenceGraph(nn.Module):
    """``forward(input, *state, lengths) -> (output, *final_state)`` of a layer or model.

    A layer gives its per-step outputs; ``many_to_many`` its head's ``(B, T, outputs)``;
    ``many_to_one`` its pooled head ``(B, outputs)``.
    """

    def __init__(self, model: nn.Module) -> None:
        super().__init__()
        self.model = model
        self.layer = recurrent_layer(model)
        self.is_layer = model is self.layer  # decided here: a tracer sees plain Python bools

    def forward(self, input: Tensor, *args: Tensor) -> tuple[Tensor, ...]:
        *state, lengths = args
        model, layer, is_layer = self.model, self.layer, self.is_layer
        x = input if is_layer else model.input(input)
        if layer.batch_first:
            x = x.transpose(0, 1)  # (T, B, I)
        output, final = run_layer(layer, x, tuple(state), lengths)
        if is_layer:
            return (output.transpose(0, 1) if layer.batch_first else output, *final)
        output = output.transpose(0, 1)  # (B, T, D*H): the models are batch-first
        if model.registry_name == "many_to_many":
            return (model.head(output), *final)
        return (model.head(_pool(model, output, final, lengths)), *final)


def _pool(model: nn.Module, outputs: Tensor, final: tuple[Tensor, ...], lengths: Tensor) -> Tensor:
    """``ManyToOne.pool`` with the mask always applied (its own skips it when every sequence is
    full, a decision on values a traced graph would keep for every input)."""
    pooling = model.config.pooling
    if pooling == "last":
        return model.pool(outputs, final[0], None)
    mask = (torch.arange(outputs.shape[1], device=outputs.device).unsqueeze(0) < lengths.unsqueeze(1)).unsqueeze(-1)
    if pooling == "mean":
        return (outputs * mask).sum(1) / mask.sum(1)
    if pooling == "max":
        return outputs.masked_fill(~mask, float("-inf")).amax(1)
    scores = model.attention(outputs).masked_fill(~mask, float("-inf"))  # (B, T, 1)
    return (torch.softmax(scores, dim=1) * outputs).sum(1)


class StepGraph(nn.Module):
    """``forward(input_t, *state) -> (output_t, *new_state)``: one streaming step.

    ``input_t`` is ``(B, I)`` features, or ``(B,)`` token ids for a model with an embedding. A
    ``many_to_one`` model (``pooling="last"``) gives its head on the state so far: the prediction
    were the sequence to end here.
    """

    def __init__(self, model: nn.Module) -> None:
        super().__init__()
        self.model = model
        self.layer = recurrent_layer(model)
        self.is_layer = model is self.layer  # decided here: a tracer sees plain Python bools
        if self.layer.bidirectional:
            raise ValueError(
                "a one-step graph needs a unidirectional model: the reverse direction of"
                " bidirectional=True reads the future (export the whole-sequence graph instead)"
            )
        if getattr(model, "registry_name", None) == "many_to_one" and model.config.pooling != "last":
            raise ValueError(
                "a one-step graph of a many_to_one model needs pooling='last' (the state so far),"
                f" got pooling={model.config.pooling!r}"
            )

    def forward(self, input: Tensor, *state: Tensor) -> tuple[Tensor, ...]:
        model, layer, is_layer = self.model, self.layer, self.is_layer
        x = input if is_layer else model.input(input)
        y, new = step_layer(layer, x, tuple(state))
        return ((y if is_layer else model.head(y)), *new)


def example_inputs(model: nn.Module, batch: int, steps: int, *, step: bool, dtype=torch.float32) -> tuple[Any, ...]:
    """Inputs to trace a graph with: ``(input, *state)`` and, for the sequence, ``lengths``
    (not all full, so nothing could be specialised to full-length batches)."""
    layer = recurrent_layer(model)
    generator = torch.Generator().manual_seed(0)
    vocab = None if model is layer else model.input.config.vocab_size
    shape = (batch,) if step else ((batch, steps) if (model is not layer or layer.batch_first) else (steps, batch))
    if vocab:
        x = torch.randint(0, vocab, shape, generator=generator)
    else:
        x = torch.randn(*shape, layer.input_size, generator=generator, dtype=dtype)
    state = tuple(torch.randn(s.shape, generator=generator, dtype=dtype) * 0.5 for s in initial_state(model, batch, dtype))
    if step:
        return (x, *state)
    lengths = torch.full((batch,), steps, dtype=torch.int64)
    lengths[-1] = max(1, steps // 2)
    return (x, *state, lengths)


def io_names(model: nn.Module, *, step: bool) -> tuple[list[str], list[str]]:
    """Input and output names: ``input, h0, c0, lengths -> output, h_n, c_n`` for the sequence,
    ``input, h, c -> output, h_next, c_next`` for the step."""
    names = list(recurrent_layer(model).state_names)
    if step:
        return ["input", *names], ["output", *(f"{n}_next" for n in names)]
    return ["input", *(f"{n}0" for n in names), "lengths"], ["output", *(f"{n}_n" for n in names)]
