"""The three contenders of every case, as zero-argument calls: rnnkit, torch.nn, and a plain loop.

Every row compares rnnkit with two references built from the same weights where the math is
the same:

=============  ===================================  ====================================  =========================================
case           rnnkit ("ours")                      torch.nn reference                    loop reference
=============  ===================================  ====================================  =========================================
train/infer    rnnkit.LSTM/GRU/RNN, backend="auto"  torch.nn.LSTM/GRU/RNN (with          the same rnnkit layer (same options,
               (or as given; options as given)      proj_size if given), weights loaded   same weights), its cells stepped
                                                    into rnnkit's layer                   through autograd op by op
minGRU         rnnkit.MinGRU (log-space scan)       torch.nn.GRU of the same size          the same MinGRU stepped one step at a
                                                    (a different model, same I/H/B/T)      time (a no-op state hook forces it)
step           layer.step(x, state), B=1            bare torch.nn.LSTMCell calls, one      bare rnnkit.LSTMCell calls, one per
                                                    per layer, each h the next one's input layer (the cells' own step)
=============  ===================================  ====================================  =========================================

For a case with options torch.nn lacks (layer norm, zoneout, a reset-before GRU) the torch.nn
reference computes less than rnnkit does -- it is what a user gives up the option for. The loop
reference computes the same thing as rnnkit: "a plain autograd loop of the same cell" (issue 7),
i.e. what rnnkit's fused routes (the torch kernel, the hand-written BPTT) gain over letting
autograd record every op of every step. It is held on the autograd step loop by a no-op state
hook (any hook keeps it there), whichever route rnnkit's own ``backend="loop"`` takes.
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable
from dataclasses import dataclass

import torch
from torch import nn

from .. import cells
from ..layers import MinGRU, create_layer
from ._configs import Case

TORCH_LAYERS = {"lstm": nn.LSTM, "gru": nn.GRU, "rnn_tanh": nn.RNN, "rnn_relu": nn.RNN}
TORCH_CELLS = {"lstm": nn.LSTMCell, "gru": nn.GRUCell, "rnn_tanh": nn.RNNCell, "rnn_relu": nn.RNNCell}
RNNKIT_CELLS = {"lstm": cells.LSTMCell, "gru": cells.GRUCell, "rnn_tanh": cells.RNNCell, "rnn_relu": cells.RNNCell}
TORCH_OPTIONS = ("proj_size",)  # options torch.nn's layers take as well: the reference gets them too
_CLASS_NAMES = {"lstm": "LSTM", "gru": "GRU", "rnn_tanh": "RNN", "rnn_relu": "RNN"}


@dataclass
class Contender:
    """A named zero-argument call that runs one timed unit of work, and the module behind it."""

    name: str
    # "compiled" (rnnkit/_native), "fused" (torch._VF), "bptt", "loop" (cells' step loop), "scan",
    # "step" (the cells' own step), "torch"
    path: str
    call: Callable[[], object]
    module: nn.Module


def autocast(device: torch.device, dtype: str) -> Callable[[], contextlib.AbstractContextManager]:
    """A context-manager factory: bf16 autocast, or nothing for fp32."""
    if dtype == "fp32":
        return contextlib.nullcontext
    if dtype == "bf16":
        return lambda: torch.autocast(device.type, dtype=torch.bfloat16)
    raise ValueError(f"dtype must be 'fp32' or 'bf16', got {dtype!r}")


def _nonlinearity(kind: str) -> dict:
    return {"nonlinearity": kind[4:]} if kind.startswith("rnn_") else {}


def _sequence_call(module: nn.Module, x: torch.Tensor, mode: str, amp) -> Callable[[], object]:
    if mode == "train":
        module.train()
        params = list(module.parameters())

        def train() -> None:
            for p in params:
                p.grad = None
            with amp():
                output = module(x)[0]  # (T, B, H)
            output.sum().backward()

        return train
    module.eval()

    def infer() -> None:
        with torch.no_grad(), amp():
            module(x)

    return infer


def _step_call(step: Callable, x: torch.Tensor, amp) -> Callable[[], object]:
    """Call ``step(x, state) -> state`` with the state carried from call to call."""
    state = [None]

    def advance() -> None:
        with torch.no_grad(), amp():
            state[0] = step(x, state[0])

    return advance


def build_contenders(case: Case, device: torch.device, dtype: str = "fp32") -> tuple[Contender, Contender, Contender]:
    """(rnnkit, torch.nn reference, loop reference) for ``case``; see the module docstring."""
    amp = autocast(device, dtype)
    torch.manual_seed(0)
    I, H, L = case.input_size, case.hidden_size, case.layers
    if case.mode == "step":
        return _step_contenders(case, device, amp)
    x = torch.randn(case.steps, case.batch, I, device=device)  # (T, B, I), time-major
    on_cuda = device.type == "cuda"
    if case.kind == "mingru":
        ours = MinGRU(I, H, num_layers=L).to(device)
        reference = nn.GRU(I, H, num_layers=L).to(device)
        stepped = MinGRU(I, H, num_layers=L).to(device)
        stepped.load_state_dict(ours.state_dict())
        stepped.register_state_hook(lambda *args: None)  # any hook makes the layer step
        return (
            Contender("rnnkit.MinGRU", "scan", _sequence_call(ours, x, case.mode, amp), ours),
            Contender("torch.nn.GRU" + (" (cuDNN)" if on_cuda else ""), "torch",
                      _sequence_call(reference, x, case.mode, amp), reference),
            Contender("rnnkit.MinGRU stepped", "loop", _sequence_call(stepped, x, case.mode, amp), stepped),
        )  # fmt: skip

    options = dict(case.options, backend=case.backend) if case.backend != "auto" else dict(case.options)
    shared = {k: v for k, v in options.items() if k in TORCH_OPTIONS}  # torch.nn's own, e.g. proj_size
    reference = TORCH_LAYERS[case.kind](I, H, num_layers=L, **_nonlinearity(case.kind), **shared).to(device)
    ours = create_layer(case.kind, I, H, num_layers=L, **options).to(device)
    loaded = ours.load_state_dict(reference.state_dict(), strict=False)
    if loaded.unexpected_keys:  # missing keys are the options' own parameters
        raise RuntimeError(f"torch.nn weights do not fit the rnnkit layer: {loaded.unexpected_keys}")
    loop = create_layer(case.kind, I, H, num_layers=L, **dict(options, backend="loop")).to(device)
    loop.load_state_dict(ours.state_dict())  # the options' own parameters too
    loop.register_state_hook(lambda *args: None)  # any hook keeps the cells' autograd step loop
    name = f"rnnkit.{_CLASS_NAMES[case.kind]}"
    described = ", ".join(f"{k}={v!r}" if isinstance(v, str) else f"{k}={v}" for k, v in options.items())
    return (
        Contender(name + (f"({described})" if described else ""), layer_path(ours, x, amp),
                  _sequence_call(ours, x, case.mode, amp), ours),
        Contender(f"torch.nn.{_CLASS_NAMES[case.kind]}" + (" (cuDNN)" if on_cuda else ""), "torch",
                  _sequence_call(reference, x, case.mode, amp), reference),
        Contender(f"{name} autograd step loop", "loop", _sequence_call(loop, x, case.mode, amp), loop),
    )  # fmt: skip


def layer_path(layer: nn.Module, x: torch.Tensor, amp: Callable = contextlib.nullcontext) -> str:
    """Which route a torch-compatible layer takes on ``x``: "compiled", "fused", "bptt" or "loop".

    "compiled": rnnkit's C++ time loop (``rnnkit/_native``); "fused": torch.nn's kernel through
    ``torch._VF``; "bptt": the hand-written BPTT as one autograd Function; "loop": the cells' steps
    recorded op by op by autograd. The layer's own choice (:meth:`rnnkit.layers.RecurrentLayer.route`)
    in training mode with gradients, under ``amp()`` (the row's autocast: there the compiled
    GRU/Elman loop steps aside to torch.nn's kernel; the layer-norm LSTM's stays).
    """
    training = layer.training
    try:
        layer.train()
        with torch.enable_grad(), amp():
            route = layer.route(x[:1])
    finally:
        layer.train(training)
    return "fused" if route == "torch" else route


def _stacked(cells: list[nn.Module]) -> Callable:
    """``step(x, state) -> state`` through ``cells`` one above the other, ``state`` one entry per
    cell (None: their zeros); each cell's new ``h`` is the next one's input."""

    def step(x: torch.Tensor, state: list | None) -> list:
        new = []
        for cell, carried in zip(cells, state or [None] * len(cells)):
            out = cell(x, carried)
            new.append(out)
            x = out[0] if isinstance(out, tuple) else out  # the LSTM cells return (h, c)
        return new

    return step


def _step_contenders(case: Case, device: torch.device, amp) -> tuple[Contender, Contender, Contender]:
    I, H, L = case.input_size, case.hidden_size, case.layers
    layer = create_layer(case.kind, I, H, num_layers=L).to(device).eval()
    torch_cells, our_cells = [], []
    for index in range(L):
        weights = {n: getattr(layer, f"{n}_l{index}") for n in ("weight_ih", "weight_hh", "bias_ih", "bias_hh")}
        size = I if index == 0 else H
        for cells, make in ((torch_cells, TORCH_CELLS[case.kind]), (our_cells, RNNKIT_CELLS[case.kind])):
            cell = make(size, H, **_nonlinearity(case.kind)).to(device).eval()
            cell.load_state_dict(weights)
            cells.append(cell)
    x = torch.randn(case.batch, I, device=device)  # (B, I)
    kind = _CLASS_NAMES[case.kind]
    stack = "" if L == 1 else f"{L} x "
    return (
        Contender(f"rnnkit.{kind}.step", step_path(layer, x, amp), _step_call(lambda x, s: layer.step(x, s)[1], x, amp),
                  layer),
        Contender(f"{stack}torch.nn.{kind}Cell", "torch", _step_call(_stacked(torch_cells), x, amp),
                  nn.ModuleList(torch_cells)),
        Contender(f"{stack}rnnkit.{kind}Cell", "step", _step_call(_stacked(our_cells), x, amp),
                  nn.ModuleList(our_cells)),
    )  # fmt: skip


def step_path(layer: nn.Module, x: torch.Tensor, amp: Callable = contextlib.nullcontext) -> str:
    """Which path a layer's streaming ``step`` takes on ``x`` under ``torch.no_grad()`` and ``amp()``:
    "compiled" (every layer in one call of ``rnnkit/_native``), "fused" (torch.nn's cell kernels
    through ``torch._VF``, layer after layer) or "step" (the cells' own step)."""
    with torch.no_grad(), amp():
        route = layer.step_route(x)
    return {"torch": "fused", "cells": "step"}.get(route, route)
