r"""Gradient-flow diagnostics: watch gradients vanish or explode through time.

The gradient that reaches step :math:`t` from a loss at step :math:`T` is a product of one-step
state Jacobians (Pascanu et al. 2013, sec. 2.1):

.. math::
    \frac{\partial L}{\partial h_t} = \Big(\prod_{k=t+1}^{T}
        \frac{\partial h_k}{\partial h_{k-1}}\Big)^{\top} \frac{\partial L}{\partial h_T},

so it shrinks or grows about geometrically with the distance :math:`T - t` when the Jacobians'
norms stay below or above one. Three measurements show this:

* :func:`hidden_gradient_norms` (or the :func:`track_hidden_gradients` context manager) --
  :math:`\lVert \partial L / \partial h_t \rVert` at every step of every (layer, direction) of
  every rnnkit :class:`~rnnkit.layers.RecurrentLayer` in a model, and how it decays with distance;
* :func:`recurrent_jacobian_norms` -- the spectral norm of :math:`\partial s_t / \partial s_{t-1}`
  (the whole state: ``h`` and ``c`` for an LSTM) along a trajectory;
* :func:`parameter_gradient_norms` and :func:`global_gradient_norm` -- after ``backward()``.

:class:`GradientMonitor` gathers all three into flat ``{name: float}`` records for a metrics log,
every ``every`` steps; :func:`plot_gradient_flow` draws the decay curves of several models.

Hidden gradients are measured with zero "probes": a state hook
(:meth:`~rnnkit.layers.RecurrentLayer.register_state_hook`) adds a zero tensor that requires grad
to the first state component of each step, so the forward values are unchanged and the probe's
gradient is exactly d(loss)/d(h_t) -- the total derivative, through the outputs and through every
later step. While tracked, layers run their cells step by step (no fused kernel); the hooks are
removed on leaving the context, also when the loss raises. A cell whose output is not its first
state component gets only the recurrent part of the gradient (see ``register_state_hook``).

Every step index here is input time: the reverse direction's steps are mapped back to the
position they read in the input, within each sequence's length.

>>> import torch, rnnkit
>>> _ = torch.manual_seed(0)
>>> lstm = rnnkit.LSTM(3, 8, num_layers=2)
>>> flow = hidden_gradient_norms(lstm, lambda out: out[0][-1].sum(), torch.randn(20, 4, 3))
>>> flow.norms()["lstm"].shape  # (num_layers * num_directions, T)
torch.Size([2, 20])
>>> decay = flow.decay()  # last layer: ||dL/dh_{T-1-d}|| / ||dL/dh_{T-1}|| for d = 0..T-1
>>> decay.ratios.shape, 0.0 < decay.rate < 1.0
(torch.Size([20]), True)
"""

from __future__ import annotations

import inspect
import math
import numbers
import os
from collections import Counter
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from functools import partial
from pathlib import Path
from typing import Any

import torch
from torch import Tensor, nn
from torch.nn.utils.rnn import PackedSequence
from torch.utils.hooks import RemovableHandle

from .._io import save_figure
from .._validation import check_positive_int
from ..cells import State
from ..layers import RecurrentLayer, reverse_padded, valid_mask

__all__ = [
    "GradientDecay",
    "HiddenGradients",
    "GradientFlow",
    "HiddenGradientTracker",
    "track_hidden_gradients",
    "hidden_gradient_norms",
    "recurrent_jacobian_norms",
    "parameter_gradient_norms",
    "global_gradient_norm",
    "GradientMonitor",
    "plot_gradient_flow",
]


# --- results ---------------------------------------------------------------------------------
@dataclass(frozen=True)
class GradientDecay:
    """How ``||dL/dh||`` changes with the distance ``d`` from the last step a direction runs.

    ``norms[d]`` is the root mean square over sequences (those at least ``d + 1`` long) of the
    per-sequence norm ``d`` steps before each sequence's last step -- for the reverse direction,
    ``d`` steps after its first; ``ratios = norms / norms[0]``. ``rate`` is the per-step factor
    fitted to them: ``exp`` of the least-squares slope of ``log ratios`` against ``d``, which is
    the factor itself when the decay is geometric (< 1: vanishing, > 1: exploding); NaN with fewer
    than two positive ratios.
    """

    norms: Tensor  # (T,)
    ratios: Tensor  # (T,)
    rate: float


