"""The hand-written BPTT (rnnkit.scan's "bptt" routes) against its twin, the step loop through autograd.

Both run the same layer with the same weights; a no-op state hook makes the twin (a hooked layer
runs the step loop). Outputs, final
states, every step's state and all gradients (input, hx, every parameter) must agree in float64.
Stochastic options are compared in training mode with the RNG re-seeded, so both draw the same masks.
"""

from __future__ import annotations

import pytest
import torch
from torch.autograd import gradcheck

import rnnkit
from rnnkit import scan
from rnnkit.scan import _bptt

T, B, I, H = 6, 3, 4, 5
TOL = dict(atol=1e-10, rtol=1e-10)
LENGTHS = [6, 2, 4]

VARIANTS = {
    "gru": (rnnkit.GRU, {}),
    "gru_no_bias": (rnnkit.GRU, {"bias": False}),
    "rnn_tanh": (rnnkit.RNN, {}),
    "rnn_tanh_no_bias": (rnnkit.RNN, {"bias": False}),
    "rnn_relu": (rnnkit.RNN, {"nonlinearity": "relu"}),
    "rnn_relu_no_bias": (rnnkit.RNN, {"nonlinearity": "relu", "bias": False}),
    "lstm": (rnnkit.LSTM, {}),
    "lstm_no_bias": (rnnkit.LSTM, {"bias": False}),
    "lstm_peepholes": (rnnkit.LSTM, {"peepholes": True}),
    "gru_zoneout": (rnnkit.GRU, {"zoneout": 0.3}),
    "gru_stochastic": (rnnkit.GRU, {"zoneout": 0.3, "recurrent_dropout": 0.3, "dropconnect": 0.3}),
    "rnn_stochastic": (rnnkit.RNN, {"zoneout": 0.3, "recurrent_dropout": 0.3, "dropconnect": 0.3}),
    "lstm_stochastic": (rnnkit.LSTM, {"zoneout": 0.3, "recurrent_dropout": 0.3, "dropconnect": 0.3, "peepholes": True}),
    "gru_layer_norm": (rnnkit.GRU, {"layer_norm": True}),
    "rnn_layer_norm": (rnnkit.RNN, {"layer_norm": True, "nonlinearity": "relu"}),
    "lstm_layer_norm": (rnnkit.LSTM, {"layer_norm": True}),
    "lstm_layer_norm_peepholes": (rnnkit.LSTM, {"layer_norm": True, "peepholes": True}),
    "lstm_everything": (rnnkit.LSTM, {"layer_norm": True, "peepholes": True, "zoneout": 0.3, "recurrent_dropout": 0.3,
                                      "dropconnect": 0.3, "bias": False}),
    "gru_everything": (rnnkit.GRU, {"layer_norm": True, "zoneout": 0.3, "recurrent_dropout": 0.3, "dropconnect": 0.3}),
    "gru_before": (rnnkit.GRU, {"reset_after": False}),
    "gru_before_no_bias": (rnnkit.GRU, {"reset_after": False, "bias": False}),
    "gru_before_layer_norm": (rnnkit.GRU, {"reset_after": False, "layer_norm": True}),
    "gru_before_everything": (rnnkit.GRU, {"reset_after": False, "layer_norm": True, "zoneout": 0.3,
                                           "recurrent_dropout": 0.3, "dropconnect": 0.3}),
    "lstm_proj": (rnnkit.LSTM, {"proj_size": 3}),
    "lstm_proj_no_bias": (rnnkit.LSTM, {"proj_size": 3, "bias": False}),
    "lstm_proj_layer_norm": (rnnkit.LSTM, {"proj_size": 3, "layer_norm": True}),
    "lstm_proj_everything": (rnnkit.LSTM, {"proj_size": 3, "layer_norm": True, "peepholes": True, "zoneout": 0.3,
                                           "recurrent_dropout": 0.3, "dropconnect": 0.3}),
}


