"""The options torch.nn lacks, each checked against its equations written out here from the paper.

These references are independent of rnnkit's cells: a bug in a cell's math shows up as a
mismatch, not as two copies of the same mistake agreeing.
"""

from __future__ import annotations

import math

import pytest
import torch

import rnnkit

TOL = dict(atol=1e-10, rtol=1e-10)
I, H, B = 3, 4, 5


def per_gate_ln(z, gain, gates):
    """Layer norm over each gate's H units (biased variance, eps 1e-5), then the gain."""
    z = z.view(*z.shape[:-1], gates, -1)
    mean = z.mean(-1, keepdim=True)
    var = z.var(-1, unbiased=False, keepdim=True)
    return ((z - mean) / torch.sqrt(var + 1e-5)).flatten(-2) * gain


def randomise(module, seed=0):
    """Random values everywhere, gains and peepholes included, so no term hides at its init value."""
    g = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for p in module.parameters():
            p.copy_(torch.randn(p.shape, generator=g, dtype=p.dtype) * 0.5)
    return module


def inputs(seed=1, state_sizes=(H,)):
    g = torch.Generator().manual_seed(seed)
    x = torch.randn(B, I, generator=g, dtype=torch.float64)
    state = tuple(torch.randn(B, s, generator=g, dtype=torch.float64) for s in state_sizes)
    return x, state


def lstm_reference(p, x, h, c, *, layer_norm=False, peepholes=False, proj=False):
    """Hochreiter & Schmidhuber 1997; peepholes Gers & Schmidhuber 2000; layer norm Ba et al. 2016."""
    wx, wh = x @ p["weight_ih"].T, h @ p["weight_hh"].T
    if layer_norm:
        wx, wh = per_gate_ln(wx, p["ln_ih_weight"], 4), per_gate_ln(wh, p["ln_hh_weight"], 4)
    i, f, g, o = (wx + p["bias_ih"] + wh + p["bias_hh"]).chunk(4, -1)
    if peepholes:
        p_i, p_f, p_o = p["weight_ch"].chunk(3)
        i, f = i + p_i * c, f + p_f * c
    c_new = torch.sigmoid(f) * c + torch.sigmoid(i) * torch.tanh(g)
    if peepholes:
        o = o + p_o * c_new
    c_hat = c_new
    if layer_norm:
        c_hat = per_gate_ln(c_new, p["ln_c_weight"], 1) + p["ln_c_bias"]
    h_new = torch.sigmoid(o) * torch.tanh(c_hat)
    if proj:
        h_new = h_new @ p["weight_hr"].T
    return h_new, c_new


def gru_reference(p, x, h, *, reset_after=True, layer_norm=False):
    """Cho et al. 2014 (reset before, eq. 8) and the cuDNN form (reset after)."""
    Hs = h.shape[-1]
    W_ih, W_hh = p["weight_ih"], p["weight_hh"]
    wx = x @ W_ih.T
    if layer_norm:
        wx = per_gate_ln(wx, p["ln_ih_weight"], 3)
    x_r, x_z, x_n = (wx + p["bias_ih"]).split(Hs, -1)
    b_r, b_z, b_n = p["bias_hh"].split(Hs)
    g_r, g_z, g_n = (p["ln_hh_weight"].split(Hs) if layer_norm else (None,) * 3)
    W_r, W_z, W_n = W_hh.split(Hs)

    def rec(v, W, gain):
        z = v @ W.T
        return per_gate_ln(z, gain, 1) if layer_norm else z

    r = torch.sigmoid(x_r + rec(h, W_r, g_r) + b_r)
    z = torch.sigmoid(x_z + rec(h, W_z, g_z) + b_z)
    if reset_after:
        n = torch.tanh(x_n + r * (rec(h, W_n, g_n) + b_n))
    else:
        n = torch.tanh(x_n + rec(r * h, W_n, g_n) + b_n)
    return (1 - z) * n + z * h


def rnn_reference(p, x, h, *, nonlinearity="tanh", layer_norm=False):
    wx, wh = x @ p["weight_ih"].T, h @ p["weight_hh"].T
    if layer_norm:
        wx, wh = per_gate_ln(wx, p["ln_ih_weight"], 1), per_gate_ln(wh, p["ln_hh_weight"], 1)
    pre = wx + p["bias_ih"] + wh + p["bias_hh"]
    return torch.tanh(pre) if nonlinearity == "tanh" else torch.relu(pre)


@pytest.mark.parametrize(
    "options",
    [dict(), dict(layer_norm=True), dict(peepholes=True), dict(proj_size=2),
     dict(layer_norm=True, peepholes=True, proj_size=2)],
)  # fmt: skip
def test_lstm_cell_follows_its_equations(options):
    cell = randomise(rnnkit.LSTMCell(I, H, **options).double())
    x, (h, c) = inputs(state_sizes=cell.state_sizes)
    h_new, c_new = cell(x, (h, c))
    p = dict(cell.named_parameters())
    ref_h, ref_c = lstm_reference(
        p, x, h, c, layer_norm=options.get("layer_norm", False),
        peepholes=options.get("peepholes", False), proj="proj_size" in options,
    )  # fmt: skip
    torch.testing.assert_close(h_new, ref_h, **TOL)
    torch.testing.assert_close(c_new, ref_c, **TOL)