@dataclass(frozen=True)
class HiddenGradients:
    """d(loss)/d(h_t) of one forward call of one recurrent layer.

    ``per_sequence[slot, t, b]`` is ``||dL/dh_t||`` over the features of sequence ``b``, at input
    time ``t``, for ``slot = layer * num_directions + direction``; zero past a sequence's end.
    ``lengths`` is ``(B,)``, or None when every sequence is full length. All on the CPU.
    """

    per_sequence: Tensor  # (num_slots, T, B)
    num_directions: int
    lengths: Tensor | None  # (B,)

    @property
    def num_layers(self) -> int:
        return self.per_sequence.shape[0] // self.num_directions

    @property
    def norms(self) -> Tensor:
        """``||dL/dh_t||`` over batch and features: ``(num_slots, T)``."""
        return self.per_sequence.pow(2).sum(-1).sqrt()

    def by_distance(self, slot: int) -> Tensor:
        """Gradient norm against distance from the slot's last step, ``(T,)``; see :class:`GradientDecay`."""
        _check_slot(slot, self.per_sequence.shape[0])
        per = self.per_sequence[slot]  # (T, B), input time
        steps, batch = per.shape
        # distance d sits d steps before the last valid step going forward, after the first going back
        aligned = reverse_padded(per, self.lengths) if slot % self.num_directions == 0 else per  # (T, B)
        if self.lengths is None:
            valid = torch.ones(steps, batch, dtype=torch.bool)
        else:
            valid = torch.arange(steps).unsqueeze(1) < self.lengths.unsqueeze(0)  # (T, B)
        count = valid.sum(1)  # (T,)
        mean_square = (aligned.pow(2) * valid).sum(1) / count.clamp(min=1)
        return torch.where(count > 0, mean_square.sqrt(), torch.full_like(mean_square, math.nan))

    def decay(self, slot: int | None = None) -> GradientDecay:
        """The decay of ``slot`` (default: the last layer's forward direction)."""
        if slot is None:
            slot = (self.num_layers - 1) * self.num_directions
        norms = self.by_distance(slot)
        ratios = norms / norms[0]
        return GradientDecay(norms, ratios, _fit_rate(ratios))


@dataclass(frozen=True)
class GradientFlow:
    """Hidden-state gradients of every recurrent layer that ran, by module name.

    Keys are the names from ``model.named_modules()`` (the class name, lower-cased, for the model
    itself); a layer called more than once gets one entry per call, ``"name[k]"``.
    """

    modules: dict[str, HiddenGradients]

    def __getitem__(self, name: str) -> HiddenGradients:
        return self.modules[name]

    def norms(self) -> dict[str, Tensor]:
        """``||dL/dh_t||`` over batch and features, each ``(num_slots, T)``, in input time."""
        return {name: g.norms for name, g in self.modules.items()}

    def per_sequence(self) -> dict[str, Tensor]:
        """``||dL/dh_t||`` over features for each sequence, each ``(num_slots, T, B)``."""
        return {name: g.per_sequence for name, g in self.modules.items()}

    def decay(self, name: str | None = None, slot: int | None = None) -> GradientDecay:
        """The decay of one slot; by default the last layer's forward direction of the last module to run."""
        if name is None:
            name = next(reversed(self.modules))
        if name not in self.modules:
            raise ValueError(f"name must be one of {list(self.modules)}, got {name!r}")
        return self.modules[name].decay(slot)


def _check_slot(slot: object, num_slots: int) -> int:
    if isinstance(slot, bool) or not isinstance(slot, numbers.Integral):
        raise TypeError(f"slot must be an integer, got {type(slot).__name__} {slot!r}")
    if not 0 <= slot < num_slots:
        raise ValueError(f"slot must be in [0, {num_slots}), got {slot}")
    return int(slot)


