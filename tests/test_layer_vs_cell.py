"""Each layer equals its cells stepped by hand: every option, lengths, reverse and both directions.

The hand-stepped reference runs each sequence alone, unpadded, with standalone cells holding the
layer's weights; the reverse direction steps the reversed sequence and its outputs are turned back.
Stochastic options are compared in eval mode here, and in training mode with masks drawn in the
same order on both sides (same seed).
"""

from __future__ import annotations

import pytest
import torch

import rnnkit

I, H = 3, 4
TOL = dict(atol=1e-10, rtol=1e-10)

VARIANTS = {
    "rnn_tanh": (rnnkit.RNN, rnnkit.RNNCell, {}),
    "rnn_relu_layer_norm": (rnnkit.RNN, rnnkit.RNNCell, {"nonlinearity": "relu", "layer_norm": True}),
    "lstm": (rnnkit.LSTM, rnnkit.LSTMCell, {}),
    "lstm_proj": (rnnkit.LSTM, rnnkit.LSTMCell, {"proj_size": 2}),
    "lstm_layer_norm_peepholes": (rnnkit.LSTM, rnnkit.LSTMCell, {"layer_norm": True, "peepholes": True}),
    "gru": (rnnkit.GRU, rnnkit.GRUCell, {}),
    "gru_reset_before_layer_norm": (rnnkit.GRU, rnnkit.GRUCell, {"reset_after": False, "layer_norm": True}),
    "lstm_stochastic": (rnnkit.LSTM, rnnkit.LSTMCell, {"zoneout": 0.3, "recurrent_dropout": 0.3, "dropconnect": 0.3}),
    "gru_stochastic": (rnnkit.GRU, rnnkit.GRUCell, {"zoneout": 0.3, "recurrent_dropout": 0.3, "dropconnect": 0.3}),
    "rnn_stochastic": (rnnkit.RNN, rnnkit.RNNCell, {"zoneout": 0.3, "recurrent_dropout": 0.3, "dropconnect": 0.3}),
}


def slot_cells(layer, cell_class, options):
    """Standalone cells holding the layer's weights, indexed [layer][direction]."""
    cells = []
    directions = 2 if layer.bidirectional else 1
    for k in range(layer.num_layers):
        row = []
        for d in range(directions):
            size = layer.input_size if k == 0 else directions * (options.get("proj_size") or H)
            cell = cell_class(size, H, **options).double()
            suffix = f"_l{k}" + ("_reverse" if d else "")
            cell.load_state_dict({name: getattr(layer, name + suffix) for name, _ in cell.named_parameters()})
            row.append(cell)
        cells.append(row)
    return cells


def run_by_hand(cells, x, state):
    """One sequence ``x`` ``(T, I)``, states as tuples of ``(L*D, size)``: (outputs, final state)."""
    directions = len(cells[0])
    finals = []
    layer_input = x
    for k, row in enumerate(cells):
        outputs = []
        for d, cell in enumerate(row):
            slot = k * directions + d
            s = tuple(part[slot : slot + 1] for part in state)
            seq = layer_input if d == 0 else layer_input.flip(0)
            ys = []
            for x_t in seq:
                out = cell(x_t.unsqueeze(0), s if len(s) > 1 else s[0])
                s = out if isinstance(out, tuple) else (out,)
                ys.append(s[0])
            ys = torch.cat(ys)
            outputs.append(ys if d == 0 else ys.flip(0))
            finals.append(s)
        layer_input = torch.cat(outputs, dim=-1)
    return layer_input, tuple(torch.cat(parts) for parts in zip(*finals))


@pytest.mark.parametrize("name", list(VARIANTS))
@pytest.mark.parametrize("bidirectional", [False, True])
@pytest.mark.parametrize("num_layers", [1, 2])
def test_layer_equals_cells_stepped_by_hand(name, bidirectional, num_layers):
    layer_class, cell_class, options = VARIANTS[name]
    torch.manual_seed(0)
    layer = layer_class(I, H, num_layers=num_layers, bidirectional=bidirectional, **options).double().eval()
    cells = slot_cells(layer, cell_class, options)
    for row in cells:
        for cell in row:
            cell.eval()
    lengths = [5, 2, 4]
    x = torch.randn(5, 3, I, dtype=torch.float64)
    slots = num_layers * (2 if bidirectional else 1)
    sizes = cells[0][0].state_sizes
    hx = tuple(torch.randn(slots, 3, s, dtype=torch.float64) for s in sizes)
    output, state = layer(x, hx if len(hx) > 1 else hx[0], lengths=lengths)
    state = state if isinstance(state, tuple) else (state,)
    for b, n in enumerate(lengths):
        expected_out, expected_state = run_by_hand(cells, x[:n, b], tuple(h[:, b] for h in hx))
        torch.testing.assert_close(output[:n, b], expected_out, **TOL)
        for got, want in zip(state, expected_state, strict=True):
            torch.testing.assert_close(got[:, b], want, **TOL)


