"""Gradient-flow diagnostics against references computed by hand: retain_grad on cells stepped by
hand, the Elman Jacobian written out, geometric decay in the linear regime."""

import doctest
import json
import math

import pytest
import torch
from torch import nn

import rnnkit
from rnnkit import scan
from rnnkit.training import diagnostics
from rnnkit.training.diagnostics import (
    GradientMonitor,
    global_gradient_norm,
    hidden_gradient_norms,
    parameter_gradient_norms,
    plot_gradient_flow,
    recurrent_jacobian_norms,
    track_hidden_gradients,
)

CELLS = {"LSTM": rnnkit.LSTMCell, "GRU": rnnkit.GRUCell, "RNN": rnnkit.RNNCell}


def step_by_hand(layer, x):
    """One sequence ``x`` ``(T, 1, I)`` through cells loaded with the layer's weights.

    Returns the output ``(T, 1, D*H)`` and every ``h`` by ``(slot, input step)``, with retain_grad.
    """
    states, layer_input = {}, x
    for index in range(layer.num_layers):
        outputs = []
        for direction in range(layer.num_directions):
            slot = index * layer.num_directions + direction
            cell = CELLS[type(layer).__name__](layer_input.shape[-1], layer.hidden_size).double()
            suffix = f"_l{index}" + ("_reverse" if direction else "")
            cell.load_state_dict({n: getattr(layer, n + suffix) for n, _ in cell.named_parameters()})
            order = range(len(x)) if direction == 0 else reversed(range(len(x)))
            hx, ys = None, [None] * len(x)
            for t in order:
                hx = cell(layer_input[t], hx)
                h = hx[0] if isinstance(hx, tuple) else hx
                h.retain_grad()
                states[(slot, t)] = ys[t] = h
            outputs.append(torch.stack(ys))
        layer_input = torch.cat(outputs, dim=-1)
    return layer_input, states


@pytest.mark.parametrize("kind", ["LSTM", "GRU"])
@pytest.mark.parametrize("lengths", [None, [5, 3, 1]])
def test_hidden_norms_equal_retain_grad_of_cells_stepped_by_hand(kind, lengths):
    torch.manual_seed(0)
    layer = getattr(rnnkit, kind)(3, 4, num_layers=2, bidirectional=True).double()
    x = torch.randn(5, 3, 3, dtype=torch.float64)
    weights = torch.randn(5, 3, 8, dtype=torch.float64)

    flow = hidden_gradient_norms(layer, lambda out: (out[0] * weights).sum(), x, lengths=lengths)

    expected = torch.zeros(4, 5, 3, dtype=torch.float64)  # (slot, t, b), zero past each end
    for b, length in enumerate(lengths or [5] * 3):
        output, states = step_by_hand(layer, x[:length, b : b + 1])
        (output * weights[:length, b : b + 1]).sum().backward()
        for (slot, t), h in states.items():
            expected[slot, t, b] = h.grad.norm()
    got = flow[kind.lower()]
    torch.testing.assert_close(got.per_sequence, expected, atol=1e-12, rtol=1e-10)
    torch.testing.assert_close(flow.norms()[kind.lower()], expected.pow(2).sum(-1).sqrt(), atol=1e-12, rtol=1e-10)
    assert got.num_layers == 2 and got.num_directions == 2


def test_hidden_norms_leave_parameter_grads_alone_and_find_layers_inside_a_model():
    torch.manual_seed(0)

    class Tagger(nn.Module):
        def __init__(self):
            super().__init__()
            self.embed = nn.Embedding(10, 3)
            self.encoder = rnnkit.GRU(3, 4, batch_first=True)
            self.head = nn.Linear(4, 2)

        def forward(self, tokens):
            return self.head(self.encoder(self.embed(tokens))[0])

    model = Tagger()
    flow = hidden_gradient_norms(model, lambda out: out.pow(2).sum(), torch.randint(10, (3, 6)))
    assert list(flow.modules) == ["encoder"]
    assert flow.norms()["encoder"].shape == (1, 6)
    assert flow.per_sequence()["encoder"].shape == (1, 6, 3)
    assert all(p.grad is None for p in model.parameters())


class Twice(nn.Module):
    """The same GRU run twice in a row."""

    def __init__(self):
        super().__init__()
        self.gru = rnnkit.GRU(3, 3)

    def forward(self, x):
        return self.gru(self.gru(x)[0])[0]