def _fit_rate(ratios: Tensor) -> float:
    """``exp`` of the least-squares slope of ``log ratios`` against the distance."""
    log_ratio = ratios.double().log()
    distance = torch.arange(len(ratios), dtype=torch.float64)
    usable = torch.isfinite(log_ratio)
    if int(usable.sum()) < 2:
        return math.nan
    d, y = distance[usable], log_ratio[usable]
    d = d - d.mean()
    slope = (d * (y - y.mean())).sum() / d.pow(2).sum()
    return math.exp(float(slope))


def _norm(x: Tensor, dim: int | None = None) -> Tensor:
    """The 2-norm, in at least float32 so half-precision gradients do not overflow."""
    if x.is_sparse:
        x = x.coalesce().values()
    dtype = torch.promote_types(x.dtype, torch.float32)
    return torch.linalg.vector_norm(x, dim=dim, dtype=dtype)


# --- hidden gradients ------------------------------------------------------------------------
class _Call:
    """One tracked forward call of one layer: its inputs, time-major, and its probes."""

    def __init__(self, layer: RecurrentLayer, x: Tensor | None, hx: Any, batched: bool, lengths: Tensor | None):
        self.layer = layer
        self.x = x  # (T, B, I), detached
        self.hx = hx
        self.batched = batched
        self.lengths = lengths  # (B,) or None
        self.probes: dict[tuple[int, int], Tensor] = {}  # (slot, t as the direction runs) -> (B, size)

    def gradients(self, grads: Mapping[int, Tensor | None]) -> HiddenGradients:
        layer = self.layer
        slots = layer.num_layers * layer.num_directions
        steps = 1 + max(t for _, t in self.probes)
        some = next(iter(self.probes.values()))  # (B, size)
        dtype = torch.promote_types(some.dtype, torch.float32)
        zeros = torch.zeros(some.shape[0], dtype=dtype, device=some.device)
        per_slot = []
        for slot in range(slots):
            norms = []
            for t in range(steps):
                probe = self.probes.get((slot, t))
                grad = None if probe is None else grads.get(id(probe))
                norms.append(zeros if grad is None else _norm(grad, dim=-1).to(zeros.dtype))  # (B,)
            per_slot.append(torch.stack(norms))  # (T, B)
        lengths = self.lengths
        if lengths is not None and bool((lengths == steps).all()):
            lengths = None
        for slot in range(1, slots, 2) if layer.num_directions == 2 else ():
            # the reverse direction's step t read input step lengths[b] - 1 - t
            per_slot[slot] = reverse_padded(per_slot[slot], lengths)
        per_sequence = torch.stack(per_slot).cpu()  # (num_slots, T, B), one copy
        return HiddenGradients(per_sequence, layer.num_directions, None if lengths is None else lengths.cpu())


