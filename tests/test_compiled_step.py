"""The compiled streaming step (``stack_step`` in rnnkit/_native/rnn.cpp): every layer of a plain
RNN/LSTM/GRU's ``step`` in one call, held to its twin -- the cells' own ``step``, layer after layer
(``backend="loop"`` under ``rnnkit.scan.disabled("compiled")``), and torch.nn's cell kernels (the
route a plain layer took before) -- and falling back wherever it does not apply.

Tolerances as tests/test_compiled.py: 1e-10 in float64 (the compiled products sum in another
order, and the library is built with -ffast-math), 1e-5 in float32.
"""

from __future__ import annotations

import pytest
import torch

import rnnkit
from rnnkit import _native, scan

pytestmark = pytest.mark.skipif(_native.ops() is None, reason="the compiled loops could not be built here")

I, H, T = 4, 6, 5
TOLERANCES = {torch.float64: dict(atol=1e-10, rtol=1e-10), torch.float32: dict(atol=1e-5, rtol=1e-5)}
LAYERS = {
    "lstm": (rnnkit.LSTM, {}),
    "lstm_proj": (rnnkit.LSTM, {"proj_size": 3}),
    "lstm_no_bias": (rnnkit.LSTM, {"bias": False}),
    "lstm_forget_bias": (rnnkit.LSTM, {"forget_bias": 1.0}),
    "gru": (rnnkit.GRU, {}),
    "gru_no_bias": (rnnkit.GRU, {"bias": False}),
    "rnn_tanh": (rnnkit.RNN, {}),
    "rnn_relu": (rnnkit.RNN, {"nonlinearity": "relu"}),
    "rnn_relu_no_bias": (rnnkit.RNN, {"nonlinearity": "relu", "bias": False}),
}


def make(name, dtype=torch.float32, num_layers=2, **more):
    layer_class, options = LAYERS[name]
    torch.manual_seed(0)
    return layer_class(I, H, num_layers=num_layers, dtype=dtype, **options, **more).eval()


def random_state(layer, batch, dtype):
    parts = tuple(torch.randn(layer.num_layers, batch, size, dtype=dtype) for size in layer.state_sizes)
    return parts if len(parts) > 1 else parts[0]


def parts(state):
    return state if isinstance(state, tuple) else (state,)


def stepped(layer, xs, state):
    """Step ``layer`` through ``xs`` (T, B, I) from ``state``: every output, and the last state."""
    outputs = []
    for x_t in xs:
        y, state = layer.step(x_t, state)
        outputs.append(y)
    return torch.stack(outputs), state


@pytest.mark.parametrize("name", list(LAYERS))
@pytest.mark.parametrize("num_layers", [1, 2, 3])
@pytest.mark.parametrize("dtype", [torch.float64, torch.float32])
@pytest.mark.parametrize("given_state", [False, True], ids=["state None", "state given"])
@pytest.mark.parametrize("batch", [1, 3, 17], ids=["B1", "B3", "B17 (MKL's products)"])
def test_compiled_step_equals_the_cells_step(name, num_layers, dtype, given_state, batch):
    layer = make(name, dtype, num_layers)
    twin = make(name, dtype, num_layers, backend="loop")
    twin.load_state_dict(layer.state_dict())
    torch.manual_seed(1)
    xs = torch.randn(T, batch, I, dtype=dtype)
    state = random_state(layer, batch, dtype) if given_state else None
    with torch.no_grad():
        assert layer.step_route(xs[0], state) == "compiled"
        with scan.disabled("compiled"):
            assert twin.step_route(xs[0], state) == "cells"
            expected = stepped(twin, xs, state)
            kernels = stepped(layer, xs, state)  # torch.nn's cell kernels where it has them
        got = stepped(layer, xs, state)
        whole = layer(xs, state)  # and the whole sequence at once equals the steps
    for a, b, c, d in zip((got[0], *parts(got[1])), (expected[0], *parts(expected[1])),
                          (kernels[0], *parts(kernels[1])), (whole[0], *parts(whole[1])), strict=True):  # fmt: skip
        torch.testing.assert_close(a, b, **TOLERANCES[dtype])
        torch.testing.assert_close(a, c, **TOLERANCES[dtype])
        torch.testing.assert_close(a, d, **TOLERANCES[dtype])


@pytest.mark.parametrize("name", ["lstm", "lstm_proj", "gru", "rnn_tanh"])
def test_unbatched_input_and_state(name):
    layer = make(name, torch.float64)
    x = torch.randn(I, dtype=torch.float64)
    state = tuple(s[:, 0] for s in parts(random_state(layer, 1, torch.float64)))  # (L, size) each
    state = state if len(state) > 1 else state[0]
    with torch.no_grad():
        assert layer.step_route(x, state) == "compiled"
        y, new = layer.step(x, state)
        with scan.disabled("compiled"):
            y_twin, new_twin = layer.step(x, state)
    assert y.shape == (layer.output_size,)
    torch.testing.assert_close(y, y_twin, **TOLERANCES[torch.float64])
    for a, b in zip(parts(new), parts(new_twin), strict=True):
        assert a.shape == b.shape
        torch.testing.assert_close(a, b, **TOLERANCES[torch.float64])


