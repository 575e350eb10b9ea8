"""Second derivatives through every layer, cell and route, held by ``gradgradcheck`` in float64
(gradients of gradients: penalties, Hessian-vector products, meta-learning).

The hand-written BPTT and the compiled loops differentiate their step-loop twin under
``create_graph=True`` (rnnkit.scan._twin); torch.nn's CPU kernels, the step loop and
minGRU/minLSTM's scans are differentiable twice as they stand. Before, ``torch.autograd.grad``
returned silently zero or None through rnnkit's own loops.
"""

from __future__ import annotations

import pytest
import torch
from torch.autograd import gradgradcheck

import rnnkit
from rnnkit import _native, scan

T, B, I, H = 3, 2, 2, 3
OPTIONS = {
    "gru": (rnnkit.GRU, {}),
    "gru_before": (rnnkit.GRU, {"reset_after": False}),
    "gru_layer_norm": (rnnkit.GRU, {"layer_norm": True}),
    "rnn_tanh": (rnnkit.RNN, {}),
    "rnn_relu_layer_norm": (rnnkit.RNN, {"nonlinearity": "relu", "layer_norm": True}),
    "lstm": (rnnkit.LSTM, {}),
    "lstm_peepholes": (rnnkit.LSTM, {"peepholes": True}),
    "lstm_layer_norm": (rnnkit.LSTM, {"layer_norm": True}),
    "lstm_proj": (rnnkit.LSTM, {"proj_size": 2}),
    "lstm_stochastic": (rnnkit.LSTM, {"zoneout": 0.3, "recurrent_dropout": 0.3, "dropconnect": 0.3}),
    "gru_stochastic": (rnnkit.GRU, {"zoneout": 0.3, "recurrent_dropout": 0.3, "dropconnect": 0.3}),
}


def layer_function(layer, lengths):
    """The layer's output and final state(s) as a function of its input, its initial state and every
    parameter, the RNG re-seeded at each call (so stochastic options draw the same masks)."""
    # the recurrent weights and the options' own parameters: the input weights enter linearly,
    # through the same paths (checking them too only multiplies the numerical Jacobians' cost)
    names, params = zip(*((n, p) for n, p in layer.named_parameters() if not n.startswith(("weight_ih", "bias_ih"))))
    components = len(layer.state_sizes)
    slots = layer.num_layers * layer.num_directions
    torch.manual_seed(0)
    x = torch.randn(T, B, I, dtype=torch.float64, requires_grad=True)
    state = tuple(torch.randn(slots, B, n, dtype=torch.float64, requires_grad=True) for n in layer.state_sizes)

    def f(x, *values):
        hx, weights = values[:components], dict(zip(names, values[components:]))
        torch.manual_seed(1234)
        out, last = torch.func.functional_call(layer, weights, (x, hx if components > 1 else hx[0]),
                                               {"lengths": lengths}, strict=False)  # fmt: skip
        return (out, *(last if isinstance(last, tuple) else (last,)))

    return f, (x, *state, *params)


SHAPES = {"full": (None, False), "lengths": ([3, 2], False), "bidirectional-lengths": ([3, 2], True)}
COMPILED = ("gru", "rnn_tanh", "lstm_layer_norm")  # the layers with a compiled loop
STEP_LOOP = ("gru_before", "lstm_stochastic", "rnn_relu_layer_norm")  # autograd's own: a few cases suffice
CASES = [(name, shape, "bptt") for name in OPTIONS for shape in SHAPES]
CASES += [(name, shape, "compiled") for name in COMPILED for shape in SHAPES if _native.ops() is not None]
CASES += [(name, shape, "loop") for name in STEP_LOOP for shape in SHAPES]


@pytest.mark.parametrize("name, shape, route", CASES, ids=["-".join(c) for c in CASES])
def test_every_layer_and_route_has_a_right_second_derivative(name, shape, route):
    layer_class, options = OPTIONS[name]
    lengths, bidirectional = SHAPES[shape]
    torch.manual_seed(0)
    layer = layer_class(I, H, bidirectional=bidirectional, backend="loop", **options).double().train()
    f, inputs = layer_function(layer, lengths)
    with scan.disabled(*{"compiled": (), "bptt": ("compiled",), "loop": ("compiled", "bptt")}[route]):
        assert layer.route(inputs[0]) == route
        assert gradgradcheck(f, inputs, fast_mode=True)


