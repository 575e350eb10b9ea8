"""rnnkit's RNN/LSTM/GRU and their cells against torch.nn with copied weights.

Outputs, final states and every gradient (input, hx, each parameter) must agree: float64 within
1e-10, float32 within 1e-5 -- on the fused-kernel path and on the cells' step loop.
"""

from __future__ import annotations

import itertools

import pytest
import torch
from torch import nn
from torch.nn.utils.rnn import pack_padded_sequence, pad_packed_sequence

import rnnkit
from rnnkit.layers._registry import create_layer

TOL = {torch.float64: dict(atol=1e-10, rtol=1e-10), torch.float32: dict(atol=1e-5, rtol=1e-5)}

KINDS = {
    "rnn_tanh": (rnnkit.RNN, nn.RNN, {}),
    "rnn_relu": (rnnkit.RNN, nn.RNN, {"nonlinearity": "relu"}),
    "lstm": (rnnkit.LSTM, nn.LSTM, {}),
    "lstm_proj": (rnnkit.LSTM, nn.LSTM, {"proj_size": 3}),
    "gru": (rnnkit.GRU, nn.GRU, {}),
}
INPUT, HIDDEN, STEPS, BATCH = 4, 5, 6, 3


def make_pair(kind, dtype, backend="auto", **kwargs):
    ours_cls, ref_cls, extra = KINDS[kind]
    ref = ref_cls(INPUT, HIDDEN, **extra, **kwargs).to(dtype)
    ours = ours_cls(INPUT, HIDDEN, **extra, **kwargs, backend=backend).to(dtype)
    ours.load_state_dict(ref.state_dict())
    return ours, ref


def random_hx(module, batch, dtype, requires_grad=True):
    slots = module.num_layers * (2 if module.bidirectional else 1)
    h_size = getattr(module, "proj_size", 0) or module.hidden_size
    sizes = [h_size, module.hidden_size] if isinstance(module, nn.LSTM) else [h_size]
    parts = [torch.randn(slots, batch, s, dtype=dtype, requires_grad=requires_grad) for s in sizes]
    return tuple(parts) if isinstance(module, nn.LSTM) else parts[0]


def flat(state):
    return state if isinstance(state, tuple) else (state,)


def assert_same_gradients(ours, ref, inputs_ours, inputs_ref, loss_ours, loss_ref, tol):
    """Gradients of every input and every parameter, matched by torch.nn's parameter names."""
    grads_ours = torch.autograd.grad(loss_ours, [*inputs_ours, *ours.parameters()], allow_unused=False)
    grads_ref = torch.autograd.grad(loss_ref, [*inputs_ref, *ref.parameters()], allow_unused=False)
    names = [f"input {i}" for i in range(len(inputs_ours))] + [n for n, _ in ours.named_parameters()]
    assert [n for n, _ in ours.named_parameters()] == [n for n, _ in ref.named_parameters()]
    for name, a, b in zip(names, grads_ours, grads_ref):
        torch.testing.assert_close(a, b, **tol, msg=lambda m: f"gradient of {name}: {m}")


def weighted_sum(output, state, generator_seed=0):
    """A loss that weighs every element differently, so permuted gradients cannot pass."""
    g = torch.Generator().manual_seed(generator_seed)
    total = 0
    for t in (output, *flat(state)):
        total = total + (t * torch.randn(t.shape, generator=g, dtype=t.dtype)).sum()
    return total


SWEEP = list(
    itertools.product(
        KINDS,  # kind
        (1, 2, 3),  # num_layers
        (False, True),  # bidirectional
        (False, True),  # batch_first
        (False, True),  # hx given
        ("auto", "loop"),  # backend
    )
)


@pytest.mark.parametrize("kind,num_layers,bidirectional,batch_first,with_hx,backend", SWEEP)
def test_full_length_batch_matches_torch(kind, num_layers, bidirectional, batch_first, with_hx, backend):
    torch.manual_seed(0)
    dtype = torch.float64
    ours, ref = make_pair(
        kind, dtype, backend, num_layers=num_layers, bidirectional=bidirectional, batch_first=batch_first
    )
    shape = (BATCH, STEPS, INPUT) if batch_first else (STEPS, BATCH, INPUT)
    x = torch.randn(shape, dtype=dtype, requires_grad=True)
    hx = random_hx(ref, BATCH, dtype) if with_hx else None
    out_ours, state_ours = ours(x, hx)
    out_ref, state_ref = ref(x, hx)
    torch.testing.assert_close(out_ours, out_ref, **TOL[dtype])
    for a, b in zip(flat(state_ours), flat(state_ref), strict=True):
        torch.testing.assert_close(a, b, **TOL[dtype])
    inputs = [x, *flat(hx)] if with_hx else [x]
    assert_same_gradients(
        ours, ref, inputs, inputs,
        weighted_sum(out_ours, state_ours), weighted_sum(out_ref, state_ref), TOL[dtype],
    )  # fmt: skip