@pytest.mark.parametrize("name", ["lstm", "gru"])
def test_the_given_state_is_only_read(name):
    layer = make(name, num_layers=3)
    state = random_state(layer, 2, torch.float32)
    before = [s.clone() for s in parts(state)]
    with torch.no_grad():
        _, new = layer.step(torch.randn(2, I), state)
    for s, b, n in zip(parts(state), before, parts(new), strict=True):
        assert torch.equal(s, b)
        assert n.untyped_storage().data_ptr() != s.untyped_storage().data_ptr()


def test_learned_initial_state_and_a_non_contiguous_state():
    layer = make("lstm", torch.float64, num_layers=2, learn_initial_state=True)
    with torch.no_grad():
        layer.h0.normal_()
        layer.c0.normal_()
    x = torch.randn(3, I, dtype=torch.float64)
    h = torch.randn(3, 2, H, dtype=torch.float64).transpose(0, 1)  # (L, B, H), not contiguous
    c = torch.randn(2, H, 3, dtype=torch.float64).permute(0, 2, 1)
    with torch.no_grad():
        for state in (None, (h, c)):
            assert layer.step_route(x, state) == "compiled"
            got = layer.step(x, state)
            with scan.disabled("compiled"):
                expected = layer.step(x, state)
            for a, b in zip((got[0], *got[1]), (expected[0], *expected[1]), strict=True):
                torch.testing.assert_close(a, b, **TOLERANCES[torch.float64])


def test_inference_mode_takes_it_too():
    layer = make("gru")
    x = torch.randn(2, I)
    with torch.inference_mode():
        assert layer.step_route(x) == "compiled"
        y, h = layer.step(x)
    with torch.no_grad(), scan.disabled("compiled"):
        y_twin, h_twin = layer.step(x)
    torch.testing.assert_close(y, y_twin, **TOLERANCES[torch.float32])
    torch.testing.assert_close(h, h_twin, **TOLERANCES[torch.float32])


def test_same_numbers_on_two_threads():
    """The products split the weight's rows between threads; each row's sum is the same either way."""
    torch.manual_seed(2)
    layer = rnnkit.LSTM(128, 128, num_layers=2).eval()
    x, state = torch.randn(1, 128), (torch.randn(2, 1, 128), torch.randn(2, 1, 128))
    threads = torch.get_num_threads()
    with torch.no_grad():
        one = layer.step(x, state)
        torch.set_num_threads(2)
        try:
            two = layer.step(x, state)
        finally:
            torch.set_num_threads(threads)
    for a, b in zip((one[0], *one[1]), (two[0], *two[1]), strict=True):
        assert torch.equal(a, b)


def test_falls_back_where_it_does_not_apply():
    x = torch.randn(2, I)
    plain = make("lstm")
    assert plain.step_route(x) == "torch"  # gradients on: torch.nn's cell kernels, recorded by autograd
    y, _ = plain.step(x)
    assert y.requires_grad
    with torch.no_grad():
        assert make("lstm_proj").step_route(x) == "compiled"
        assert rnnkit.LSTM(I, H, layer_norm=True).eval().step_route(x) == "cells"  # an option torch.nn lacks
        assert rnnkit.GRU(I, H, zoneout=0.1).eval().step_route(x) == "cells"
        assert make("lstm", backend="torch").step_route(x) == "torch"
        assert make("lstm", backend="loop").step_route(x) == "compiled"
        dropped = make("lstm", dropout=0.5)
        assert dropped.step_route(x) == "compiled"  # eval: no dropout between the layers
        assert dropped.train().step_route(x) == "torch"
        assert make("gru").train().step_route(x) == "compiled"  # training mode, but nothing drawn
        with torch.autocast("cpu", dtype=torch.bfloat16):
            assert plain.step_route(x) == "torch"
        with scan.disabled("compiled"):
            assert plain.step_route(x) == "torch"
        assert rnnkit.MinGRU(I, H).step_route(x) == "cells"


def test_without_the_compiled_loops(monkeypatch):
    monkeypatch.setenv("RNNKIT_NATIVE", "0")
    assert _native.ops() is None
    layer = make("gru")
    with torch.no_grad():
        assert layer.step_route(torch.randn(2, I)) == "torch"
        y, _ = layer.step(torch.randn(2, I))
    assert y.shape == (2, H)


def test_bad_input_is_still_named():
    layer = make("lstm")
    with torch.no_grad():
        with pytest.raises(ValueError, match="input_size: expected 4, got 5"):
            layer.step(torch.randn(2, 5))
        with pytest.raises(ValueError, match="dtype"):
            layer.step(torch.randn(2, I, dtype=torch.float64))
        with pytest.raises(ValueError, match=r"state \(h\)"):
            layer.step(torch.randn(2, I), (torch.zeros(1, 2, H), torch.zeros(2, 2, H)))
        with pytest.raises(TypeError, match="state must be a tuple of 2 tensors"):
            layer.step(torch.randn(2, I), torch.zeros(2, 2, H))