class HiddenGradientTracker:
    """Context manager that measures d(loss)/d(h_t) in every rnnkit recurrent layer of ``model``.

    Run the forward pass and ``backward()`` inside (or only the forward inside, and the backward
    after it); then :meth:`result` reads the gradients. To leave the parameters' ``.grad``
    untouched, take the gradients with ``torch.autograd.grad(loss, tracker.probes())`` and pass
    them to :meth:`result`, as :func:`hidden_gradient_norms` does.

    >>> import torch, rnnkit
    >>> gru = rnnkit.GRU(3, 5, bidirectional=True)
    >>> with track_hidden_gradients(gru) as tracker:
    ...     output, _ = gru(torch.randn(6, 2, 3))
    ...     output.pow(2).sum().backward()
    >>> tracker.result().norms()["gru"].shape
    torch.Size([2, 6])
    """

    def __init__(self, model: nn.Module) -> None:
        if not isinstance(model, nn.Module):
            raise TypeError(f"model must be a torch.nn.Module, got {type(model).__name__}")
        self._layers = [
            (name or type(module).__name__.lower(), module)
            for name, module in model.named_modules()
            if isinstance(module, RecurrentLayer)
        ]
        if not self._layers:
            raise ValueError(
                "model must contain an rnnkit RecurrentLayer to track,"
                f" got a {type(model).__name__} without one"
            )
        self._handles: list[RemovableHandle] = []
        self._calls: list[tuple[str, _Call]] = []
        self._current: dict[str, _Call] = {}

    def __enter__(self) -> HiddenGradientTracker:
        if self._handles:
            raise RuntimeError("this tracker is already active; it cannot be entered twice at once")
        self._calls, self._current = [], {}
        try:
            for name, layer in self._layers:
                begin = partial(self._begin_call, name)
                self._handles.append(layer.register_forward_pre_hook(begin, with_kwargs=True))
                self._handles.append(layer.register_state_hook(partial(self._probe, name)))
        except BaseException:
            self._remove()
            raise
        return self

    def __exit__(self, *exc_info) -> None:
        self._remove()

    def _remove(self) -> None:
        for handle in self._handles:
            handle.remove()
        self._handles = []

    def _begin_call(self, name: str, layer: RecurrentLayer, args: tuple, kwargs: dict) -> None:
        try:
            bound = inspect.signature(layer.forward).bind(*args, **kwargs).arguments
            hx = bound.get("hx")
            x, _, lengths, batched, _ = layer.prepare(bound.get("input"), hx, bound.get("lengths"))
        except (TypeError, ValueError):  # the layer's own forward will report bad input
            x = hx = lengths = None
            batched = True
        if isinstance(hx, Tensor):
            hx = hx.detach()
        elif isinstance(hx, (tuple, list)):
            hx = tuple(h.detach() if isinstance(h, Tensor) else h for h in hx)
        call = _Call(layer, None if x is None else x.detach(), hx, batched, lengths)
        self._current[name] = call
        self._calls.append((name, call))

    def _probe(self, name: str, layer: RecurrentLayer, slot: int, t: int, state: State) -> State | None:
        if not torch.is_grad_enabled():
            return None
        call = self._current.get(name)
        if call is None:  # the layer ran without its forward (no pre-hook)
            call = self._current[name] = _Call(layer, None, None, True, None)
            self._calls.append((name, call))
        probe = torch.zeros_like(state[0], requires_grad=True)  # (B, size)
        call.probes[(slot, t)] = probe
        return (state[0] + probe, *state[1:])

    def probes(self) -> list[Tensor]:
        """Every probe added so far; their gradients are d(loss)/d(h_t)."""
        return [p for _, call in self._calls for p in call.probes.values()]

    def result(self, grads: Sequence[Tensor | None] | None = None) -> GradientFlow:
        """The :class:`GradientFlow`; ``grads`` match :meth:`probes` (default: the probes' ``.grad``)."""
        probes = self.probes()
        if grads is None:
            grads = [p.grad for p in probes]
        elif len(grads) != len(probes):
            raise ValueError(f"grads must have one entry per probe: expected {len(probes)}, got {len(grads)}")
        if all(g is None for g in grads):
            raise RuntimeError(
                "no gradient reached the recurrent states: run the forward pass inside the tracking"
                " context with gradients enabled, then call backward() on a loss computed from it"
            )
        by_probe = {id(p): g for p, g in zip(probes, grads)}
        return GradientFlow({key: call.gradients(by_probe) for key, call in self._keyed_calls()})

    def _keyed_calls(self) -> list[tuple[str, _Call]]:
        """The calls that added probes, keyed ``name``, or ``name[k]`` for a layer called again."""
        calls = [(name, call) for name, call in self._calls if call.probes]
        repeats = Counter(name for name, _ in calls)
        seen: Counter[str] = Counter()
        keyed = []
        for name, call in calls:
            keyed.append((name if repeats[name] == 1 else f"{name}[{seen[name]}]", call))
            seen[name] += 1
        return keyed


def track_hidden_gradients(model: nn.Module) -> HiddenGradientTracker:
    """``with track_hidden_gradients(model) as tracker: ...``; see :class:`HiddenGradientTracker`."""
    return HiddenGradientTracker(model)


def hidden_gradient_norms(
    model: nn.Module, loss_fn: Callable[[Any], Tensor], *inputs: Any, **kwargs: Any
) -> GradientFlow:
    """d(loss)/d(h_t) of every rnnkit recurrent layer in ``model`` for ``loss_fn(model(*inputs, **kwargs))``.

    Runs one forward pass (in the model's current train/eval mode) and takes the gradients with
    ``torch.autograd.grad``, so the parameters' ``.grad`` stay as they were.
    """
    _check_loss_fn(loss_fn)
    return _measure(model, lambda: loss_fn(model(*inputs, **kwargs)))[0]


