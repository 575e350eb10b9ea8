"""Property tests (hypothesis) over shapes, lengths and options, in float64 at small sizes.

A drawn configuration covers every layer kind -- Elman (tanh, relu), LSTM (projection, peepholes,
forget bias), GRU (reset-after and reset-before), minGRU, minLSTM, and a user cell through
``Recurrent`` -- with layer norm, the regularisers in evaluation mode (zoneout uses its
expectation, the dropouts are off), both inits, a learned initial state, one or two layers, one
or two directions, either batch layout and, where there is a choice, the fused and loop backends.
"""

from __future__ import annotations

import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st
from torch.nn.utils.rnn import pack_padded_sequence, pad_packed_sequence

import rnnkit

pytestmark = pytest.mark.filterwarnings("ignore:LSTM with projections is not supported with oneDNN")

DTYPE = torch.float64
TOL = {"rtol": 0.0, "atol": 1e-10}
FAST = settings(max_examples=40, deadline=None)

TORCH_KINDS = ("rnn_tanh", "rnn_relu", "lstm", "gru")
KINDS = (*TORCH_KINDS, "min_gru", "min_lstm", "user_lstm_cell")


# --- configurations ------------------------------------------------------------------------
@st.composite
def configs(draw, bidirectional=st.booleans()):
    kind = draw(st.sampled_from(KINDS))
    hidden = draw(st.integers(1, 6))
    cfg = {
        "kind": kind,
        "input_size": draw(st.integers(1, 6)),
        "hidden_size": hidden,
        "num_layers": draw(st.integers(1, 2)),
        "bidirectional": draw(bidirectional),
        "batch_first": draw(st.booleans()),
        "bias": draw(st.booleans()),
        "learn_initial_state": draw(st.booleans()),
        "seed": draw(st.integers(0, 2**31 - 1)),
    }
    options: dict = {}
    if kind.startswith("min"):
        options["scan_chunk"] = draw(st.integers(1, 8))  # T <= 8: 8 is one chunk
    else:
        options["layer_norm"] = draw(st.booleans())
        options["init"] = draw(st.sampled_from(("torch", "orthogonal")))
        options["zoneout"] = draw(st.sampled_from((0.0, 0.3)))
        options["recurrent_dropout"] = draw(st.sampled_from((0.0, 0.25)))
        options["dropconnect"] = draw(st.sampled_from((0.0, 0.25)))
    if kind in TORCH_KINDS:
        cfg["backend"] = draw(st.sampled_from(("auto", "loop")))
    if kind.startswith("rnn"):
        options["nonlinearity"] = kind.removeprefix("rnn_")
    if kind in ("lstm", "user_lstm_cell"):
        options["peepholes"] = draw(st.booleans())
        options["proj_size"] = draw(st.integers(0, hidden - 1))
        if cfg["bias"]:
            options["forget_bias"] = draw(st.sampled_from((None, 1.0)))
    if kind == "gru":
        options["reset_after"] = draw(st.booleans())
    cfg["options"] = options
    return cfg


def build(cfg: dict, **extra) -> rnnkit.RecurrentLayer:
    """The layer ``cfg`` describes, in float64 and evaluation mode, with seeded weights."""
    torch.manual_seed(cfg["seed"])
    kind, options = cfg["kind"], cfg["options"]
    common = {
        "num_layers": cfg["num_layers"],
        "bidirectional": cfg["bidirectional"],
        "batch_first": cfg["batch_first"],
        "learn_initial_state": cfg["learn_initial_state"],
        **extra,
    }
    I, H, bias = cfg["input_size"], cfg["hidden_size"], cfg["bias"]
    if kind in TORCH_KINDS:
        cls = {"rnn": rnnkit.RNN, "lstm": rnnkit.LSTM, "gru": rnnkit.GRU}[kind.split("_")[0]]
        layer = cls(I, H, bias=bias, dtype=DTYPE, backend=cfg["backend"], **common, **options)
    elif kind == "min_gru":
        layer = rnnkit.MinGRU(I, H, bias=bias, dtype=DTYPE, **common, **options)
    elif kind == "min_lstm":
        layer = rnnkit.MinLSTM(I, H, bias=bias, dtype=DTYPE, **common, **options)
    else:
        layer = rnnkit.Recurrent(lambda n: rnnkit.LSTMCell(n, H, bias, dtype=DTYPE, **options), I, **common)
    if cfg["learn_initial_state"]:  # zeros at creation; make them matter
        with torch.no_grad():
            for name, p in layer.named_parameters():
                if name in ("h0", "c0"):
                    p.normal_()
    return layer.eval()