@pytest.mark.parametrize(
    "kind,num_layers,bidirectional,batch_first,backend",
    list(itertools.product(KINDS, (1, 2), (False, True), (False, True), ("auto", "loop"))),
)
def test_lengths_match_torch_packed(kind, num_layers, bidirectional, batch_first, backend):
    """A padded batch with ``lengths`` equals torch.nn on pack_padded_sequence."""
    torch.manual_seed(1)
    dtype = torch.float64
    ours, ref = make_pair(
        kind, dtype, backend, num_layers=num_layers, bidirectional=bidirectional, batch_first=batch_first
    )
    lengths = torch.tensor([4, STEPS, 1, 3])
    batch = len(lengths)
    shape = (batch, STEPS, INPUT) if batch_first else (STEPS, batch, INPUT)
    x = torch.randn(shape, dtype=dtype, requires_grad=True)
    hx = random_hx(ref, batch, dtype)
    out_ours, state_ours = ours(x, hx, lengths=lengths)
    packed = pack_padded_sequence(x, lengths, batch_first=batch_first, enforce_sorted=False)
    out_packed, state_ref = ref(packed, hx)
    out_ref, _ = pad_packed_sequence(out_packed, batch_first=batch_first, total_length=STEPS)
    torch.testing.assert_close(out_ours, out_ref, **TOL[dtype])
    for a, b in zip(flat(state_ours), flat(state_ref), strict=True):
        torch.testing.assert_close(a, b, **TOL[dtype])
    # outputs past each sequence's end are exactly zero
    time_major = out_ours.transpose(0, 1) if batch_first else out_ours
    for b, n in enumerate(lengths.tolist()):
        assert torch.count_nonzero(time_major[n:, b]) == 0
    inputs = [x, *flat(hx)]
    assert_same_gradients(
        ours, ref, inputs, inputs,
        weighted_sum(out_ours, state_ours), weighted_sum(out_ref, state_ref), TOL[dtype],
    )  # fmt: skip


@pytest.mark.parametrize("kind,backend", list(itertools.product(KINDS, ("auto", "loop"))))
def test_packed_sequence_input_matches_torch(kind, backend):
    torch.manual_seed(2)
    dtype = torch.float64
    ours, ref = make_pair(kind, dtype, backend, num_layers=2, bidirectional=True)
    lengths = torch.tensor([3, STEPS, 2])
    x = torch.randn(STEPS, 3, INPUT, dtype=dtype)
    for enforce_sorted, xs, ls in ((False, x, lengths), (True, x[:, [1, 0, 2]], lengths[[1, 0, 2]])):
        packed = pack_padded_sequence(xs, ls, enforce_sorted=enforce_sorted)
        hx = random_hx(ref, 3, dtype, requires_grad=False)
        out_ours, state_ours = ours(packed, hx)
        out_ref, state_ref = ref(packed, hx)
        assert isinstance(out_ours, nn.utils.rnn.PackedSequence)
        torch.testing.assert_close(out_ours.data, out_ref.data, **TOL[dtype])
        torch.testing.assert_close(out_ours.batch_sizes, out_ref.batch_sizes)
        if out_ref.sorted_indices is None:
            assert out_ours.sorted_indices is None
        else:
            torch.testing.assert_close(out_ours.sorted_indices, out_ref.sorted_indices)
        for a, b in zip(flat(state_ours), flat(state_ref), strict=True):
            torch.testing.assert_close(a, b, **TOL[dtype])