def _check_loss_fn(loss_fn: Any) -> None:
    if not callable(loss_fn):
        raise TypeError(f"loss_fn must be callable (model output -> scalar loss), got {type(loss_fn).__name__}")


def _measure(model: nn.Module, compute_loss: Callable[[], Tensor]) -> tuple[GradientFlow, HiddenGradientTracker]:
    """Hidden-state gradients of the loss that ``compute_loss()`` computes by running ``model``."""
    tracker = HiddenGradientTracker(model)
    with torch.enable_grad(), tracker:
        loss = compute_loss()
    if not isinstance(loss, Tensor) or loss.numel() != 1:
        got = f"shape {tuple(loss.shape)}" if isinstance(loss, Tensor) else type(loss).__name__
        raise ValueError(f"loss_fn must return a scalar tensor, got {got}")
    if not loss.requires_grad:
        raise ValueError("loss_fn must return a loss computed from the model's outputs, got one without grad")
    probes = tracker.probes()
    if not probes:
        raise ValueError(f"none of the recurrent layers in {type(model).__name__} ran while computing the loss")
    grads = torch.autograd.grad(loss.reshape(()), probes, allow_unused=True)
    return tracker.result(grads), tracker


# --- recurrent Jacobians ---------------------------------------------------------------------
def _select_rows(sequences: object, batch: int) -> list[int]:
    if sequences is None:
        return list(range(batch))
    if isinstance(sequences, numbers.Integral) and not isinstance(sequences, bool):
        count = check_positive_int("sequences", sequences)
        if count > batch:
            raise ValueError(f"sequences must be at most the batch size ({batch}), got {count}")
        return list(range(count))
    if isinstance(sequences, Sequence) and not isinstance(sequences, (str, bytes)):
        rows = list(sequences)
        if not rows or not all(isinstance(r, numbers.Integral) and not isinstance(r, bool) for r in rows):
            raise TypeError(f"sequences must be a non-empty list of batch indices, got {rows!r}")
        if not all(0 <= r < batch for r in rows):
            raise ValueError(f"sequences must be indices in [0, {batch}), got {rows}")
        return [int(r) for r in rows]
    raise TypeError(
        f"sequences must be None, a count or a list of batch indices, got {type(sequences).__name__}"
    )