# --- layout helpers: tests think time-major --------------------------------------------------
def as_tuple(state) -> tuple[torch.Tensor, ...]:
    return state if isinstance(state, tuple) else (state,)


def as_hx(parts: tuple[torch.Tensor, ...]):
    return parts[0] if len(parts) == 1 else parts


def to_layout(x: torch.Tensor, batch_first: bool) -> torch.Tensor:
    """Time-major ``(T, B, ...)`` to the layer's layout and back (the swap is its own inverse)."""
    return x.transpose(0, 1) if batch_first else x


def run(layer, x: torch.Tensor, hx=None, lengths=None):
    """``layer`` on time-major ``x``; returns time-major outputs, the state tuple, and the rest."""
    result = layer(to_layout(x, layer.batch_first), hx, lengths=lengths)
    return to_layout(result[0], layer.batch_first), as_tuple(result[1]), result[2:]


def random_state(layer, batch: int, input_size: int) -> tuple[torch.Tensor, ...]:
    """A random ``hx`` with the layer's state shapes (read off one forward pass)."""
    _, state, _ = run(layer, torch.zeros(1, batch, input_size, dtype=DTYPE))
    return tuple(torch.randn_like(s) for s in state)


def draw_batch(data, cfg, max_batch: int = 4):
    steps = data.draw(st.integers(1, 8), label="T")
    batch = data.draw(st.integers(1, max_batch), label="B")
    lengths = data.draw(st.lists(st.integers(1, steps), min_size=batch, max_size=batch), label="lengths")
    x = torch.randn(steps, batch, cfg["input_size"], dtype=DTYPE)
    valid = torch.arange(steps).unsqueeze(1) < torch.tensor(lengths)  # (T, B)
    return x * valid.unsqueeze(-1), lengths, valid


# --- padding -------------------------------------------------------------------------------
@FAST
@given(cfg=configs(), data=st.data())
def test_padding_does_not_change_results(cfg, data):
    layer = build(cfg)
    x, lengths, valid = draw_batch(data, cfg)
    steps, batch = x.shape[:2]
    hx = random_state(layer, batch, cfg["input_size"]) if data.draw(st.booleans(), label="hx") else None
    as_tensor = data.draw(st.booleans(), label="lengths as tensor")
    given_lengths = torch.tensor(lengths) if as_tensor else lengths

    with torch.no_grad():
        out, state, _ = run(layer, x, as_hx(hx) if hx else None, given_lengths)
        for b, n in enumerate(lengths):
            # each sequence alone, unpadded, as a batch of one
            hx_b = as_hx(tuple(s[:, b : b + 1] for s in hx)) if hx else None
            out_b, state_b, _ = run(layer, x[:n, b : b + 1], hx_b)
            torch.testing.assert_close(out[:n, b], out_b[:, 0], **TOL)
            for s, s_b in zip(state, state_b):
                torch.testing.assert_close(s[:, b], s_b[:, 0], **TOL)
            assert (out[n:, b] == 0).all(), f"outputs past the end of sequence {b} (length {n}) are not zero"

        # garbage in the padding changes nothing
        garbage = x + torch.randn_like(x) * 10 * (~valid).unsqueeze(-1)
        out_g, state_g, _ = run(layer, garbage, as_hx(hx) if hx else None, given_lengths)
        torch.testing.assert_close(out_g, out, **TOL)
        assert (out_g[~valid] == 0).all()
        for s_g, s in zip(state_g, state):
            torch.testing.assert_close(s_g, s, **TOL)

        # a PackedSequence of the same batch gives the same results
        packed = pack_padded_sequence(to_layout(garbage, cfg["batch_first"]), lengths, cfg["batch_first"], False)
        out_p, state_p = layer(packed, as_hx(hx) if hx else None)[:2]
        out_p, _ = pad_packed_sequence(out_p, cfg["batch_first"], total_length=steps)
        torch.testing.assert_close(to_layout(out_p, cfg["batch_first"]), out, **TOL)
        for s_p, s in zip(as_tuple(state_p), state):
            torch.testing.assert_close(s_p, s, **TOL)