@pytest.fixture(autouse=True)
def pytorch_bptt_only():
    """This file holds the PyTorch BPTT to the step loop: the compiled loops, which would otherwise
    take the plain GRU/Elman and the layer-norm LSTM, are off (tests/test_compiled.py holds them to
    this twin)."""
    with scan.disabled("compiled"):
        yield


def make_layer(layer_class, options, *, fused, num_layers=1, bidirectional=False, return_states=False):
    torch.manual_seed(0)
    layer = layer_class(
        I, H, num_layers=num_layers, bidirectional=bidirectional, backend="loop",
        return_states=return_states, **options,
    ).double()
    if not fused:
        layer.register_state_hook(lambda *args: None)  # a hooked layer runs the step loop
    return layer


def run(layer, x, hx, lengths, training):
    layer.train(training)
    torch.manual_seed(1234)  # the same masks on both paths
    out = layer(x, hx_arg(hx), lengths=lengths)
    output, state = out[0], out[1]
    state = state if isinstance(state, tuple) else (state,)
    extra = out[2] if len(out) > 2 else None
    extra = () if extra is None else (extra if isinstance(extra, tuple) else (extra,))
    torch.manual_seed(99)
    loss = sum((t * torch.randn_like(t)).sum() for t in (output, *state, *extra))
    inputs = [x, *hx, *layer.parameters()]
    grads = torch.autograd.grad(loss, inputs, allow_unused=True)
    return (output, *state, *extra), grads


def compare(name, *, num_layers=1, bidirectional=False, lengths=None, training=False, return_states=False, steps=T):
    layer_class, options = VARIANTS[name]
    results = []
    for fused in (True, False):
        layer = make_layer(layer_class, options, fused=fused, num_layers=num_layers,
                           bidirectional=bidirectional, return_states=return_states)
        torch.manual_seed(7)
        x = torch.randn(steps, B, I, dtype=torch.float64, requires_grad=True)
        slots = num_layers * (2 if bidirectional else 1)
        hx = tuple(torch.randn(slots, B, n, dtype=torch.float64, requires_grad=True) for n in layer.state_sizes)
        results.append(run(layer, x, hx, lengths, training))
    (out_f, grad_f), (out_l, grad_l) = results
    for a, b in zip(out_f, out_l):
        torch.testing.assert_close(a, b, **TOL)
    for a, b in zip(grad_f, grad_l):
        assert (a is None) == (b is None)
        if a is not None:
            torch.testing.assert_close(a, b, **TOL)


def hx_arg(hx):
    return hx if len(hx) > 1 else hx[0]


@pytest.mark.parametrize("name", list(VARIANTS))
@pytest.mark.parametrize("lengths", [None, LENGTHS])
@pytest.mark.parametrize("training", [False, True])
def test_matches_step_loop(name, lengths, training):
    compare(name, lengths=lengths, training=training)


@pytest.mark.parametrize("name", ["gru", "rnn_tanh", "rnn_relu", "lstm_peepholes", "gru_stochastic", "lstm_everything",
                                  "gru_before_everything", "lstm_proj", "lstm_proj_everything"])
@pytest.mark.parametrize("lengths", [None, LENGTHS])
def test_two_layers_bidirectional(name, lengths):
    compare(name, num_layers=2, bidirectional=True, lengths=lengths, training=True)


@pytest.mark.parametrize("name", ["gru", "rnn_relu", "lstm_stochastic", "lstm_everything", "gru_before_everything",
                                  "lstm_proj_everything"])
def test_return_states(name):
    compare(name, lengths=LENGTHS, training=True, return_states=True)


@pytest.mark.parametrize("chunk", [1, 4])
@pytest.mark.parametrize("name", ["rnn_layer_norm", "gru_everything", "gru_before_everything", "lstm_everything",
                                  "lstm_proj_everything"])
def test_chunked_sums(name, chunk, monkeypatch):
    """Under layer norm backward sums the weight and gain gradients a chunk of steps at a time."""
    monkeypatch.setattr(_bptt, "CHUNK", chunk)
    compare(name, lengths=LENGTHS, training=True)