def recurrent_jacobian_norms(
    layer: RecurrentLayer,
    inputs: Tensor | PackedSequence,
    hx: Any = None,
    lengths: Any = None,
    *,
    sequences: int | Sequence[int] | None = None,
    return_jacobians: bool = False,
) -> Tensor | tuple[Tensor, Tensor]:
    """Spectral norm of the one-step state Jacobian ``d s_t / d s_{t-1}`` along a trajectory.

    ``inputs``, ``hx`` and ``lengths`` are what ``layer.forward`` takes (``batch_first``, unbatched
    and ``PackedSequence`` inputs included). The state ``s`` is every state component concatenated
    (``[h, c]`` for an LSTM, size ``D = sum(cell.state_sizes)``). The trajectory and the Jacobians
    follow evaluation-mode semantics (no dropout, zoneout by its expectation) whatever the layer's
    mode. ``sequences`` picks the batch entries: None for all, ``k`` for the first k, or a list of
    indices.

    Returns the norms, ``(num_slots, T, S)`` in input time -- the reverse direction's Jacobian at
    ``t`` maps the state after input step ``t + 1`` to the one after ``t`` -- NaN past each
    sequence's end; with ``return_jacobians`` also the Jacobians, ``(num_slots, T, S, D, D)``.
    Each is ``torch.func.jacrev`` of ``cell.step``, vectorised over the sequences with ``vmap``.

    >>> import torch, rnnkit
    >>> norms = recurrent_jacobian_norms(rnnkit.LSTM(3, 4, num_layers=2), torch.randn(7, 5, 3), sequences=2)
    >>> norms.shape
    torch.Size([2, 7, 2])
    """
    if not isinstance(layer, RecurrentLayer):
        raise TypeError(f"layer must be an rnnkit RecurrentLayer, got {type(layer).__name__}")
    x, state, lengths, _, _ = layer.prepare(inputs, hx, lengths)
    steps, batch = x.shape[:2]
    rows = torch.tensor(_select_rows(sequences, batch), device=x.device)
    x = x.index_select(1, rows)  # (T, S, I)
    state = tuple(s.index_select(1, rows) for s in state)  # each (L*D, S, size)
    if lengths is not None:
        lengths = lengths.index_select(0, rows)
        if bool((lengths == steps).all()):
            lengths = None
    mask = valid_mask(lengths, steps)  # (T, S) or None

    norms, jacobians = [], []
    with torch.no_grad():  # torch.func differentiates inside; no graph to the parameters
        layer_input = x
        for index in range(layer.num_layers):
            outputs = []
            for direction in range(layer.num_directions):
                cell, params = layer.cell(index, direction), layer.cell_parameters(index, direction)
                slot = index * layer.num_directions + direction
                seq = layer_input if direction == 0 else reverse_padded(layer_input, lengths)
                start = tuple(s[slot] for s in state)
                ys, js = _slot_jacobians(cell, params, cell.project_input(seq, params), start, mask)
                if direction == 1:  # back to input time
                    ys, js = reverse_padded(ys, lengths), reverse_padded(js, lengths)
                outputs.append(ys)
                jacobians.append(js)
            layer_input = outputs[0] if len(outputs) == 1 else torch.cat(outputs, dim=-1)
        jacobian = torch.stack(jacobians)  # (num_slots, T, S, D, D)
        norms = torch.linalg.matrix_norm(jacobian, ord=2)  # (num_slots, T, S)
        if mask is not None:  # undefined past each sequence's end
            norms = norms.masked_fill(~mask, math.nan)
            jacobian = jacobian.masked_fill(~mask[..., None, None], math.nan)
    return (norms, jacobian) if return_jacobians else norms


def _slot_jacobians(cell, params, xp: Tensor, state: State, mask: Tensor | None) -> tuple[Tensor, Tensor]:
    """One direction's outputs ``(T, S, output_size)`` and state Jacobians ``(T, S, D, D)``, as it runs."""
    sizes = list(cell.state_sizes)
    ctx = cell.begin_sequence(1, params, training=False)  # one sequence at a time, under vmap

    def step(flat: Tensor, xp_t: Tensor) -> tuple[Tensor, tuple[Tensor, Tensor]]:
        parts = tuple(p.unsqueeze(0) for p in flat.split(sizes))  # each (1, size)
        y, new = cell.step(xp_t.unsqueeze(0), parts, params, ctx)
        new_flat = torch.cat(new, dim=-1).squeeze(0)  # (D,)
        return new_flat, (new_flat, y.squeeze(0))

    jacobian_step = torch.func.vmap(torch.func.jacrev(step, has_aux=True))
    flat = torch.cat(state, dim=-1)  # (S, D)
    valid = mask.unsqueeze(-1).unbind(0) if mask is not None else (None,) * xp.shape[0]
    ys, js = [], []
    for xp_t, m_t in zip(xp.unbind(0), valid):
        jac, (new_flat, y) = jacobian_step(flat, xp_t)  # (S, D, D), ((S, D), (S, output_size))
        if m_t is not None:  # (S, 1): past the end the state is held and the output is zero
            new_flat = torch.where(m_t, new_flat, flat)
            y = y * m_t
        flat = new_flat
        ys.append(y)
        js.append(jac)
    return torch.stack(ys), torch.stack(js)


# --- parameter gradients ---------------------------------------------------------------------
def parameter_gradient_norms(model: nn.Module) -> dict[str, float]:
    """``||p.grad||`` of every parameter of ``model`` that has a gradient, by name (after backward)."""
    if not isinstance(model, nn.Module):
        raise TypeError(f"model must be a torch.nn.Module, got {type(model).__name__}")
    names, norms = [], []
    for name, p in model.named_parameters():
        if p.grad is not None:
            names.append(name)
            norms.append(_norm(p.grad.detach()))
    if not names:
        return {}
    device = norms[0].device
    values = torch.stack([n.to(device, torch.float64) for n in norms]).tolist()  # one sync
    return dict(zip(names, values))