@pytest.mark.parametrize(
    "build",
    [
        pytest.param(lambda: rnnkit.GRU(3, 4, dtype=DTYPE), id="GRU-fused"),
        pytest.param(lambda: rnnkit.LSTM(3, 4, dtype=DTYPE, bidirectional=True), id="LSTM-fused-bidirectional"),
        pytest.param(
            lambda: rnnkit.RNN(3, 4, dtype=DTYPE, backend="loop"), id="RNN-loop"
        ),
        pytest.param(
            lambda: rnnkit.GRU(3, 4, dtype=DTYPE, backend="loop"), id="GRU-loop"
        ),
        pytest.param(lambda: rnnkit.MinGRU(3, 4, dtype=DTYPE), id="MinGRU"),
    ],
)
@pytest.mark.parametrize("fill", [float("nan"), float("inf")])
def test_non_finite_padding_changes_nothing(build, fill):
    """Padding is not data: whatever it holds, outputs past the end are zero and gradients finite."""
    torch.manual_seed(0)
    layer = build()
    x = torch.randn(5, 2, 3, dtype=DTYPE)
    x[3:, 0] = fill  # sequence 0 has length 3
    out, state = layer(x, lengths=[3, 5])
    h = as_tuple(state)[0]
    (out[:3, 0].sum() + out[:, 1].sum() + h.sum()).backward()  # reads only valid steps
    assert (out[3:, 0] == 0).all(), "outputs past the end are not zero"
    assert all(p.grad.isfinite().all() for p in layer.parameters()), "non-finite gradients from the padding"


# --- streaming -----------------------------------------------------------------------------
@FAST
@given(cfg=configs(bidirectional=st.just(False)), data=st.data())
def test_step_equals_forward(cfg, data):
    layer = build(cfg)
    steps = data.draw(st.integers(1, 8), label="T")
    batched = data.draw(st.booleans(), label="batched")
    batch = data.draw(st.integers(1, 4), label="B") if batched else 1
    x = torch.randn(steps, batch, cfg["input_size"], dtype=DTYPE)
    hx = random_state(layer, batch, cfg["input_size"]) if data.draw(st.booleans(), label="hx") else None

    with torch.no_grad():
        out, final, _ = run(layer, x, as_hx(hx) if hx else None)
        state = as_hx(hx) if hx else None
        if not batched and state is not None:
            state = as_hx(tuple(s.squeeze(1) for s in hx))
        ys = []
        for x_t in x.unbind(0):
            y, state = layer.step(x_t if batched else x_t.squeeze(0), state)
            ys.append(y if batched else y.unsqueeze(0))
    torch.testing.assert_close(torch.stack(ys), out, **TOL)
    for s, f in zip(as_tuple(state), final):
        torch.testing.assert_close(s if batched else s.unsqueeze(1), f, **TOL)


# --- per-step states -----------------------------------------------------------------------
@FAST
@given(cfg=configs(), data=st.data())
def test_return_states(cfg, data):
    plain = build(cfg)
    layer = build(cfg, return_states=True)
    layer.load_state_dict(plain.state_dict())
    x, lengths, valid = draw_batch(data, cfg)
    steps, batch = x.shape[:2]
    directions = 2 if cfg["bidirectional"] else 1
    slots = cfg["num_layers"] * directions

    with torch.no_grad():
        out, final, (history,) = run(layer, x, lengths=lengths)
        out_plain, final_plain, rest = run(plain, x, lengths=lengths)
    assert rest == ()
    torch.testing.assert_close(out, out_plain, **TOL)
    for f, f_plain in zip(final, final_plain):
        torch.testing.assert_close(f, f_plain, **TOL)

    history = tuple(h.transpose(1, 2) if cfg["batch_first"] else h for h in as_tuple(history))  # (L*D, T, B, size)
    assert len(history) == len(final)
    for h, f in zip(history, final):
        assert h.shape == (slots, steps, batch, f.shape[-1])
        for b, n in enumerate(lengths):
            for slot in range(slots):
                # the forward direction ends at the last valid step, the reverse one at step 0
                last = 0 if slot % directions else n - 1
                torch.testing.assert_close(h[slot, last, b], f[slot, b], **TOL)
            assert (h[:, n:, b] == 0).all(), "per-step states past a sequence's end are not zero"
    # the last layer's per-step h is its output, direction by direction
    size = history[0].shape[-1]
    for d in range(directions):
        torch.testing.assert_close(out[..., d * size : (d + 1) * size], history[0][slots - directions + d], **TOL)