def test_a_layer_called_twice_is_reported_per_call():
    torch.manual_seed(0)
    flow = hidden_gradient_norms(Twice(), lambda out: out[-1].sum(), torch.randn(4, 2, 3))
    assert list(flow.modules) == ["gru[0]", "gru[1]"]
    # every state of the first call feeds the second call's last state
    assert bool((flow.norms()["gru[0]"] > 0).all())


def linear_tanh_rnn(scale, hidden=6, num_layers=1):
    """A tanh RNN with orthogonal recurrent weights times ``scale`` and no biases."""
    layer = rnnkit.RNN(3, hidden, num_layers=num_layers, init="orthogonal").double()
    with torch.no_grad():
        for index in range(num_layers):
            getattr(layer, f"weight_hh_l{index}").mul_(scale)
    return layer


@pytest.mark.parametrize("scale, input_scale", [(0.5, 1e-3), (3.0, 1e-7)])
def test_gradients_decay_or_grow_geometrically_in_the_linear_regime(scale, input_scale):
    torch.manual_seed(0)
    layer = linear_tanh_rnn(scale)
    steps = 10
    x = input_scale * torch.randn(steps, 2, 3, dtype=torch.float64)  # tanh stays near its linear part
    flow = hidden_gradient_norms(layer, lambda out: out[0][-1].sum(), x)
    decay = flow.decay()
    # the loss reads h_{T-1} only: dL/dh_{T-1-d} = (scale Q^T)^d dL/dh_{T-1} with Q orthogonal
    expected = scale ** torch.arange(steps, dtype=torch.float64)
    torch.testing.assert_close(decay.ratios, expected, rtol=1e-3, atol=0)
    assert decay.rate == pytest.approx(scale, rel=1e-3)
    # and the per-step Jacobian's spectral norm is the same factor
    norms = recurrent_jacobian_norms(layer, x)
    torch.testing.assert_close(norms, torch.full_like(norms, scale), rtol=1e-3, atol=0)


def test_decay_aligns_sequences_of_different_lengths_at_their_own_ends():
    torch.manual_seed(0)
    layer = linear_tanh_rnn(0.5)
    x = 1e-3 * torch.randn(8, 3, 3, dtype=torch.float64)
    lengths = torch.tensor([8, 5, 3])
    last = (lengths - 1).view(1, 3, 1).expand(1, 3, 6)

    def loss_fn(out):
        return out[0].gather(0, last).sum()  # each sequence's last valid output

    flow = hidden_gradient_norms(layer, loss_fn, x, lengths=lengths)
    ratios = flow.decay().ratios
    torch.testing.assert_close(ratios, 0.5 ** torch.arange(8, dtype=torch.float64), rtol=1e-3, atol=0)
    assert flow.decay().rate == pytest.approx(0.5, rel=1e-3)


@pytest.mark.parametrize("lengths", [None, [6, 4, 1]])
def test_elman_jacobian_norms_equal_the_spectral_norm_of_diag_tanh_prime_times_w_hh(lengths):
    torch.manual_seed(0)
    layer = rnnkit.RNN(3, 5, num_layers=2, bidirectional=True, return_states=True).double().eval()
    x = torch.randn(6, 3, 3, dtype=torch.float64)
    layer.train()  # the Jacobians use evaluation semantics whatever the mode
    norms, jacobians = recurrent_jacobian_norms(layer, x, lengths=lengths, return_jacobians=True)
    layer.eval()
    _, _, states = layer(x, lengths=lengths)  # (L*D, T, B, H), input time
    ends = torch.tensor(lengths or [6] * 3)
    valid = torch.arange(6)[:, None] < ends  # (T, B)
    for slot in range(4):
        suffix = f"_l{slot // 2}" + ("_reverse" if slot % 2 else "")
        w_hh = getattr(layer, "weight_hh" + suffix)
        # h_t = tanh(... + W_hh h_prev): d h_t / d h_prev = diag(1 - h_t^2) W_hh
        expected = (1 - states[slot].pow(2)).unsqueeze(-1) * w_hh  # (T, B, H, H)
        torch.testing.assert_close(jacobians[slot][valid], expected[valid])
        torch.testing.assert_close(norms[slot][valid], torch.linalg.matrix_norm(expected[valid], ord=2))
        assert bool(norms[slot][~valid].isnan().all())