@pytest.mark.parametrize("name", ["lstm_stochastic", "gru_stochastic", "rnn_stochastic"])
def test_training_mode_with_the_same_masks(name):
    """Training mode: each (layer, direction) draws its per-sequence masks once, then zoneout per step."""
    layer_class, cell_class, options = VARIANTS[name]
    torch.manual_seed(0)
    layer = layer_class(I, H, num_layers=2, bidirectional=True, backend="loop", **options).double().train()
    cells = slot_cells(layer, cell_class, options)
    x = torch.randn(5, 3, I, dtype=torch.float64)

    torch.manual_seed(99)
    output, _ = layer(x)

    torch.manual_seed(99)
    layer_input = x
    for row in cells:
        outputs = []
        for d, cell in enumerate(row):
            params = cell.parameters_dict()
            seq = layer_input if d == 0 else layer_input.flip(0)
            ctx = cell.begin_sequence(3, params, training=True)
            state = cell.initial_state(3, dtype=x.dtype, device=x.device)
            ys = []
            for x_t in seq:
                y, state = cell.step(cell.project_input(x_t, params), state, params, ctx)
                ys.append(y)
            ys = torch.stack(ys)
            outputs.append(ys if d == 0 else ys.flip(0))
        layer_input = torch.cat(outputs, dim=-1)
    torch.testing.assert_close(output, layer_input, **TOL)
    torch.manual_seed(98)
    assert not torch.allclose(layer(x)[0], output)  # other seed, other masks


class Leaky(rnnkit.RecurrentCell):
    """A user-defined cell: the contract from rnnkit.cells' docstring."""

    def __init__(self, input_size, hidden_size):
        super().__init__(input_size, hidden_size)
        self.weight_ih = torch.nn.Parameter(torch.randn(hidden_size, input_size) * 0.5)
        self.weight_hh = torch.nn.Parameter(torch.randn(hidden_size, hidden_size) * 0.5)

    def project_input(self, x, params):
        return x @ params["weight_ih"].T

    def step(self, xp_t, state, params, ctx=None):
        (h,) = state
        h = 0.5 * h + 0.5 * torch.tanh(xp_t + h @ params["weight_hh"].T)
        return h, (h,)


def test_user_cell_gets_stacking_directions_lengths_and_streaming():
    torch.manual_seed(0)
    layer = rnnkit.Recurrent(lambda n: Leaky(n, H), input_size=I, num_layers=2, bidirectional=True).double()
    lengths = [4, 2]
    x = torch.randn(4, 2, I, dtype=torch.float64)
    output, h_n = layer(x, lengths=lengths)
    assert output.shape == (4, 2, 2 * H) and h_n.shape == (4, 2, H)
    cells = [[layer.cells[0], layer.cells[1]], [layer.cells[2], layer.cells[3]]]
    for b, n in enumerate(lengths):
        expected_out, (expected_h,) = run_by_hand(cells, x[:n, b], (torch.zeros(4, H, dtype=torch.float64),))
        torch.testing.assert_close(output[:n, b], expected_out, **TOL)
        torch.testing.assert_close(h_n[:, b], expected_h, **TOL)
    assert torch.count_nonzero(output[2:, 1]) == 0

    forward_only = rnnkit.Recurrent(lambda n: Leaky(n, H), input_size=I, num_layers=2).double()
    out, h = forward_only(x)
    state, ys = None, []
    for x_t in x:
        y, state = forward_only.step(x_t, state)
        ys.append(y)
    torch.testing.assert_close(torch.stack(ys), out, **TOL)
    torch.testing.assert_close(state, h, **TOL)


