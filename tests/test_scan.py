"""rnnkit.scan's routes: which one runs a call, and that every one of them is held to the step loop."""

from __future__ import annotations

import pytest
import torch

import rnnkit
from rnnkit import _native, scan
from rnnkit.cells import LSTMCell, RecurrentCell

T, B, I, H = 5, 2, 3, 4
COMPILED = _native.ops() is not None


def call_for(cell, dtype=torch.float64, **more):
    cell = cell.to(dtype)
    params = cell.parameters_dict()
    xp = cell.project_input(torch.randn(T, B, I, dtype=dtype), params)
    return cell, scan.ScanCall(xp, cell.initial_state(B, dtype=dtype, device=xp.device), params, **more)


@pytest.mark.parametrize(
    "cell, expected",
    [
        (rnnkit.GRUCell(I, H), "compiled" if COMPILED else "bptt"),
        (rnnkit.RNNCell(I, H, nonlinearity="relu"), "compiled" if COMPILED else "bptt"),
        (rnnkit.GRUCell(I, H, reset_after=False), "bptt"),
        (rnnkit.LSTMCell(I, H), "bptt"),  # a plain LSTM layer takes torch.nn's kernel, a whole-stack route
        (rnnkit.LSTMCell(I, H, layer_norm=True), "compiled" if COMPILED else "bptt"),
        (rnnkit.LSTMCell(I, H, layer_norm=True, zoneout=0.1), "bptt"),
        (rnnkit.MinGRUCell(I, H), "compiled" if COMPILED else "linear"),
        (rnnkit.MinLSTMCell(I, H, scan="log"), "log"),
    ],
    ids=["gru", "relu", "gru_before", "lstm", "lstm_layer_norm", "lstm_layer_norm_zoneout", "mingru", "minlstm_log"],
)
def test_the_first_route_that_supports_a_call_runs_it(cell, expected):
    cell, call = call_for(cell)
    assert scan.select(cell, call, exclude={"torch"}).name == expected


def test_routes_are_listed_in_order_with_the_step_loop_last():
    names = [r.name for r in scan.routes_for(rnnkit.LSTMCell(I, H))]
    assert names == ["torch", "compiled", "bptt", "loop"]
    assert [r.name for r in scan.routes_for(rnnkit.GRUCell(I, H))] == ["compiled", "torch", "bptt", "loop"]


def test_a_hook_or_per_step_states_narrow_the_choice():
    cell, call = call_for(rnnkit.GRUCell(I, H), hook=lambda t, state: None)
    assert scan.select(cell, call).name == "loop"  # only the step loop calls a hook every step
    cell, call = call_for(rnnkit.LSTMCell(I, H), return_states=True)
    assert scan.select(cell, call).name != "torch"  # torch.nn's kernels keep no per-step states


def test_disabled_routes_are_skipped_inside_the_block_only():
    cell, call = call_for(rnnkit.GRUCell(I, H))
    with scan.disabled("compiled", "bptt"):
        assert scan.select(cell, call, exclude={"torch"}).name == "loop"
    assert scan.select(cell, call, exclude={"torch"}).name == ("compiled" if COMPILED else "bptt")
    with pytest.raises(ValueError, match="cannot be disabled"):
        with scan.disabled("loop"):
            pass


class Doubled(LSTMCell):
    """A subclass that changes the math: no route written for LSTMCell may run it."""

    def step(self, xp_t, state, params, ctx=None):
        y, (h, c) = super().step(xp_t, state, params, ctx)
        return 2 * y, (2 * h, c)


class Named(LSTMCell):
    """A subclass that keeps the math (only its repr changes): it keeps the family's routes."""

    def extra_repr(self):
        return "named " + super().extra_repr()