def global_gradient_norm(model: nn.Module) -> float:
    """The 2-norm of all of ``model``'s gradients together, as ``clip_grad_norm_`` computes it."""
    norms = parameter_gradient_norms(model)
    if not norms:
        raise ValueError(
            f"model must have parameters with gradients; call backward() first, got none in {type(model).__name__}"
        )
    return math.sqrt(sum(v * v for v in norms.values()))


# --- monitoring during training --------------------------------------------------------------
def _slot_label(layer_index: int, direction: int) -> str:
    return f"l{layer_index}" + (".reverse" if direction else "")


class GradientMonitor:
    """Gradient-flow metrics for a training log, every ``every`` steps; independent of any trainer.

    >>> import torch, rnnkit
    >>> model = rnnkit.GRU(3, 8)
    >>> monitor = GradientMonitor(model, every=100)
    >>> x = torch.randn(10, 4, 3)
    >>> loss_fn = lambda out: out[0][-1].pow(2).mean()
    >>> for step in range(2):
    ...     loss_fn(model(x)).backward()
    ...     if monitor.should_run(step):
    ...         record = monitor.collect(loss_fn, x)   # {name: float}, for a JSONL line
    ...     model.zero_grad()
    >>> sorted(record)[:3]
    ['grad/global_norm', 'grad/hidden/decay_rate', 'grad/hidden/gru.l0.decay_rate']

    :meth:`collect` keys (``{m}`` a module name, ``{s}`` a slot such as ``l0`` or ``l1.reverse``):

    * ``grad/hidden/{m}.{s}.t_first``, ``.t_last`` -- ``||dL/dh_t||`` over the batch at the first
      and last input steps; ``.decay_rate`` -- :attr:`GradientDecay.rate`;
    * ``grad/hidden/decay_rate`` -- the last module's last layer, forward direction;
    * ``jacobian/{m}.{s}.max``, ``.mean`` and ``jacobian/max``, ``jacobian/mean`` -- spectral norms
      of the one-step state Jacobians on the first ``jacobian_sequences`` sequences (0: none);
    * ``grad/param/{name}`` and ``grad/global_norm`` -- from the parameters' current ``.grad``.

    Values that are NaN (a one-step sequence has no decay rate) are left out.
    """

    def __init__(self, model: nn.Module, every: int = 100, *, jacobian_sequences: int = 2) -> None:
        if not isinstance(model, nn.Module):
            raise TypeError(f"model must be a torch.nn.Module, got {type(model).__name__}")
        self.model = model
        self.every = check_positive_int("every", every)
        if isinstance(jacobian_sequences, bool) or not isinstance(jacobian_sequences, numbers.Integral):
            raise TypeError(f"jacobian_sequences must be an integer, got {type(jacobian_sequences).__name__}")
        if jacobian_sequences < 0:
            raise ValueError(f"jacobian_sequences must be a non-negative integer, got {jacobian_sequences}")
        self.jacobian_sequences = int(jacobian_sequences)
        HiddenGradientTracker(model)  # fail now, not at the first collect, if there is nothing to track

    def should_run(self, step: int) -> bool:
        """True every ``every`` steps, starting at step 0."""
        if isinstance(step, bool) or not isinstance(step, numbers.Integral):
            raise TypeError(f"step must be an integer, got {type(step).__name__} {step!r}")
        if step < 0:
            raise ValueError(f"step must be a non-negative integer, got {step}")
        return step % self.every == 0

    def collect(self, loss_fn: Callable[[Any], Tensor], *inputs: Any, **kwargs: Any) -> dict[str, float]:
        """Every metric for ``loss_fn(model(*inputs, **kwargs))``, as ``{name: float}``.

        Runs one extra forward pass (in the model's current mode) and takes the hidden gradients
        without touching ``.grad``; the parameter norms read ``.grad`` as the training step's own
        backward left it, so call this between ``backward()`` and ``zero_grad()``.
        """
        _check_loss_fn(loss_fn)
        return self.collect_from(lambda: loss_fn(self.model(*inputs, **kwargs)))

    def collect_from(self, compute_loss: Callable[[], Tensor]) -> dict[str, float]:
        """:meth:`collect` for a loss computed any way that runs the model: ``compute_loss()``.

        The trainer passes its objective here, so the diagnostics see the training loss itself.
        """
        record: dict[str, float] = {}
        flow, tracker = _measure(self.model, compute_loss)
        for key, grads in flow.modules.items():
            norms = grads.norms  # (num_slots, T)
            for slot in range(norms.shape[0]):
                label = f"grad/hidden/{key}.{_slot_label(*divmod(slot, grads.num_directions))}"
                record[f"{label}.t_first"] = float(norms[slot, 0])
                record[f"{label}.t_last"] = float(norms[slot, -1])
                record[f"{label}.decay_rate"] = grads.decay(slot).rate
        record["grad/hidden/decay_rate"] = flow.decay().rate

        if self.jacobian_sequences:
            every_norm = []
            for key, call in tracker._keyed_calls():
                if call.x is None:  # the layer ran without its forward: no inputs recorded
                    continue
                count = min(self.jacobian_sequences, call.x.shape[1])
                layer = call.layer
                x = call.x.transpose(0, 1) if layer.batch_first else call.x  # back to the layer's layout
                if not call.batched:
                    x = x.squeeze(1)
                jac = recurrent_jacobian_norms(layer, x, call.hx, call.lengths, sequences=count)
                for slot in range(jac.shape[0]):
                    values = jac[slot][~jac[slot].isnan()]
                    label = f"jacobian/{key}.{_slot_label(*divmod(slot, layer.num_directions))}"
                    record[f"{label}.max"] = float(values.max())
                    record[f"{label}.mean"] = float(values.mean())
                    every_norm.append(values)
            if every_norm:
                values = torch.cat(every_norm)
                record["jacobian/max"] = float(values.max())
                record["jacobian/mean"] = float(values.mean())

        params = parameter_gradient_norms(self.model)
        for name, value in params.items():
            record[f"grad/param/{name}"] = value
        if params:
            record["grad/global_norm"] = math.sqrt(sum(v * v for v in params.values()))
        return {k: v for k, v in record.items() if not math.isnan(v)}