@pytest.mark.parametrize("name", ["rnn_stochastic", "gru_everything", "gru_before_everything", "lstm_everything",
                                  "lstm_proj_everything"])
def test_one_step(name):
    compare(name, training=True, steps=1, lengths=[1, 1, 1])


@pytest.mark.parametrize("name", ["rnn_layer_norm", "gru_everything", "gru_before_everything", "lstm_everything",
                                  "lstm_proj_everything"])
def test_longer_than_a_chunk(name):
    """Sequences over several of backward's chunks (rnnkit.scan._bptt.CHUNK steps each)."""
    steps = 2 * _bptt.CHUNK + 3
    compare(name, training=True, steps=steps, lengths=[steps, _bptt.CHUNK, _bptt.CHUNK + 1])


def test_fused_path_is_taken():
    """Every torch-compatible cell runs the hand-written Function, the reset-before GRU and projections too."""
    x = torch.randn(T, B, I, dtype=torch.float64)
    for cell, expected in (
        (rnnkit.GRUCell(I, H), True),
        (rnnkit.RNNCell(I, H, nonlinearity="relu"), True),
        (rnnkit.LSTMCell(I, H, peepholes=True, zoneout=0.2), True),
        (rnnkit.GRUCell(I, H, reset_after=False), True),
        (rnnkit.LSTMCell(I, H, layer_norm=True), True),
        (rnnkit.GRUCell(I, H, layer_norm=True), True),
        (rnnkit.LSTMCell(I, H, proj_size=2, zoneout=0.2), True),
    ):
        cell = cell.double()
        params = cell.parameters_dict()
        xp = cell.project_input(x, params)
        state = cell.initial_state(B, dtype=x.dtype, device=x.device)
        ctx = cell.begin_sequence(B, params, training=False)
        route = scan.select(cell, scan.ScanCall(xp, state, params, ctx), exclude={"torch"})
        assert (route.name == "bptt") is expected


@pytest.mark.parametrize(
    "name", ["gru", "rnn_tanh", "rnn_relu", "lstm_peepholes", "gru_stochastic", "lstm_stochastic", "rnn_layer_norm",
             "gru_everything", "lstm_everything", "gru_before", "gru_before_everything", "lstm_proj",
             "lstm_proj_everything"]
)
def test_gradcheck(name):
    layer_class, options = VARIANTS[name]
    layer = make_layer(layer_class, options, fused=True).train()
    names, params = zip(*layer.named_parameters())
    x = torch.randn(4, 2, I, dtype=torch.float64, requires_grad=True)
    hx = tuple(torch.randn(1, 2, n, dtype=torch.float64, requires_grad=True) for n in layer.state_sizes)

    def f(x, *rest):
        state, values = rest[: len(hx)], rest[len(hx):]
        torch.manual_seed(1234)
        out, last = torch.func.functional_call(layer, dict(zip(names, values)), (x, hx_arg(state)), {"lengths": [4, 3]})
        return (out, *(last if isinstance(last, tuple) else (last,)))

    assert gradcheck(f, (x, *hx, *params))


@pytest.mark.parametrize("name", ["rnn_layer_norm", "gru_everything", "gru_before_everything", "lstm_everything",
                                  "lstm_proj_everything"])
def test_backward_twice_with_retain_graph(name):
    """Backward reads what forward saved without writing to it, so a retained graph gives the same gradients twice."""
    layer_class, options = VARIANTS[name]
    layer = make_layer(layer_class, options, fused=True).train()
    x = torch.randn(T, B, I, dtype=torch.float64, requires_grad=True)
    output = layer(x, lengths=LENGTHS)[0]
    loss = (output * torch.randn_like(output)).sum()
    inputs = [x, *layer.parameters()]
    first = torch.autograd.grad(loss, inputs, retain_graph=True)
    torch.testing.assert_close(torch.autograd.grad(loss, inputs), first, atol=0, rtol=0)