@pytest.mark.parametrize("reset_after", [True, False])
@pytest.mark.parametrize("layer_norm", [False, True])
def test_gru_cell_follows_its_equations(reset_after, layer_norm):
    cell = randomise(rnnkit.GRUCell(I, H, reset_after=reset_after, layer_norm=layer_norm).double())
    x, (h,) = inputs()
    ref = gru_reference(dict(cell.named_parameters()), x, h, reset_after=reset_after, layer_norm=layer_norm)
    torch.testing.assert_close(cell(x, h), ref, **TOL)


def test_reset_before_differs_from_reset_after():
    after = randomise(rnnkit.GRUCell(I, H).double())
    before = rnnkit.GRUCell(I, H, reset_after=False).double()
    before.load_state_dict(after.state_dict())  # same parameter shapes in both forms
    x, (h,) = inputs()
    assert (after(x, h) - before(x, h)).abs().max() > 1e-3


@pytest.mark.parametrize("nonlinearity", ["tanh", "relu"])
@pytest.mark.parametrize("layer_norm", [False, True])
def test_rnn_cell_follows_its_equations(nonlinearity, layer_norm):
    cell = randomise(rnnkit.RNNCell(I, H, nonlinearity=nonlinearity, layer_norm=layer_norm).double())
    x, (h,) = inputs()
    ref = rnn_reference(dict(cell.named_parameters()), x, h, nonlinearity=nonlinearity, layer_norm=layer_norm)
    torch.testing.assert_close(cell(x, h), ref, **TOL)


# --- stochastic options ---------------------------------------------------------------
STOCHASTIC_CELLS = [
    (rnnkit.LSTMCell, {}),
    (rnnkit.GRUCell, {}),
    (rnnkit.GRUCell, {"reset_after": False}),
    (rnnkit.RNNCell, {}),
]


@pytest.mark.parametrize("cell_class,extra", STOCHASTIC_CELLS)
def test_stochastic_options_at_evaluation(cell_class, extra):
    """Eval mode: dropout-style options vanish; zoneout mixes in its expectation (Krueger sec. 3)."""
    plain = randomise(cell_class(I, H, **extra).double()).eval()
    x, state = inputs(state_sizes=plain.state_sizes)
    hx = state if len(state) > 1 else state[0]
    expected = plain(x, hx)
    for option in ("recurrent_dropout", "dropconnect"):
        cell = cell_class(I, H, **extra, **{option: 0.5}).double().eval()
        cell.load_state_dict(plain.state_dict())
        for a, b in zip(rnnkit_tuple(cell(x, hx)), rnnkit_tuple(expected)):
            torch.testing.assert_close(a, b, **TOL)
    rate = 0.3
    cell = cell_class(I, H, **extra, zoneout=rate).double().eval()
    cell.load_state_dict(plain.state_dict())
    for a, new, previous in zip(rnnkit_tuple(cell(x, hx)), rnnkit_tuple(expected), state):
        torch.testing.assert_close(a, rate * previous + (1 - rate) * new, **TOL)


def rnnkit_tuple(value):
    return value if isinstance(value, tuple) else (value,)


def identity_relu_rnn(**options):
    """h_t = relu(mask * h_{t-1}): with W_hh = I and no input, each unit shows its mask history."""
    rnn = rnnkit.RNN(1, 1000, nonlinearity="relu", bias=False, backend="loop", **options).double()
    with torch.no_grad():
        rnn.weight_ih_l0.zero_()
        rnn.weight_hh_l0.copy_(torch.eye(1000))
    return rnn


def test_recurrent_dropout_keeps_one_mask_per_sequence():
    """Gal & Ghahramani: the same units are dropped at every step of a sequence."""
    torch.manual_seed(0)
    rate, steps = 0.5, 5
    rnn = identity_relu_rnn(recurrent_dropout=rate).train()
    x = torch.zeros(steps, 3, 1, dtype=torch.float64)
    out, h_n = rnn(x, torch.ones(1, 3, 1000, dtype=torch.float64))
    alive = h_n[0] != 0
    # a fresh mask per step would leave 1 - 0.5**5 = 97% dead; one mask leaves 50%
    assert 0.45 < alive.double().mean() < 0.55
    torch.testing.assert_close(h_n[0][alive], torch.full_like(h_n[0][alive], (1 / (1 - rate)) ** steps))
    assert not torch.equal(alive[0], alive[1])  # each sequence draws its own mask
    torch.testing.assert_close(rnn.eval()(x, torch.ones(1, 3, 1000, dtype=torch.float64))[1], torch.ones(1, 3, 1000, dtype=torch.float64))