def test_a_subclass_keeps_its_familys_routes_unless_it_overrides_the_math():
    assert [r.name for r in scan.routes_for(Named(I, H))] == ["torch", "compiled", "bptt", "loop"]
    assert [r.name for r in scan.routes_for(Doubled(I, H))] == ["loop"]
    torch.manual_seed(0)
    layer = rnnkit.Recurrent(Doubled(I, H), I).double()
    x = torch.randn(T, B, I, dtype=torch.float64)
    output, _ = layer(x)
    with scan.disabled("compiled", "bptt"):  # what LSTMCell's steps would give
        plain = rnnkit.Recurrent(LSTMCell(I, H), I).double()
        plain.load_state_dict(layer.state_dict())
        expected, _ = plain(x)
    assert layer.route(x) == "loop"
    assert not torch.allclose(output, expected)  # the override ran: no fast path stood in for it


class Leaky(RecurrentCell):
    """The contract's example cell, with a route of its own registered below."""

    def __init__(self, input_size, hidden_size):
        super().__init__(input_size, hidden_size)
        self.weight_ih = torch.nn.Parameter(torch.randn(hidden_size, input_size) * 0.3)

    def project_input(self, x, params):
        return x @ params["weight_ih"].T

    def step(self, xp_t, state, params, ctx=None):
        h = 0.5 * state[0] + 0.5 * torch.tanh(xp_t)
        return h, (h,)


def _leaky_scan(cell, call):
    """All steps at once: h_t = 0.5 h_{t-1} + 0.5 tanh(x'_t) is a linear recurrence."""
    a = torch.full_like(call.xp, 0.5)
    b = 0.5 * torch.tanh(call.xp)
    if call.mask is not None:
        m = call.mask.unsqueeze(-1)
        a, b = torch.where(m, a, 1.0), torch.where(m, b, 0.0)
    hs = scan.LinearRecurrence.apply(a, b, call.state[0])
    ys = hs if call.mask is None else torch.where(call.mask.unsqueeze(-1), hs, 0.0)
    return ys, (hs[-1],), ((hs,) if call.return_states else None)


def test_a_user_cell_registers_a_route_the_layers_take_and_it_equals_the_step_loop():
    scan.register(Leaky, scan.Route("linear", lambda cell, call: True, _leaky_scan))
    try:
        torch.manual_seed(0)
        layer = rnnkit.Recurrent(lambda n: Leaky(n, I), I, num_layers=2, bidirectional=True).double()
        x = torch.randn(T, B, I, dtype=torch.float64, requires_grad=True)
        assert layer.route(x) == "linear"
        fast = layer(x, lengths=[5, 3])
        fast_grad = torch.autograd.grad(fast[0].sum(), x)
        layer.register_state_hook(lambda *args: None)  # a hooked layer runs the step loop
        assert layer.route(x) == "loop"
        slow = layer(x, lengths=[5, 3])
        slow_grad = torch.autograd.grad(slow[0].sum(), x)
        torch.testing.assert_close(fast[0], slow[0], atol=1e-12, rtol=0)
        torch.testing.assert_close(fast[1], slow[1], atol=1e-12, rtol=0)
        torch.testing.assert_close(fast_grad, slow_grad, atol=1e-12, rtol=0)
    finally:
        scan.register(Leaky)  # no routes of its own again


def test_register_checks_its_arguments():
    with pytest.raises(TypeError, match="RecurrentCell subclass"):
        scan.register(int, scan.Route("x", lambda c, k: True, None))
    with pytest.raises(TypeError, match="rnnkit.scan.Route"):
        scan.register(Leaky, ("x", None, None))


def test_layers_report_their_route():
    x = torch.randn(T, B, I)
    assert rnnkit.LSTM(I, H).route(x) == "torch"
    assert rnnkit.LSTM(I, H, backend="loop").route(x) == "bptt"
    assert rnnkit.LSTM(I, H, zoneout=0.1).route(x) == "bptt"
    assert rnnkit.GRU(I, H, return_states=True).route(x) == ("compiled" if COMPILED else "bptt")
    assert rnnkit.RNN(I, H, backend="torch").route(x) == "torch"