def test_lstm_jacobian_covers_h_and_c_and_matches_autograd_on_the_cell_in_eval_mode():
    torch.manual_seed(0)
    options = dict(zoneout=0.25, recurrent_dropout=0.3)
    layer = rnnkit.LSTM(3, 4, return_states=True, **options).double().train()
    x = torch.randn(5, 3, 3, dtype=torch.float64)
    norms, jacobians = recurrent_jacobian_norms(layer, x, sequences=[2, 0], return_jacobians=True)
    assert norms.shape == (1, 5, 2) and jacobians.shape == (1, 5, 2, 8, 8)  # 2H x 2H

    # evaluation semantics: no dropout mask, zoneout by its expectation
    _, _, (hs, cs) = layer.eval()(x)  # (1, T, B, H) each
    cell = rnnkit.LSTMCell(3, 4, **options).double().eval()
    cell.load_state_dict({n: getattr(layer, n + "_l0") for n, _ in cell.named_parameters()})
    t, b = 3, 2
    start = torch.cat([hs[0, t - 1, b], cs[0, t - 1, b]])

    def one_step(flat):
        h, c = cell(x[t, b], (flat[:4], flat[4:]))
        return torch.cat([h, c])

    expected = torch.autograd.functional.jacobian(one_step, start)
    torch.testing.assert_close(jacobians[0, t, 0], expected)
    torch.testing.assert_close(norms[0, t, 0], torch.linalg.matrix_norm(expected, ord=2))


def test_projected_lstm_state_is_proj_plus_hidden():
    layer = rnnkit.LSTM(3, 4, proj_size=2)
    _, jacobians = recurrent_jacobian_norms(layer, torch.randn(4, 3), return_jacobians=True)  # unbatched
    assert jacobians.shape == (1, 4, 1, 6, 6)


def test_tracking_removes_its_hooks_even_when_the_loss_raises():
    torch.manual_seed(0)
    layer = rnnkit.LSTM(3, 4, num_layers=2)

    def broken(out):
        raise RuntimeError("boom")

    with pytest.raises(RuntimeError, match="boom"):
        hidden_gradient_norms(layer, broken, torch.randn(4, 2, 3))
    assert not layer._state_hooks and not layer._forward_pre_hooks
    with pytest.raises(RuntimeError, match="boom"):
        with track_hidden_gradients(layer):
            broken(layer(torch.randn(4, 2, 3)))
    assert not layer._state_hooks and not layer._forward_pre_hooks


def test_tracking_leaves_outputs_unchanged_and_the_fused_kernel_returns(monkeypatch):
    torch.manual_seed(0)
    calls = []
    fused = scan.torch_forward
    monkeypatch.setattr(scan, "torch_forward", lambda *a, **k: calls.append(1) or fused(*a, **k))
    layer = rnnkit.LSTM(3, 4, num_layers=2, bidirectional=True).double()
    x = torch.randn(5, 2, 3, dtype=torch.float64)
    expected = layer(x, lengths=[5, 3])
    assert len(calls) == 1

    with track_hidden_gradients(layer) as tracker:
        got = layer(x, lengths=[5, 3])
        got[0].sum().backward()
    assert len(calls) == 1  # tracked: the step loop, not the fused kernel
    torch.testing.assert_close(got[0], expected[0], atol=1e-12, rtol=1e-12)
    for a, b in zip(got[1], expected[1]):
        torch.testing.assert_close(a, b, atol=1e-12, rtol=1e-12)
    assert tracker.result().norms()["lstm"].shape == (4, 5)

    layer(x)
    assert len(calls) == 2


def test_parameter_gradient_norms_match_each_grad_and_the_global_norm():
    torch.manual_seed(0)
    model = nn.Sequential(nn.Linear(3, 3), nn.Tanh(), nn.Linear(3, 1))
    model[0].bias.requires_grad_(False)
    model(torch.randn(4, 3)).sum().backward()
    norms = parameter_gradient_norms(model)
    assert set(norms) == {"0.weight", "2.weight", "2.bias"}
    for name, p in model.named_parameters():
        if p.grad is not None:
            assert norms[name] == pytest.approx(p.grad.norm().item(), rel=1e-6)
    total = nn.utils.clip_grad_norm_(model.parameters(), max_norm=math.inf)
    assert global_gradient_norm(model) == pytest.approx(total.item(), rel=1e-6)
    model.zero_grad(set_to_none=True)
    assert parameter_gradient_norms(model) == {}
    with pytest.raises(ValueError, match="backward"):
        global_gradient_norm(model)