def test_a_second_derivative_through_the_fast_routes_is_not_silently_zero():
    """What torch's once_differentiable let through: ``autograd.grad(..., inputs=...)`` pruned its
    deferred error, and the second derivative came back as None."""
    torch.manual_seed(0)
    layer = rnnkit.GRU(I, H).double()
    x = torch.randn(T, B, I, dtype=torch.float64, requires_grad=True)
    output = layer(x)[0]
    v = torch.randn_like(output, requires_grad=True)
    (first,) = torch.autograd.grad(output, x, v, create_graph=True)
    (second,) = torch.autograd.grad(first.pow(2).sum(), v)
    assert second is not None and second.abs().max() > 0


def test_a_function_without_a_twin_refuses_a_second_derivative():
    from rnnkit.scan import _gru

    torch.manual_seed(0)
    cell = rnnkit.GRUCell(I, H).double()
    params = cell.parameters_dict()
    xp = cell.project_input(torch.randn(T, B, I, dtype=torch.float64), params).detach().requires_grad_()
    h0 = torch.zeros(B, H, dtype=torch.float64)
    hs = _gru.CompiledGRU.apply(xp, h0, params["weight_hh"], params["bias_hh"], None, None)
    with pytest.raises(scan.DoubleBackwardError, match="without a twin"):
        torch.autograd.grad(hs.sum(), xp, create_graph=True)


@pytest.mark.parametrize("layer_class", [rnnkit.LSTM, rnnkit.GRU, rnnkit.RNN])
def test_torch_nn_kernels_are_twice_differentiable_on_cpu(layer_class):
    layer = layer_class(I, H, num_layers=2, backend="torch").double()
    f, inputs = layer_function(layer, [3, 2])
    assert gradgradcheck(f, inputs)


@pytest.mark.parametrize("layer_class", [rnnkit.MinGRU, rnnkit.MinLSTM])
@pytest.mark.parametrize("mode", ["auto", "sequential", "log"])  # auto on CPU: the compiled scan where built
def test_mingru_and_minlstm_scans_are_twice_differentiable(layer_class, mode):
    lengths = [3, 2]
    torch.manual_seed(0)
    layer = layer_class(I, H, num_layers=2, scan=mode).double()
    f, inputs = layer_function(layer, lengths)
    sequential = "compiled" if _native.ops() is not None else "linear"
    assert layer.route(inputs[0]) == ("log" if mode == "log" else sequential)
    assert gradgradcheck(f, inputs)


def test_the_python_linear_recurrence_is_twice_differentiable():
    torch.manual_seed(0)
    a = torch.rand(6, 2, 3, dtype=torch.float64, requires_grad=True)
    b = torch.randn(6, 2, 3, dtype=torch.float64, requires_grad=True)
    h0 = torch.randn(2, 3, dtype=torch.float64, requires_grad=True)
    assert gradgradcheck(scan.LinearRecurrence.apply, (a, b, h0))


@pytest.mark.parametrize("cell", [rnnkit.RNNCell(I, H), rnnkit.GRUCell(I, H, reset_after=False),
                                  rnnkit.LSTMCell(I, H, peepholes=True, layer_norm=True)],
                         ids=["rnn", "gru_before", "lstm"])  # fmt: skip
def test_cells_alone_are_twice_differentiable(cell):
    cell = cell.double()
    x = torch.randn(B, I, dtype=torch.float64, requires_grad=True)
    state = tuple(torch.randn(B, n, dtype=torch.float64, requires_grad=True) for n in cell.state_sizes)

    def f(x, *state):
        out = cell(x, state if len(state) > 1 else state[0])
        return out if isinstance(out, tuple) else (out,)

    assert gradgradcheck(f, (x, *state))


def test_a_hessian_vector_product_matches_the_step_loops():
    """A Hessian-vector product through a GRU's default route, against finite differences."""
    torch.manual_seed(0)
    layer = rnnkit.GRU(I, H, num_layers=2).double()
    x = torch.randn(T, B, I, dtype=torch.float64)
    params = list(layer.parameters())
    vector = [torch.randn_like(p) for p in params]
    assert layer.route(x) in ("compiled", "torch")
    loss = layer(x)[0].pow(2).sum()
    grads = torch.autograd.grad(loss, params, create_graph=True)
    hvp = torch.autograd.grad(sum((g * v).sum() for g, v in zip(grads, vector)), params)
    # the same product by finite differences of the (first-order, fast-route) gradient
    eps = 1e-6

    def gradient_at(shift):
        with torch.no_grad():
            for p, v in zip(params, vector):
                p.add_(shift * v)
        g = torch.autograd.grad(layer(x)[0].pow(2).sum(), params)
        with torch.no_grad():
            for p, v in zip(params, vector):
                p.sub_(shift * v)
        return g

    plus, minus = gradient_at(eps), gradient_at(-eps)
    for h, p, m in zip(hvp, plus, minus):
        torch.testing.assert_close(h, (p - m) / (2 * eps), atol=1e-5, rtol=1e-5)
