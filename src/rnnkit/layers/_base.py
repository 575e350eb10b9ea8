"""Layers over cells: stacking, directions, variable lengths, streaming.

:class:`RecurrentLayer` holds no math of its own: each (layer, direction) position asks the
subclass for a cell and the parameters to run it with (:meth:`RecurrentLayer.cell`,
:meth:`RecurrentLayer.cell_parameters`), and :mod:`rnnkit.scan` runs the sequence by the route it
selects.
"""

from __future__ import annotations

import functools
import warnings
from collections import OrderedDict
from collections.abc import Callable
from typing import Any, NamedTuple

import torch
import torch.nn.functional as F
from torch import Tensor, nn
from torch.nn.utils.rnn import PackedSequence
from torch.utils.hooks import RemovableHandle

from .._validation import (
    ShapeError,
    caller_stacklevel,
    check_bool,
    check_floating,
    check_lengths,
    check_matches,
    check_positive_int,
    check_probability,
    check_shape,
    check_tensor,
)
from .. import scan
from ..cells import Params, RecurrentCell, State
from ._sequence import pack_like, reverse_padded, unpack, valid_mask


class LayerInput(NamedTuple):
    """A forward call's arguments, checked and in the time loop's layout (:meth:`RecurrentLayer.prepare`)."""

    x: Tensor  # (T, B, I), time-major
    state: State  # each component (num_layers * num_directions, B, size)
    lengths: Tensor | None  # (B,) int64, or None
    batched: bool  # False for unbatched (T, I) input
    packed: PackedSequence | None  # the input, when it was a PackedSequence