class Encoder(nn.Module):
    def __init__(self):
        super().__init__()
        self.lstm = rnnkit.LSTM(3, 4, num_layers=2, batch_first=True)

    def forward(self, x):
        return self.lstm(x)[0]


def test_monitor_runs_at_its_interval_and_collects_flat_float_records():
    torch.manual_seed(0)
    monitor_model = Encoder()
    monitor = GradientMonitor(monitor_model, every=3, jacobian_sequences=5)
    assert [monitor.should_run(s) for s in range(7)] == [True, False, False, True, False, False, True]

    x = torch.randn(2, 6, 3)  # batch_first: 2 sequences, fewer than jacobian_sequences

    def loss_fn(out):
        return out[:, -1].pow(2).sum()

    loss_fn(monitor_model(x)).backward()
    record = monitor.collect(loss_fn, x)
    json.dumps(record)
    assert all(isinstance(v, float) for v in record.values())
    for slot in ("l0", "l1"):
        for what in ("t_first", "t_last", "decay_rate"):
            assert f"grad/hidden/lstm.{slot}.{what}" in record
        assert f"jacobian/lstm.{slot}.max" in record
    assert record["grad/hidden/decay_rate"] == record["grad/hidden/lstm.l1.decay_rate"]
    assert record["jacobian/max"] >= record["jacobian/mean"] > 0
    flow = hidden_gradient_norms(monitor_model, loss_fn, x)
    assert record["grad/hidden/lstm.l1.t_first"] == pytest.approx(float(flow.norms()["lstm"][1, 0]))
    for name, p in monitor_model.named_parameters():
        assert record[f"grad/param/{name}"] == pytest.approx(p.grad.norm().item(), rel=1e-6)
    assert record["grad/global_norm"] == pytest.approx(global_gradient_norm(monitor_model), rel=1e-9)


def test_plot_writes_a_png_atomically(tmp_path):
    pytest.importorskip("matplotlib")
    torch.manual_seed(0)
    x = 1e-3 * torch.randn(8, 2, 3, dtype=torch.float64)
    results = {
        f"scale {scale}": hidden_gradient_norms(linear_tanh_rnn(scale), lambda out: out[0][-1].sum(), x)
        for scale in (0.5, 1.0, 2.0)
    }
    path = tmp_path / "flow.png"
    assert plot_gradient_flow(results, path, title="tanh RNN") == path
    data = path.read_bytes()
    assert data.startswith(b"\x89PNG\r\n\x1a\n") and len(data) > 1000
    assert [p.name for p in tmp_path.iterdir()] == ["flow.png"]  # no temporary file left


def test_bad_arguments_are_named():
    layer = rnnkit.GRU(3, 4)
    x = torch.randn(4, 2, 3)
    with pytest.raises(ValueError, match="RecurrentLayer"):
        hidden_gradient_norms(nn.Linear(3, 3), lambda out: out.sum(), x)
    with pytest.raises(ValueError, match="scalar"):
        hidden_gradient_norms(layer, lambda out: out[0], x)
    with pytest.raises(ValueError, match="sequences must be at most the batch size"):
        recurrent_jacobian_norms(layer, x, sequences=3)
    with pytest.raises(ValueError, match=r"sequences must be indices in \[0, 2\)"):
        recurrent_jacobian_norms(layer, x, sequences=[0, 2])
    with pytest.raises(ValueError, match="input_size"):
        recurrent_jacobian_norms(layer, torch.randn(4, 2, 5))
    with pytest.raises(ValueError, match="every must be a positive integer"):
        GradientMonitor(layer, every=0)
    with pytest.raises(ValueError, match="slot must be in"):
        hidden_gradient_norms(layer, lambda out: out[0].sum(), x).decay(slot=1)
    with pytest.raises(RuntimeError, match="no gradient reached"):
        with track_hidden_gradients(layer) as tracker, torch.no_grad():
            layer(x)
        tracker.result()


def test_docstring_examples():
    result = doctest.testmod(diagnostics, optionflags=doctest.ELLIPSIS | doctest.NORMALIZE_WHITESPACE)
    assert result.attempted > 0 and result.failed == 0