# --- unbatched -----------------------------------------------------------------------------
@FAST
@given(cfg=configs(), data=st.data())
def test_unbatched_equals_batch_of_one(cfg, data):
    layer = build(cfg, return_states=data.draw(st.booleans(), label="return_states"))
    steps = data.draw(st.integers(1, 8), label="T")
    x = torch.randn(steps, cfg["input_size"], dtype=DTYPE)  # (T, I): the same for either layout
    hx = random_state(layer, 1, cfg["input_size"]) if data.draw(st.booleans(), label="hx") else None

    with torch.no_grad():
        single = layer(x, as_hx(tuple(s.squeeze(1) for s in hx)) if hx else None)
        batched = layer(to_layout(x.unsqueeze(1), cfg["batch_first"]), as_hx(hx) if hx else None)
    squeeze_batch = 0 if cfg["batch_first"] else 1
    torch.testing.assert_close(single[0], batched[0].squeeze(squeeze_batch), **TOL)
    for s, s_b in zip(as_tuple(single[1]), as_tuple(batched[1])):
        torch.testing.assert_close(s, s_b.squeeze(1), **TOL)
    if layer.return_states:
        axis = 1 if cfg["batch_first"] else 2  # (L*D, B, T, size) or (L*D, T, B, size)
        for h, h_b in zip(as_tuple(single[2]), as_tuple(batched[2])):
            torch.testing.assert_close(h, h_b.squeeze(axis), **TOL)


CELL_KINDS = ("rnn_tanh", "rnn_relu", "lstm", "gru", "min_gru", "min_lstm")


@FAST
@given(kind=st.sampled_from(CELL_KINDS), data=st.data())
def test_unbatched_cell_equals_batch_of_one(kind, data):
    I, H = data.draw(st.integers(1, 6), label="I"), data.draw(st.integers(1, 6), label="H")
    torch.manual_seed(data.draw(st.integers(0, 2**31 - 1), label="seed"))
    options: dict = {}
    if not kind.startswith("min"):
        options["layer_norm"] = data.draw(st.booleans(), label="layer_norm")
        options["zoneout"] = data.draw(st.sampled_from((0.0, 0.3)), label="zoneout")
    if kind.startswith("rnn"):
        cell = rnnkit.RNNCell(I, H, nonlinearity=kind.removeprefix("rnn_"), dtype=DTYPE, **options)
    elif kind == "lstm":
        proj = data.draw(st.integers(0, H - 1), label="proj_size")
        cell = rnnkit.LSTMCell(I, H, dtype=DTYPE, proj_size=proj, peepholes=data.draw(st.booleans()), **options)
    elif kind == "gru":
        cell = rnnkit.GRUCell(I, H, dtype=DTYPE, reset_after=data.draw(st.booleans()), **options)
    else:
        cell = {"min_gru": rnnkit.MinGRUCell, "min_lstm": rnnkit.MinLSTMCell}[kind](I, H, dtype=DTYPE)
    cell.eval()
    x = torch.randn(I, dtype=DTYPE)
    sizes = cell.state_sizes
    hx = tuple(torch.randn(n, dtype=DTYPE) for n in sizes) if data.draw(st.booleans(), label="hx") else None

    with torch.no_grad():
        single = as_tuple(cell(x, as_hx(hx) if hx else None))
        batched = as_tuple(cell(x.unsqueeze(0), as_hx(tuple(s.unsqueeze(0) for s in hx)) if hx else None))
    assert len(single) == len(batched) == len(sizes)
    for s, s_b in zip(single, batched):
        torch.testing.assert_close(s, s_b.squeeze(0), **TOL)