class RecurrentLayer(nn.Module):
    """Base of every rnnkit layer.

    ``forward(input, hx=None, lengths=None)`` follows torch.nn.RNN: ``input`` is ``(T, B, I)``
    (``(B, T, I)`` with ``batch_first``), unbatched ``(T, I)``, or a ``PackedSequence``; ``hx``
    holds each state component as ``(num_layers * num_directions, B, size)``. It returns
    ``(output, h_n)`` -- ``h_n`` a tuple such as ``(h_n, c_n)`` when the cell's state has several
    components -- and with ``return_states=True`` a third element: every state component at every
    step, ``(num_layers * num_directions, T, B, size)`` (``B, T`` with ``batch_first``), zero past
    each sequence's end (time-major for PackedSequence input).

    ``lengths`` (``B`` integers in ``[1, T]``) runs a padded batch as if each sequence were alone:
    outputs past a sequence's end are zero, the final state is the one at its last valid step, and
    the reverse direction starts from its last valid step.
    """

    def __init__(
        self,
        input_size: int,
        num_layers: int = 1,
        bidirectional: bool = False,
        batch_first: bool = False,
        dropout: float = 0.0,
        *,
        return_states: bool = False,
        learn_initial_state: bool = False,
    ) -> None:
        super().__init__()
        self.input_size = check_positive_int("input_size", input_size)
        self.num_layers = check_positive_int("num_layers", num_layers)
        self.bidirectional = check_bool("bidirectional", bidirectional)
        self.batch_first = check_bool("batch_first", batch_first)
        self.dropout = check_probability("dropout", dropout, inclusive=True)  # torch.nn's [0, 1]
        self.return_states = check_bool("return_states", return_states)
        self.learn_initial_state = check_bool("learn_initial_state", learn_initial_state)
        if self.dropout > 0 and self.num_layers == 1:
            warnings.warn(
                "dropout applies between stacked layers, so non-zero dropout expects"
                f" num_layers > 1, got dropout={self.dropout} and num_layers=1",
                stacklevel=caller_stacklevel(),
            )
        self._state_hooks: OrderedDict[int, Callable] = OrderedDict()

    def register_state_hook(self, hook: Callable[[RecurrentLayer, int, int, State], State | None]) -> RemovableHandle:
        """Call ``hook(layer, slot, t, state)`` after every step of every (layer, direction).

        ``slot`` is ``layer_index * num_directions + direction``; ``t`` counts the steps as that
        direction runs them (the reverse direction counts from each sequence's last valid step);
        ``state`` is the new state tuple. Returning a tuple replaces the state -- and the output,
        for cells whose output is their first state component -- which is how
        :mod:`rnnkit.training.diagnostics` measures d(loss)/d(h_t). While any hook is registered
        the layer runs its cells step by step (the step loop of :mod:`rnnkit.scan`).
        Returns a handle whose ``remove()`` unregisters the hook.
        """
        handle = RemovableHandle(self._state_hooks)
        self._state_hooks[handle.id] = hook
        return handle

    # --- what subclasses provide -------------------------------------------------------
    @property
    def num_directions(self) -> int:
        return 2 if self.bidirectional else 1

    def cell(self, layer: int = 0, direction: int = 0) -> RecurrentCell:
        """The cell at ``(layer, direction)``; a subclass provides it."""
        raise NotImplementedError

    def cell_parameters(self, layer: int = 0, direction: int = 0) -> Params:
        """The parameters the cell at ``(layer, direction)`` runs with, by the cell's names."""
        raise NotImplementedError

    @property
    def output_size(self) -> int:
        """Feature size of ``output``: ``num_directions * cell.output_size``."""
        return self.num_directions * self.cell(0, 0).output_size

    @property
    def state_sizes(self) -> tuple[int, ...]:
        """Feature size of each state component (``h_n``, ``c_n``...)."""
        return tuple(self.cell(0, 0).state_sizes)

    @property
    def state_names(self) -> tuple[str, ...]:
        return tuple(self.cell(0, 0).state_names)

    def _excluded_routes(self) -> frozenset[str]:
        """Routes of :mod:`rnnkit.scan` this layer never takes: whole-stack routes (torch.nn's
        kernels, which need torch.nn's flat parameters), unless a subclass runs them."""
        return frozenset({"torch"})

    def _run_stack(self, route: scan.Route, x: Tensor, state: State, lengths: Tensor | None) -> tuple[Tensor, State]:
        """Run a whole-stack route (torch.nn's kernels); only layers that offer one are given one."""
        raise NotImplementedError(f"{type(self).__name__} has no whole-stack route {route.name!r}")

    def _create_initial_state(self, device=None, dtype=None) -> None:
        """Subclasses call this once their cells exist: ``h0`` (and ``c0``...) parameters."""
        if not self.learn_initial_state:
            return
        slots = self.num_layers * self.num_directions
        for name, size in zip(self.state_names, self.state_sizes):
            value = torch.zeros(slots, size, device=device, dtype=dtype)
            self.register_parameter(f"{name}0", nn.Parameter(value))

    # --- forward -----------------------------------------------------------------------
    def prepare(self, input: Tensor | PackedSequence, hx: Any = None, lengths: Any = None) -> LayerInput:
        """Check ``forward``'s arguments and bring them to the time loop's layout (:class:`LayerInput`).

        Anything that runs this layer's cells itself (:mod:`rnnkit.training.diagnostics`) takes
        its inputs the way ``forward`` does through this.
        """
        packed = input if isinstance(input, PackedSequence) else None
        if packed is not None:
            if lengths is not None:
                raise ValueError(
                    "lengths must be None when input is a PackedSequence, which carries its own,"
                    f" got lengths={lengths!r}"
                )
            x, lengths = unpack(packed)  # (T, B, I), caller's batch order
            batched = True
        else:
            check_floating("input", check_tensor("input", input))
            if input.dim() not in (2, 3):
                raise ValueError(
                    "input must be 3-D (seq_len, batch, input_size), or 2-D (seq_len, input_size)"
                    f" when unbatched, got {input.dim()}-D of shape {tuple(input.shape)}"
                )
            batched = input.dim() == 3
            if not batched:
                if lengths is not None:
                    raise ValueError("lengths needs a batch: got unbatched 2-D input with lengths")
                x = input.unsqueeze(1)
            else:
                x = input.transpose(0, 1) if self.batch_first else input  # (T, B, I)
        steps, batch, features = x.shape
        self._check_input(x, features, steps)
        if lengths is not None and packed is None:
            lengths = check_lengths(lengths, batch, steps, x.device)
        state = self._prepare_state(hx, "hx", batch, batched, x)
        return LayerInput(x, state, lengths, batched, packed)

    def forward(self, input: Tensor | PackedSequence, hx: Any = None, lengths: Any = None):
        x, state, lengths, batched, packed = self.prepare(input, hx, lengths)

        output, final, history = self._run(x, state, lengths)

        if packed is not None:
            output = pack_like(output, lengths, packed)
        elif not batched:
            output = output.squeeze(1)
        elif self.batch_first:
            output = output.transpose(0, 1)
        result = (output, self._format_state(final, batched))
        if not self.return_states:
            return result
        if not batched:
            history = tuple(h.squeeze(2) for h in history)
        elif self.batch_first and packed is None:
            history = tuple(h.transpose(1, 2) for h in history)
        return result + (history[0] if len(history) == 1 else history,)

    def route(self, input: Tensor | PackedSequence, hx: Any = None, lengths: Any = None) -> str:
        """The name of the :mod:`rnnkit.scan` route ``forward`` takes on these arguments, as things
        stand (grad mode, autocast): ``"torch"``, ``"compiled"``, ``"bptt"``, ``"loop"``... The
        first (layer, direction) decides for a whole-stack route; otherwise its own route is named."""
        x, state, lengths, _, _ = self.prepare(input, hx, lengths)
        stack = self._select_stack(x, state)
        if stack is not None:
            return stack.name
        cell, params = self.cell(0, 0), self.cell_parameters(0, 0)
        xp = cell.project_input(x[:1], params)
        call = scan.ScanCall(xp, tuple(s[0] for s in state), params, return_states=self.return_states,
                             hook=self._slot_hook(0) if self._state_hooks else None)  # fmt: skip
        return scan.select(cell, call, exclude=self._excluded_routes() | {"torch"}).name

    def _select_stack(self, x: Tensor, state: State) -> scan.Route | None:
        """A whole-stack route, where the first cell's best route is one; None to run slot by slot.
        The call stands for the whole stack: ``x`` for the projected input (the same device, dtype
        and steps: all a route's choice reads of it), no parameters (see :class:`~rnnkit.scan.ScanCall`)."""
        exclude = self._excluded_routes()
        if not scan.stack_routes(self.cell(0, 0)) - exclude:
            return None
        hook = self._slot_hook(0) if self._state_hooks else None
        call = scan.ScanCall(x, state, return_states=self.return_states, hook=hook)
        route = scan.select(self.cell(0, 0), call, exclude=exclude)
        return route if route.stack else None

    def _run(
        self, x: Tensor, state: State, lengths: Tensor | None
    ) -> tuple[Tensor, State, tuple[Tensor, ...] | None]:
        """The stack on time-major ``x`` ``(T, B, I)``; ``state`` components ``(L*D, B, size)``."""
        stack = self._select_stack(x, state)
        if stack is not None:
            output, final = self._run_stack(stack, x, state, lengths)
            return output, final, None
        steps, batch = x.shape[:2]
        mask = valid_mask(lengths, steps)
        if mask is not None:  # padding never reaches the math: NaN there must not poison gradients
            x = torch.where(mask.unsqueeze(-1), x, 0.0)
        exclude = self._excluded_routes()
        layer_input = x
        finals, histories = [], []
        for layer in range(self.num_layers):
            outputs = []
            for direction in range(self.num_directions):
                cell, params = self.cell(layer, direction), self.cell_parameters(layer, direction)
                slot = layer * self.num_directions + direction
                start = tuple(s[slot] for s in state)
                # the reverse direction reads each sequence backwards from its last valid step
                seq = layer_input if direction == 0 else reverse_padded(layer_input, lengths)
                ctx = cell.begin_sequence(batch, params, training=self.training)
                xp = cell.project_input(seq, params)
                hook = self._slot_hook(slot) if self._state_hooks else None
                # a second derivative recomputes xp from seq, which the projection's backward keeps anyway
                project = functools.partial(cell.project_input, seq, params)
                call = scan.ScanCall(xp, start, params, ctx, mask, self.return_states, hook, project)
                ys, last, history = scan.run(cell, call, exclude=exclude)
                if direction == 1:
                    ys = reverse_padded(ys, lengths)
                    if history is not None:
                        history = tuple(reverse_padded(h, lengths) for h in history)
                outputs.append(ys)
                finals.append(last)
                if history is not None:
                    if mask is not None:
                        history = tuple(torch.where(mask.unsqueeze(-1), h, 0.0) for h in history)
                    histories.append(history)
            layer_input = outputs[0] if len(outputs) == 1 else torch.cat(outputs, dim=-1)
            if self.dropout and self.training and layer < self.num_layers - 1:
                layer_input = F.dropout(layer_input, self.dropout, training=True)
        final = tuple(torch.stack(parts) for parts in zip(*finals))  # each (L*D, B, size)
        stacked = tuple(torch.stack(parts) for parts in zip(*histories)) if histories else None
        return layer_input, final, stacked

    def _slot_hook(self, slot: int) -> Callable[[int, State], State | None]:
        def run_hooks(t: int, state: State) -> State | None:
            replaced = None
            for hook in list(self._state_hooks.values()):
                result = hook(self, slot, t, state if replaced is None else replaced)
                if result is not None:
                    replaced = tuple(result)
            return replaced

        return run_hooks

    # --- streaming ---------------------------------------------------------------------
    def step(self, input: Tensor, state: Any = None):
        """Advance one time step: ``input`` ``(B, input_size)`` (or unbatched ``(input_size,)``).

        ``state`` has ``forward``'s ``hx`` form (None for the initial state); returns
        ``(output, state)`` with ``output`` ``(B, output_size)``. Stepping through a sequence
        equals ``forward`` on it. In training mode, per-sequence masks (recurrent dropout,
        dropconnect) are drawn anew at every call. ``state`` is never modified; the output may
        share memory with the new state's last layer (clone it before changing it in place).

        Where a layer has one and nothing needs autograd (``torch.no_grad()``,
        ``inference_mode``), every layer of the step runs in one compiled call
        (:meth:`step_route` says ``"compiled"``; docs/deploy.md has the latency).
        """
        x, state, batched = self._prepare_step(input, state)
        if self._step_compiles(x):
            output, final = self._step_compiled(x, state)
        else:
            output, final = self._step_layers(x, state)
        return (output if batched else output.squeeze(0)), self._format_state(final, batched)

    def step_route(self, input: Tensor, state: Any = None) -> str:
        """The path :meth:`step` takes on these arguments, as things stand (grad mode, autocast,
        :func:`rnnkit.scan.disabled`): ``"compiled"`` (every layer in one compiled call, the plain
        RNN/LSTM/GRU on CPU), ``"torch"`` (torch.nn's cell kernels, layer after layer) or
        ``"cells"`` (the cells' own ``step``, layer after layer: the twin of the other two)."""
        x, _, _ = self._prepare_step(input, state)
        return "compiled" if self._step_compiles(x) else self._layer_step_route()

    def _prepare_step(self, input: Tensor, state: Any) -> tuple[Tensor, State, bool]:
        """``step``'s arguments checked: ``x`` ``(B, I)``, the state components ``(L, B, size)``,
        and whether the input was batched."""
        if self.bidirectional:
            raise ValueError(
                "step needs a unidirectional layer: the reverse direction of bidirectional=True reads the future"
            )
        check_floating("input", check_tensor("input", input))
        if input.dim() not in (1, 2):
            raise ValueError(
                "input to step must be 2-D (batch, input_size) or 1-D (input_size,),"
                f" got {input.dim()}-D of shape {tuple(input.shape)}"
            )
        batched = input.dim() == 2
        x = input if batched else input.unsqueeze(0)  # (B, I)
        self._check_input(x, x.shape[-1], 1)
        return x, self._prepare_state(state, "state", x.shape[0], batched, x), batched

    def _step_layers(self, x: Tensor, state: State) -> tuple[Tensor, State]:
        """One step, layer after layer: ``x`` ``(B, I)``, ``state`` components ``(L, B, size)``."""
        layer_input, finals = x, []
        for layer in range(self.num_layers):
            y, last = self._step_layer(layer, layer_input, tuple(s[layer] for s in state))
            finals.append(last)
            layer_input = y
            if self.dropout and self.training and layer < self.num_layers - 1:
                layer_input = F.dropout(layer_input, self.dropout, training=True)
        if len(finals) == 1:  # (1, B, size) views: no copy per streaming step
            final = tuple(part.unsqueeze(0) for part in finals[0])
        else:
            final = tuple(torch.stack(parts) for parts in zip(*finals))
        return layer_input, final

    # a subclass with a compiled whole-stack step (the torch-compatible layers) overrides these
    def _step_compiles(self, x: Tensor) -> bool:
        """Whether :meth:`step` runs as one compiled call on input ``x`` ``(B, I)`` now."""
        return False

    def _step_compiled(self, x: Tensor, state: State) -> tuple[Tensor, State]:
        """The whole step in one compiled call; :meth:`_step_layers` is its twin."""
        raise NotImplementedError(f"{type(self).__name__} has no compiled step")

    def _layer_step_route(self) -> str:
        """What :meth:`_step_layer` runs: ``"cells"`` here, ``"torch"`` where a subclass calls torch.nn's kernels."""
        return "cells"

    def _step_layer(self, layer: int, x: Tensor, state: State) -> tuple[Tensor, State]:
        """One step of one (unidirectional) layer: ``x`` ``(B, I)``; a faster kernel may override."""
        cell, params = self.cell(layer, 0), self.cell_parameters(layer, 0)
        ctx = cell.begin_sequence(x.shape[0], params, training=self.training)
        return cell.step(cell.project_input(x, params), state, params, ctx)

    # --- checks and state plumbing -----------------------------------------------------
    def _reference(self) -> Tensor | None:
        """A parameter whose dtype and device inputs must share: the layer's own first one when it
        has one (a dict lookup; ``parameters()`` walks the module tree, a few us per streaming step)."""
        own = next((p for p in self._parameters.values() if p is not None), None)
        return own if own is not None else next(self.parameters(), None)

    def _check_input(self, x: Tensor, features: int, steps: int) -> None:
        if features != self.input_size:
            raise ShapeError(f"input.size(-1) must be equal to input_size: expected {self.input_size}, got {features}")
        if steps < 1:
            raise ShapeError("input must have at least one time step, got 0")
        reference = self._reference()
        if reference is not None:
            check_matches("input", x, dtype=reference.dtype, device=reference.device)

    def _prepare_state(self, hx: Any, name: str, batch: int, batched: bool, x: Tensor) -> State:
        """``hx`` as a tuple of ``(L*D, B, size)`` tensors, checked; the initial state if None."""
        cell = self.cell(0, 0)
        slots = self.num_layers * self.num_directions
        if hx is None:
            if self.learn_initial_state:
                return tuple(
                    getattr(self, f"{n}0").unsqueeze(1).expand(slots, batch, size)
                    for n, size in zip(cell.state_names, cell.state_sizes)
                )
            return tuple(
                torch.zeros(slots, batch, size, dtype=x.dtype, device=x.device) for size in cell.state_sizes
            )
        sizes = cell.state_sizes
        count = len(sizes)
        if count == 1 and isinstance(hx, Tensor):
            parts: tuple = (hx,)
        elif count > 1 and isinstance(hx, (tuple, list)) and len(hx) == count:
            parts = tuple(hx)
        else:
            expected = "a tensor" if count == 1 else f"a tuple of {count} tensors {cell.state_names}"
            got = type(hx).__name__ + (f" of {len(hx)}" if isinstance(hx, (tuple, list)) else "")
            raise TypeError(f"{name} must be {expected}, got {got}")
        state = []
        dtype, device = x.dtype, x.device
        for part_name, part, size in zip(cell.state_names, parts, sizes):
            expected = (slots, batch, size) if batched else (slots, size)
            # one test per part on the streaming path; the checks that name what is wrong only when it is
            fits = isinstance(part, Tensor) and part.shape == expected
            if not (fits and part.dtype == dtype and part.device == device):
                label = f"{name} ({part_name})" if count > 1 else name
                check_tensor(label, part)
                check_shape(label, part, expected)
                check_matches(label, part, dtype=dtype, device=device)
            state.append(part if batched else part.unsqueeze(1))
        return tuple(state)

    def _format_state(self, state: State, batched: bool):
        if not batched:
            state = tuple(s.squeeze(1) for s in state)
        return state[0] if len(state) == 1 else state

    def extra_repr(self) -> str:
        parts = [f"{self.input_size}"]
        if self.num_layers != 1:
            parts.append(f"num_layers={self.num_layers}")
        for name in ("batch_first", "bidirectional", "return_states", "learn_initial_state"):
            if getattr(self, name):
                parts.append(f"{name}=True")
        if self.dropout:
            parts.append(f"dropout={self.dropout}")
        return ", ".join(parts)