def test_dropconnect_shares_one_weight_mask_across_the_batch():
    """Merity et al.: the recurrent weights are dropped once per forward, for every sequence."""
    torch.manual_seed(0)
    rnn = identity_relu_rnn(dropconnect=0.5).train()
    x = torch.zeros(4, 3, 1, dtype=torch.float64)
    _, h_n = rnn(x, torch.ones(1, 3, 1000, dtype=torch.float64))
    alive = h_n[0] != 0
    assert 0.45 < alive.double().mean() < 0.55
    assert torch.equal(alive[0], alive[1]) and torch.equal(alive[1], alive[2])


def test_zoneout_keeps_previous_values_exactly():
    torch.manual_seed(0)
    rate = 0.3
    cell = randomise(rnnkit.LSTMCell(I, 2000, zoneout=rate).double()).train()
    plain = rnnkit.LSTMCell(I, 2000).double()
    plain.load_state_dict(cell.state_dict())
    x, (h, c) = inputs(state_sizes=(2000, 2000))
    h_new, c_new = cell(x, (h, c))
    h_plain, c_plain = plain(x, (h, c))
    for new, previous, fresh in ((h_new, h, h_plain), (c_new, c, c_plain)):
        kept = new == previous
        assert torch.equal(new[~kept], fresh[~kept])  # every other unit took its new value
        assert abs(kept.double().mean().item() - rate) < 0.02


# --- initialisation and learned state ---------------------------------------------------
def test_forget_bias_sets_the_initial_forget_gate_bias():
    lstm = rnnkit.LSTM(I, H, num_layers=2, bidirectional=True, forget_bias=1.0)
    for name, p in lstm.named_parameters():
        if name.startswith("bias_ih"):
            torch.testing.assert_close(p[H : 2 * H], torch.ones(H))
        if name.startswith("bias_hh"):
            torch.testing.assert_close(p[H : 2 * H], torch.zeros(H))
    assert lstm.uses_fused_kernel  # an initialisation only: the fused kernel still applies


def test_orthogonal_init():
    for layer in (rnnkit.LSTM(I, H, init="orthogonal"), rnnkit.GRU(I, H, init="orthogonal"), rnnkit.RNN(I, H, init="orthogonal")):
        for block in layer.weight_hh_l0.split(H):
            torch.testing.assert_close(block.T @ block, torch.eye(H), atol=1e-5, rtol=0)
        bound = math.sqrt(6 / (I + H))  # Xavier-uniform per gate block
        assert layer.weight_ih_l0.abs().max() <= bound
        assert torch.count_nonzero(layer.bias_ih_l0) == 0 and torch.count_nonzero(layer.bias_hh_l0) == 0


def test_learned_initial_state_is_used_and_trained():
    torch.manual_seed(0)
    lstm = rnnkit.LSTM(I, H, num_layers=2, learn_initial_state=True).double()
    with torch.no_grad():
        lstm.h0.normal_(), lstm.c0.normal_()
    x = torch.randn(3, 2, I, dtype=torch.float64)
    h0 = lstm.h0.unsqueeze(1).expand(2, 2, H)
    c0 = lstm.c0.unsqueeze(1).expand(2, 2, H)
    torch.testing.assert_close(lstm(x)[0], lstm(x, (h0.contiguous(), c0.contiguous()))[0], **TOL)
    lstm(x)[0].sum().backward()
    assert lstm.h0.grad.abs().sum() > 0 and lstm.c0.grad.abs().sum() > 0


# --- every registered configuration trains ------------------------------------------------
CONFIGURATIONS = [
    (rnnkit.RNN, dict(nonlinearity="relu", layer_norm=True, zoneout=0.1, recurrent_dropout=0.1, dropconnect=0.1)),
    (rnnkit.LSTM, dict(layer_norm=True, peepholes=True, proj_size=2, zoneout=0.1, recurrent_dropout=0.1,
                       dropconnect=0.1, forget_bias=1.0, init="orthogonal")),
    (rnnkit.GRU, dict(reset_after=False, layer_norm=True, zoneout=0.1, recurrent_dropout=0.1, dropconnect=0.1)),
    (rnnkit.MinGRU, dict()),
    (rnnkit.MinLSTM, dict()),
]  # fmt: skip


@pytest.mark.parametrize("layer_class,options", CONFIGURATIONS)
@pytest.mark.parametrize("training", [True, False])
def test_every_parameter_gets_a_finite_gradient(layer_class, options, training):
    torch.manual_seed(0)
    layer = layer_class(I, H, num_layers=2, bidirectional=True, dropout=0.2,
                        learn_initial_state=True, return_states=True, **options)  # fmt: skip
    layer.train(training)
    x = torch.randn(6, 3, I)
    output, state, states = layer(x, lengths=[6, 2, 4])
    loss = output.pow(2).sum() + sum(s.pow(2).sum() for s in rnnkit_tuple(states))
    loss.backward()
    assert torch.isfinite(loss)
    for name, p in layer.named_parameters():
        assert p.grad is not None, f"{name} got no gradient"
        assert torch.isfinite(p.grad).all(), f"{name} has a non-finite gradient"
        assert p.grad.abs().sum() > 0, f"{name} has an all-zero gradient"