# --- plotting --------------------------------------------------------------------------------
def plot_gradient_flow(
    results: Mapping[str, GradientFlow], path: str | os.PathLike, *, title: str | None = None
) -> Path:
    """Draw ``log ||dL/dh||`` against the distance from the last step, one line per entry; write a PNG.

    Each line is :meth:`GradientFlow.decay`'s ``norms`` (the last module's last layer, forward
    direction). The file is written atomically: to a temporary file beside ``path``, then moved
    over it. Needs matplotlib, imported here only.
    """
    if not isinstance(results, Mapping) or not results:
        raise ValueError(f"results must be a non-empty mapping of label -> GradientFlow, got {results!r}")
    for label, flow in results.items():
        if not isinstance(flow, GradientFlow):
            raise TypeError(f"results[{label!r}] must be a GradientFlow, got {type(flow).__name__}")
    path = Path(path)
    if not path.parent.is_dir():
        raise ValueError(f"path must be in an existing directory, got {str(path)!r}")
    try:
        from matplotlib.backends.backend_agg import FigureCanvasAgg
        from matplotlib.figure import Figure
    except ImportError as error:
        raise ImportError("plot_gradient_flow needs matplotlib: pip install matplotlib") from error

    figure = Figure(figsize=(6.4, 4.2), layout="constrained")
    FigureCanvasAgg(figure)  # the Agg canvas, without pyplot's global state
    axes = figure.subplots()
    for label, flow in results.items():
        norms = flow.decay().norms.double()
        axes.semilogy(torch.arange(len(norms)).tolist(), norms.tolist(), label=str(label))
    axes.set_xlabel("distance from the last step (steps)")
    axes.set_ylabel(r"$\|\partial L / \partial h_t\|$")
    axes.set_title(title or "Gradient flow through time")
    axes.grid(True, which="both", alpha=0.3)
    axes.legend()

    return save_figure(figure, path, dpi=120)