def test_double_backward_is_the_step_loops():
    """Under create_graph=True the hand-written BPTT differentiates its twin, the step loop
    (tests/test_double_backward.py holds every route to gradgradcheck)."""
    x = torch.randn(T, B, I, dtype=torch.float64, requires_grad=True)
    seconds = []
    for fused in (True, False):
        layer = make_layer(rnnkit.GRU, {"zoneout": 0.3}, fused=fused).train()
        torch.manual_seed(5)
        output = layer(x, lengths=LENGTHS)[0]
        v = torch.linspace(-1, 1, output.numel(), dtype=torch.float64).view_as(output).requires_grad_()
        (grad,) = torch.autograd.grad(output, x, v, create_graph=True)
        seconds.append(torch.autograd.grad(grad.pow(2).sum(), [x, v, *layer.parameters()]))
    torch.testing.assert_close(seconds[0], seconds[1], **TOL)


AUTOCAST_VARIANTS = ["gru", "rnn_tanh", "rnn_relu", "lstm", "lstm_peepholes", "gru_stochastic", "rnn_layer_norm",
                     "gru_layer_norm", "lstm_layer_norm", "gru_before_everything", "lstm_proj_everything"]


def autocast_run(name, *, fused, autocast, lengths=(12, 7, 10)):
    """A float32 layer's outputs and gradients, maybe under bf16 autocast, with the RNG seeded as ``run``."""
    layer_class, options = VARIANTS[name]
    torch.manual_seed(0)
    layer = layer_class(I, 16, backend="loop", **options).train()
    if not fused:
        layer.register_state_hook(lambda *args: None)  # a hooked layer runs the step loop
    torch.manual_seed(7)
    x = torch.randn(12, B, I, requires_grad=True)
    hx = tuple(torch.randn(1, B, n, requires_grad=True) for n in layer.state_sizes)
    torch.manual_seed(1234)
    with torch.autocast("cpu", dtype=torch.bfloat16, enabled=autocast):
        output, state = layer(x, hx_arg(hx), lengths=list(lengths))
    state = state if isinstance(state, tuple) else (state,)
    torch.manual_seed(99)
    loss = sum((t.float() * torch.randn(t.shape)).sum() for t in (output, *state))
    grads = torch.autograd.grad(loss, [x, *hx, *layer.parameters()])
    return [t.float() for t in (output, *state, *grads)]


def relative_error(results, reference):
    return max(((a - b).norm() / b.norm()).item() for a, b in zip(results, reference))


@pytest.mark.parametrize("name", AUTOCAST_VARIANTS)
def test_bf16_autocast_runs_the_products_in_bf16(name):
    """Under autocast the hand-written BPTT computes its matrix products in bf16 and keeps the states in
    float32: its outputs and gradients differ from float32's by bf16 rounding, no more than the autograd
    step loop's under the same autocast do."""
    exact = autocast_run(name, fused=True, autocast=False)
    fused = autocast_run(name, fused=True, autocast=True)
    loop = autocast_run(name, fused=False, autocast=True)
    fused_error, loop_error = relative_error(fused, exact), relative_error(loop, exact)
    assert fused_error > 1e-4  # bf16 rounding (2^-8 relative): the products really ran in bf16
    assert fused_error < 1.5 * loop_error


def test_backward_inside_autocast_keeps_the_forward_precision():
    """Calling backward() inside the autocast region (on CPU it runs on the calling thread) changes nothing."""
    layer = rnnkit.LSTM(I, 16, layer_norm=True)
    x = torch.randn(12, B, I, requires_grad=True)
    grads = []
    for inside in (False, True):
        with torch.autocast("cpu", dtype=torch.bfloat16):
            loss = layer(x)[0].float().pow(2).sum()
            if inside:
                grads.append(torch.autograd.grad(loss, [x, *layer.parameters()]))
        if not inside:
            grads.append(torch.autograd.grad(loss, [x, *layer.parameters()]))
    torch.testing.assert_close(grads[0], grads[1], atol=0, rtol=0)