def test_single_cell_instance_is_accepted():
    cell = rnnkit.GRUCell(I, H, layer_norm=True).double()
    layer = rnnkit.Recurrent(cell, input_size=I)
    x = torch.randn(3, 2, I, dtype=torch.float64)
    out, h = layer(x)
    state = None
    for x_t in x:
        state = cell(x_t, state)
    torch.testing.assert_close(h[0], state, **TOL)


# --- minGRU / minLSTM: the parallel scan against the step -----------------------------------
@pytest.mark.parametrize("layer_class", [rnnkit.MinGRU, rnnkit.MinLSTM])
@pytest.mark.parametrize(
    "steps,scan,chunk", [(7, "log", 32), (300, "log", 32), (2000, "log", 32), (130, "log", 1), (2000, "sequential", 32)]
)
def test_parallel_scan_equals_step_in_float32(layer_class, steps, scan, chunk):
    """Feng et al. 2024: the log-space scan (and the fused sequential one) compute the step's states."""
    torch.manual_seed(0)
    layer = layer_class(I, H, num_layers=2, scan=scan, scan_chunk=chunk)
    x = torch.randn(steps, 3, I)
    h0 = torch.randn(2, 3, H)  # any sign: h0 enters the scan linearly
    output, h_n = layer(x, h0)
    state, ys = h0, []
    for x_t in x:
        y, state = layer.step(x_t, state)
        ys.append(y)
    torch.testing.assert_close(output, torch.stack(ys), atol=1e-5, rtol=1e-5)
    torch.testing.assert_close(h_n, state, atol=1e-5, rtol=1e-5)


def test_min_gru_step_follows_its_equations():
    """h_t = (1 - z) h + z g(h~), z = sigmoid(W_z x + b_z), h~ = W_h x + b_h (Feng et al. sec. 3.1, B.3)."""
    torch.manual_seed(0)
    cell = rnnkit.MinGRUCell(I, H).double()
    x = torch.randn(2, I, dtype=torch.float64)
    h = torch.randn(2, H, dtype=torch.float64)
    W_z, W_h = cell.weight.split(H)
    b_z, b_h = cell.bias.split(H)
    z = torch.sigmoid(x @ W_z.T + b_z)
    h_tilde = x @ W_h.T + b_h
    g = torch.where(h_tilde >= 0, h_tilde + 0.5, torch.sigmoid(h_tilde))
    torch.testing.assert_close(cell(x, h), (1 - z) * h + z * g, **TOL)


def test_min_lstm_step_follows_its_equations():
    torch.manual_seed(0)
    cell = rnnkit.MinLSTMCell(I, H).double()
    x = torch.randn(2, I, dtype=torch.float64)
    h = torch.randn(2, H, dtype=torch.float64)
    k_f, k_i, k_h = (x @ cell.weight.T + cell.bias).split(H, -1)
    f, i = torch.sigmoid(k_f), torch.sigmoid(k_i)
    g = torch.where(k_h >= 0, k_h + 0.5, torch.sigmoid(k_h))
    torch.testing.assert_close(cell(x, h), f / (f + i) * h + i / (f + i) * g, **TOL)


@pytest.mark.parametrize("layer_class", [rnnkit.MinGRU, rnnkit.MinLSTM])
def test_log_space_and_sequential_scans_agree_with_lengths(layer_class):
    torch.manual_seed(0)
    log = layer_class(I, H, num_layers=2, bidirectional=True, scan="log").double()
    sequential = layer_class(I, H, num_layers=2, bidirectional=True, scan="sequential").double()
    sequential.load_state_dict(log.state_dict())
    x = torch.randn(9, 3, I, dtype=torch.float64, requires_grad=True)
    outputs = []
    for layer in (log, sequential):
        out, h = layer(x, lengths=[9, 4, 6])
        (grad,) = torch.autograd.grad((out * torch.arange(out.numel()).view_as(out)).sum() + h.sum(), x)
        outputs.append((out, h, grad))
    for a, b in zip(*outputs):
        torch.testing.assert_close(a, b, atol=1e-10, rtol=1e-10)


def test_linear_recurrence_gradcheck():
    from rnnkit.scan import LinearRecurrence

    a = torch.rand(12, 2, 3, dtype=torch.float64, requires_grad=True)
    b = torch.randn(12, 2, 3, dtype=torch.float64, requires_grad=True)
    h0 = torch.randn(2, 3, dtype=torch.float64, requires_grad=True)
    assert torch.autograd.gradcheck(LinearRecurrence.apply, (a, b, h0))