@pytest.mark.parametrize("kind,backend", list(itertools.product(KINDS, ("auto", "loop"))))
def test_float32_matches_torch(kind, backend):
    torch.manual_seed(3)
    dtype = torch.float32
    ours, ref = make_pair(kind, dtype, backend, num_layers=2, bidirectional=True, batch_first=True)
    x = torch.randn(BATCH, 20, INPUT, requires_grad=True)
    out_ours, state_ours = ours(x)
    out_ref, state_ref = ref(x)
    torch.testing.assert_close(out_ours, out_ref, **TOL[dtype])
    for a, b in zip(flat(state_ours), flat(state_ref), strict=True):
        torch.testing.assert_close(a, b, **TOL[dtype])
    assert_same_gradients(
        ours, ref, [x], [x], weighted_sum(out_ours, state_ours), weighted_sum(out_ref, state_ref), TOL[dtype]
    )


@pytest.mark.parametrize("kind,backend", list(itertools.product(KINDS, ("auto", "loop"))))
def test_unbatched_input_matches_torch(kind, backend):
    torch.manual_seed(4)
    dtype = torch.float64
    ours, ref = make_pair(kind, dtype, backend, num_layers=2, bidirectional=True)
    x = torch.randn(STEPS, INPUT, dtype=dtype)
    hx = random_hx(ref, 1, dtype, requires_grad=False)
    hx = tuple(h.squeeze(1) for h in hx) if isinstance(hx, tuple) else hx.squeeze(1)
    for state in (None, hx):
        out_ours, state_ours = ours(x, state)
        out_ref, state_ref = ref(x, state)
        torch.testing.assert_close(out_ours, out_ref, **TOL[dtype])
        for a, b in zip(flat(state_ours), flat(state_ref), strict=True):
            torch.testing.assert_close(a, b, **TOL[dtype])


@pytest.mark.parametrize("kind", list(KINDS))
def test_state_dict_round_trips_both_ways(kind):
    ours_cls, ref_cls, extra = KINDS[kind]
    ours = ours_cls(INPUT, HIDDEN, num_layers=2, bidirectional=True, **extra)
    ref = ref_cls(INPUT, HIDDEN, num_layers=2, bidirectional=True, **extra)
    assert list(ours.state_dict()) == list(ref.state_dict())
    for (name, a), (_, b) in zip(ours.named_parameters(), ref.named_parameters()):
        assert a.shape == b.shape, name
    ref.load_state_dict(ours.state_dict())  # and back: torch.nn accepts ours
    x = torch.randn(STEPS, 2, INPUT)
    torch.testing.assert_close(ours(x)[0], ref(x)[0])
    # torch.nn's attributes are there too
    for attribute in ("input_size", "hidden_size", "num_layers", "bias", "batch_first", "dropout", "bidirectional"):
        assert getattr(ours, attribute) == getattr(ref, attribute), attribute
    assert [[p.shape for p in w] for w in ours.all_weights] == [[p.shape for p in w] for w in ref.all_weights]


def test_default_initialisation_follows_torch():
    """Same RNG seed, same draws: torch.nn's init scheme and parameter order are reproduced."""
    for kind in KINDS:
        ours_cls, ref_cls, extra = KINDS[kind]
        torch.manual_seed(5)
        ref = ref_cls(INPUT, HIDDEN, num_layers=2, bidirectional=True, **extra)
        torch.manual_seed(5)
        ours = ours_cls(INPUT, HIDDEN, num_layers=2, bidirectional=True, **extra)
        for (name, a), b in zip(ours.named_parameters(), ref.parameters()):
            torch.testing.assert_close(a, b, msg=f"{kind} {name}")


def test_dropout_between_layers_follows_torch_semantics():
    """Training-mode dropout acts between layers only: eval output is deterministic and equal."""
    torch.manual_seed(6)
    ours, ref = make_pair("lstm", torch.float64, "loop", num_layers=2, dropout=0.5)
    x = torch.randn(STEPS, 2, INPUT, dtype=torch.float64)
    ours.train()
    assert not torch.equal(ours(x)[0], ours(x)[0])  # stochastic in training
    ours.eval(), ref.eval()
    torch.testing.assert_close(ours(x)[0], ref(x)[0], **TOL[torch.float64])
    single = rnnkit.LSTM(INPUT, HIDDEN, backend="loop").double()  # no layer above: no dropout at all
    with pytest.warns(UserWarning, match="num_layers"):
        single_dropout = rnnkit.LSTM(INPUT, HIDDEN, dropout=0.5, backend="loop").double()
    single_dropout.load_state_dict(single.state_dict())
    torch.testing.assert_close(single_dropout.train()(x)[0], single(x)[0])


# --- cells ----------------------------------------------------------------------------
CELLS = {
    "rnn_tanh": (rnnkit.RNNCell, nn.RNNCell, {}),
    "rnn_relu": (rnnkit.RNNCell, nn.RNNCell, {"nonlinearity": "relu"}),
    "lstm": (rnnkit.LSTMCell, nn.LSTMCell, {}),
    "gru": (rnnkit.GRUCell, nn.GRUCell, {}),
}


@pytest.mark.parametrize(
    "kind,dtype,batched,with_hx,bias",
    list(itertools.product(CELLS, (torch.float64, torch.float32), (True, False), (True, False), (True, False))),
)
def test_cells_match_torch(kind, dtype, batched, with_hx, bias):
    torch.manual_seed(7)
    ours_cls, ref_cls, extra = CELLS[kind]
    ref = ref_cls(INPUT, HIDDEN, bias=bias, **extra).to(dtype)
    ours = ours_cls(INPUT, HIDDEN, bias=bias, **extra).to(dtype)
    ours.load_state_dict(ref.state_dict())
    lead = (BATCH,) if batched else ()
    x = torch.randn(*lead, INPUT, dtype=dtype, requires_grad=True)
    hx = None
    if with_hx:
        parts = [torch.randn(*lead, HIDDEN, dtype=dtype, requires_grad=True) for _ in ours.state_sizes]
        hx = tuple(parts) if len(parts) == 2 else parts[0]
    out_ours, out_ref = ours(x, hx), ref(x, hx)
    for a, b in zip(flat(out_ours), flat(out_ref), strict=True):
        torch.testing.assert_close(a, b, **TOL[dtype])
    inputs = [x, *flat(hx)] if with_hx else [x]
    assert_same_gradients(
        ours, ref, inputs, inputs, weighted_sum(*flat(out_ours)[:1], flat(out_ours)[1:]),
        weighted_sum(*flat(out_ref)[:1], flat(out_ref)[1:]), TOL[dtype],
    )  # fmt: skip


def test_registry_builds_every_layer_by_name():
    for name in rnnkit.layers.LAYERS:
        layer = rnnkit.create_layer(name, INPUT, HIDDEN, num_layers=2)
        assert layer(torch.randn(STEPS, 2, INPUT))[0].shape == (STEPS, 2, HIDDEN)
    assert isinstance(rnnkit.create_layer("rnn_relu", 2, 3), rnnkit.RNN)
    assert rnnkit.create_layer("rnn_relu", 2, 3).nonlinearity == "relu"
    with pytest.raises(ValueError, match="cell must be one of .*got 'lstmm'"):
        rnnkit.create_layer("lstmm", 2, 3)


@pytest.mark.parametrize("kind", list(KINDS))
@pytest.mark.parametrize("bias", [True, False])
def test_streaming_step_fused_equals_loop(kind, bias):
    """step() runs torch.nn's cell kernels for plain layers; the cells' loop is the reference."""
    torch.manual_seed(8)
    fused, _ = make_pair(kind, torch.float64, "auto", num_layers=2, bias=bias)
    loop, _ = make_pair(kind, torch.float64, "loop", num_layers=2, bias=bias)
    loop.load_state_dict(fused.state_dict())
    x = torch.randn(STEPS, BATCH, INPUT, dtype=torch.float64)
    state_fused = state_loop = None
    for x_t in x:
        y_fused, state_fused = fused.step(x_t, state_fused)
        y_loop, state_loop = loop.step(x_t, state_loop)
        torch.testing.assert_close(y_fused, y_loop, **TOL[torch.float64])
    for a, b in zip(flat(state_fused), flat(state_loop), strict=True):
        torch.testing.assert_close(a, b, **TOL[torch.float64])
    torch.testing.assert_close(y_fused, fused(x)[0][-1], **TOL[torch.float64])


@pytest.mark.parametrize("kind", ["rnn_tanh", "lstm", "gru"])
@pytest.mark.parametrize("options", [{}, {"layer_norm": True}, {"zoneout": 0.1}])
def test_final_state_owns_its_storage(kind, options):
    """As torch.nn's, ``h_n`` is a tensor of its own, not a view into the outputs: a state carried
    from one window to the next does not keep the whole (T, B, H) output alive."""
    layer = create_layer(kind, 4, 5, **options)
    output, state = layer(torch.randn(6, 2, 4))
    for part in state if isinstance(state, tuple) else (state,):
        assert part._base is None
        assert part.untyped_storage().data_ptr() != output.untyped_storage().data_ptr()
