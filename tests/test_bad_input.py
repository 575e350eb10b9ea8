"""Bad input is rejected at the public entry points, loudly and legibly.

Every check asserts the exception type and that the message names the argument, what was
expected and what was received (STYLE.md, "Errors"): ``pattern("lengths", "got a length of 0")``
matches those pieces in that order. Valid edge values must be accepted as given, not clamped.
"""

from __future__ import annotations

import functools
import re
import warnings

import pytest
import torch
from torch.nn.utils.rnn import pack_padded_sequence

import rnnkit

I, H, T, B = 3, 4, 5, 2  # input size, hidden size, time steps, batch


def pattern(*parts: str) -> str:
    """A regex matching the literal ``parts`` in order, anything between them."""
    return ".*".join(re.escape(p) for p in parts)


# --- what is under test ------------------------------------------------------------------
LAYERS = {
    "RNN": lambda **kw: rnnkit.RNN(I, H, **kw),
    "LSTM": lambda **kw: rnnkit.LSTM(I, H, **kw),
    "GRU": lambda **kw: rnnkit.GRU(I, H, **kw),
    "MinGRU": lambda **kw: rnnkit.MinGRU(I, H, **kw),
    "MinLSTM": lambda **kw: rnnkit.MinLSTM(I, H, **kw),
    "Recurrent": lambda **kw: rnnkit.Recurrent(lambda n: rnnkit.GRUCell(n, H), I, **kw),
}
TORCH_LAYERS = ("RNN", "LSTM", "GRU")
CELLS = {
    "RNNCell": rnnkit.RNNCell,
    "LSTMCell": rnnkit.LSTMCell,
    "GRUCell": rnnkit.GRUCell,
    "MinGRUCell": rnnkit.MinGRUCell,
    "MinLSTMCell": rnnkit.MinLSTMCell,
}
GATED_CELLS = ("RNNCell", "LSTMCell", "GRUCell")

all_layers = pytest.mark.parametrize("kind", list(LAYERS))
torch_layers = pytest.mark.parametrize("kind", TORCH_LAYERS)
all_cells = pytest.mark.parametrize("kind", list(CELLS))


def x_layer(*shape: int, dtype=torch.float32) -> torch.Tensor:
    return torch.randn(shape, dtype=dtype) if dtype.is_floating_point else torch.ones(shape, dtype=dtype)


def zero_state(kind: str, *shape: int, dtype=torch.float32):
    """A valid ``hx`` of the given shape: a tuple ``(h, c)`` for the LSTM, else one tensor."""
    if kind in ("LSTM", "LSTMCell"):
        return (torch.zeros(*shape, dtype=dtype), torch.zeros(*shape, dtype=dtype))
    return torch.zeros(*shape, dtype=dtype)


# --- layer input -------------------------------------------------------------------------
@all_layers
def test_layer_wrong_feature_size(kind):
    layer = LAYERS[kind]()
    with pytest.raises(ValueError, match=pattern("input.size(-1)", "input_size", "expected 3", "got 7")):
        layer(x_layer(T, B, 7))
    with pytest.raises(ValueError, match=pattern("input.size(-1)", "expected 3", "got 2")):
        layer(x_layer(T, 2))  # unbatched


@all_layers
@pytest.mark.parametrize("shape", [(T,), (T, B, I, 1)], ids=["1-D", "4-D"])
def test_layer_wrong_rank(kind, shape):
    with pytest.raises(ValueError, match=pattern("input", "3-D", f"got {len(shape)}-D", str(shape))):
        LAYERS[kind]()(x_layer(*shape))


@all_layers
@pytest.mark.parametrize("dtype", [torch.int64, torch.int32, torch.bool])
def test_layer_integer_input(kind, dtype):
    with pytest.raises(TypeError, match=pattern("input", "floating-point", f"got dtype {dtype}")):
        LAYERS[kind]()(x_layer(T, B, I, dtype=dtype))


@all_layers
def test_layer_input_dtype_differs_from_parameters(kind):
    with pytest.raises(TypeError, match=pattern("input", "expected torch.float32", "got torch.float64")):
        LAYERS[kind]()(x_layer(T, B, I, dtype=torch.float64))


@all_layers
def test_layer_input_device_differs_from_parameters(kind):
    with pytest.raises(ValueError, match=pattern("input", "device", "expected cpu", "got meta")):
        LAYERS[kind]()(torch.empty(T, B, I, device="meta"))


@all_layers
def test_layer_input_not_a_tensor(kind):
    with pytest.raises(TypeError, match=pattern("input", "torch.Tensor", "got list")):
        LAYERS[kind]()([[0.0] * I] * T)


@all_layers
def test_layer_input_without_time_steps(kind):
    with pytest.raises(ValueError, match=pattern("input", "at least one time step", "got 0")):
        LAYERS[kind]()(x_layer(0, B, I))


@all_layers
def test_packed_input_wrong_feature_size(kind):
    packed = pack_padded_sequence(x_layer(T, B, 7), [T, 2], enforce_sorted=False)
    with pytest.raises(ValueError, match=pattern("input.size(-1)", "expected 3", "got 7")):
        LAYERS[kind]()(packed)


# --- layer step ----------------------------------------------------------------------------
@all_layers
def test_step_wrong_feature_size(kind):
    with pytest.raises(ValueError, match=pattern("input.size(-1)", "expected 3", "got 5")):
        LAYERS[kind]().step(x_layer(B, 5))


@all_layers
def test_step_wrong_rank(kind):
    with pytest.raises(ValueError, match=pattern("input to step", "2-D", "got 3-D", str((T, B, I)))):
        LAYERS[kind]().step(x_layer(T, B, I))


@all_layers
def test_step_integer_and_mismatched_dtype(kind):
    layer = LAYERS[kind]()
    with pytest.raises(TypeError, match=pattern("input", "floating-point", "got dtype torch.int64")):
        layer.step(x_layer(B, I, dtype=torch.int64))
    with pytest.raises(TypeError, match=pattern("input", "expected torch.float32", "got torch.float64")):
        layer.step(x_layer(B, I, dtype=torch.float64))


@all_layers
def test_step_on_bidirectional_layer(kind):
    layer = LAYERS[kind](bidirectional=True)
    with pytest.raises(ValueError, match=pattern("step", "unidirectional", "bidirectional=True")):
        layer.step(x_layer(B, I))


@all_layers
def test_step_state_wrong_shape(kind):
    state = zero_state(kind, 1, B + 1, H)
    label = "state (h)" if kind == "LSTM" else "state"
    with pytest.raises(ValueError, match=pattern(label, f"shape {(1, B, H)}", f"got {(1, B + 1, H)}")):
        LAYERS[kind]().step(x_layer(B, I), state)


# --- hx ------------------------------------------------------------------------------------
@all_layers
@pytest.mark.parametrize(
    "bad, where",
    [((2, B, H), "layers"), ((1, B + 1, H), "batch"), ((1, B, H + 1), "size"), ((B, H), "rank")],
)
def test_hx_wrong_shape(kind, bad, where):
    label = "hx (h)" if kind == "LSTM" else "hx"
    with pytest.raises(ValueError, match=pattern(label, f"shape {(1, B, H)}", f"got {bad}")):
        LAYERS[kind]()(x_layer(T, B, I), zero_state(kind, *bad))


@all_layers
def test_hx_wrong_shape_unbatched(kind):
    label = "hx (h)" if kind == "LSTM" else "hx"
    with pytest.raises(ValueError, match=pattern(label, f"shape {(1, H)}", f"got {(1, 1, H)}")):
        LAYERS[kind]()(x_layer(T, I), zero_state(kind, 1, 1, H))


def test_lstm_hx_cell_state_wrong_shape():
    hx = (torch.zeros(1, B, H), torch.zeros(1, B, H + 1))
    with pytest.raises(ValueError, match=pattern("hx (c)", f"shape {(1, B, H)}", f"got {(1, B, H + 1)}")):
        rnnkit.LSTM(I, H)(x_layer(T, B, I), hx)


@pytest.mark.filterwarnings("ignore:LSTM with projections is not supported with oneDNN")
def test_lstm_projected_hx_shapes():
    lstm = rnnkit.LSTM(I, H, proj_size=2)
    with pytest.raises(ValueError, match=pattern("hx (h)", f"shape {(1, B, 2)}", f"got {(1, B, H)}")):
        lstm(x_layer(T, B, I), (torch.zeros(1, B, H), torch.zeros(1, B, H)))
    lstm(x_layer(T, B, I), (torch.zeros(1, B, 2), torch.zeros(1, B, H)))  # the valid shapes pass


@all_layers
def test_hx_wrong_dtype(kind):
    label = "hx (h)" if kind == "LSTM" else "hx"
    hx = zero_state(kind, 1, B, H, dtype=torch.float64)
    with pytest.raises(TypeError, match=pattern(label, "expected torch.float32", "got torch.float64")):
        LAYERS[kind]()(x_layer(T, B, I), hx)


@pytest.mark.parametrize(
    "hx, got",
    [((torch.zeros(1, B, H),), "tuple of 1"), ([torch.zeros(1, B, H)], "list of 1"), (0.0, "float")],
    ids=["tuple", "list", "float"],
)
@pytest.mark.parametrize("kind", ["RNN", "GRU", "MinGRU", "Recurrent"])
def test_single_state_hx_must_be_a_tensor(kind, hx, got):
    with pytest.raises(TypeError, match=pattern("hx", "a tensor", f"got {got}")):
        LAYERS[kind]()(x_layer(T, B, I), hx)


@pytest.mark.parametrize(
    "hx, got",
    [
        (torch.zeros(1, B, H), "Tensor"),
        ((torch.zeros(1, B, H),) * 3, "tuple of 3"),
        ((torch.zeros(1, B, H),), "tuple of 1"),
    ],
    ids=["tensor", "3-tuple", "1-tuple"],
)
def test_lstm_hx_wrong_number_of_components(hx, got):
    with pytest.raises(TypeError, match=pattern("hx", "tuple of 2 tensors", "'h', 'c'", f"got {got}")):
        rnnkit.LSTM(I, H)(x_layer(T, B, I), hx)


def test_lstm_hx_component_not_a_tensor():
    with pytest.raises(TypeError, match=pattern("hx (c)", "torch.Tensor", "got str")):
        rnnkit.LSTM(I, H)(x_layer(T, B, I), (torch.zeros(1, B, H), "c"))


# --- lengths -------------------------------------------------------------------------------
BAD_LENGTHS = [
    ([0, 3], ValueError, ("lengths", ">= 1", "got a length of 0")),
    (torch.tensor([3, -2]), ValueError, ("lengths", ">= 1", "got a length of -2")),
    ([T + 1, 3], ValueError, ("lengths", f"<= the time dimension ({T})", f"got a length of {T + 1}")),
    ([3, 2, 1], ValueError, ("lengths", "one entry per sequence", f"expected {B}", "got 3")),
    (torch.tensor([3]), ValueError, ("lengths", "one entry per sequence", f"expected {B}", "got 1")),
    (torch.tensor([3.0, 2.0]), TypeError, ("lengths", "integer tensor", "got dtype torch.float32")),
    ([3.0, 2.0], TypeError, ("lengths", "integers", "got [3.0, 2.0]")),
    ([True, True], TypeError, ("lengths", "integers", "got [True, True]")),
    (torch.tensor([True, True]), TypeError, ("lengths", "integer tensor", "got dtype torch.bool")),
    (torch.tensor([[3], [2]]), ValueError, ("lengths", "1-D", "got shape (2, 1)")),
    (torch.tensor(3), ValueError, ("lengths", "1-D", "got shape ()")),
    (3, TypeError, ("lengths", "1-D integer tensor or a list of integers", "got int")),
    ("ab", TypeError, ("lengths", "1-D integer tensor or a list of integers", "got str")),
]


@all_layers
@pytest.mark.parametrize(
    "lengths, error, parts",
    BAD_LENGTHS,
    ids=["zero", "negative", "longer-than-T", "too-many", "too-few", "float-tensor", "float-list",
         "bool-list", "bool-tensor", "2-D", "0-D", "int", "str"],
)  # fmt: skip
def test_bad_lengths(kind, lengths, error, parts):
    with pytest.raises(error, match=pattern(*parts)):
        LAYERS[kind]()(x_layer(T, B, I), lengths=lengths)


@all_layers
def test_lengths_need_batched_input(kind):
    with pytest.raises(ValueError, match=pattern("lengths", "batch", "got unbatched 2-D input")):
        LAYERS[kind]()(x_layer(T, I), lengths=[T])


@all_layers
def test_lengths_with_packed_sequence_is_rejected(kind):
    packed = pack_padded_sequence(x_layer(T, B, I), [3, 2], enforce_sorted=False)
    with pytest.raises(ValueError, match=pattern("lengths", "None", "PackedSequence")):
        LAYERS[kind]()(packed, lengths=[3, 2])


def test_lengths_with_packed_sequence_message_shows_the_value():
    packed = pack_padded_sequence(x_layer(T, B, I), [3, 2], enforce_sorted=False)
    with pytest.raises(ValueError, match=pattern("lengths", "PackedSequence", "got", "[3, 2]")):
        rnnkit.GRU(I, H)(packed, lengths=[3, 2])


# --- constructor options -------------------------------------------------------------------
BAD_RATES = [
    (-0.1, ValueError, "got -0.1"),
    (1.0, ValueError, "got 1.0"),
    (1.5, ValueError, "got 1.5"),
    (float("nan"), ValueError, "got nan"),
    ("a", TypeError, "got str 'a'"),
    (True, TypeError, "got bool True"),
    (None, TypeError, "got NoneType None"),
]
bad_rates = pytest.mark.parametrize("value, error, got", BAD_RATES, ids=[repr(r[0]) for r in BAD_RATES])


BAD_DROPOUT = [r for r in BAD_RATES if r[0] != 1.0]  # torch.nn's inter-layer dropout takes [0, 1]


@all_layers
@pytest.mark.parametrize("value, error, got", BAD_DROPOUT, ids=[repr(r[0]) for r in BAD_DROPOUT])
def test_dropout_outside_unit_interval(kind, value, error, got):
    with pytest.raises(error, match=pattern("dropout", "[0, 1]", got)):
        LAYERS[kind](num_layers=2, dropout=value)


@all_layers
def test_dropout_of_one_is_accepted_as_torch_nn_accepts_it(kind):
    """Issue 13, item 4: torch.nn's layers take dropout in [0, 1]; 1.0 zeroes the inputs of the layers above."""
    layer = LAYERS[kind](num_layers=2, dropout=1.0).train()
    assert layer.dropout == 1.0
    layer(x_layer(T, B, I))


@pytest.mark.parametrize("option", ["recurrent_dropout", "zoneout", "dropconnect"])
@bad_rates
@torch_layers
def test_regulariser_rate_outside_unit_interval_layer(kind, option, value, error, got):
    with pytest.raises(error, match=pattern(option, "[0, 1)", got)):
        LAYERS[kind](**{option: value})


@pytest.mark.parametrize("option", ["recurrent_dropout", "zoneout", "dropconnect"])
@bad_rates
@pytest.mark.parametrize("kind", GATED_CELLS)
def test_regulariser_rate_outside_unit_interval_cell(kind, option, value, error, got):
    with pytest.raises(error, match=pattern(option, "[0, 1)", got)):
        CELLS[kind](I, H, **{option: value})


def test_unknown_nonlinearity():
    for build in (lambda: rnnkit.RNN(I, H, nonlinearity="gelu"), lambda: rnnkit.RNNCell(I, H, nonlinearity="gelu")):
        with pytest.raises(ValueError, match=pattern("nonlinearity", "'tanh', 'relu'", "got 'gelu'")):
            build()


@pytest.mark.parametrize("kind", [*TORCH_LAYERS, *GATED_CELLS])
def test_unknown_init(kind):
    build = LAYERS[kind] if kind in LAYERS else functools.partial(CELLS[kind], I, H)
    with pytest.raises(ValueError, match=pattern("init", "'torch', 'orthogonal'", "got 'xavier'")):
        build(init="xavier")


@torch_layers
def test_unknown_backend(kind):
    with pytest.raises(ValueError, match=pattern("backend", "'auto', 'torch', 'loop'", "got 'cudnn'")):
        LAYERS[kind](backend="cudnn")


SIZE_ARGS = [
    (0, ValueError, "positive integer, got 0"),
    (-3, ValueError, "positive integer, got -3"),
    (2.5, TypeError, "integer, got float 2.5"),
    (4.0, TypeError, "integer, got float 4.0"),
    ("4", TypeError, "integer, got str '4'"),
    (True, TypeError, "integer, got bool True"),
]
bad_sizes = pytest.mark.parametrize("value, error, got", SIZE_ARGS, ids=[repr(r[0]) for r in SIZE_ARGS])


@pytest.mark.parametrize("kind", ["RNN", "LSTM", "GRU", "MinGRU", "MinLSTM"])
@pytest.mark.parametrize("arg", ["input_size", "hidden_size", "num_layers"])
@bad_sizes
def test_bad_layer_sizes(kind, arg, value, error, got):
    sizes = {"input_size": I, "hidden_size": H, "num_layers": 1, arg: value}
    with pytest.raises(error, match=pattern(arg, got)):
        getattr(rnnkit, kind)(**sizes)


CELL_SIZE_ARGS = [  # torch.nn's cells take 0 (and give empty outputs); its layers do not
    (-3, ValueError, "non-negative integer, got -3"),
    *(r for r in SIZE_ARGS if not isinstance(r[0], int) or isinstance(r[0], bool)),
]


@all_cells
@pytest.mark.parametrize("arg", ["input_size", "hidden_size"])
@pytest.mark.parametrize("value, error, got", CELL_SIZE_ARGS, ids=[repr(r[0]) for r in CELL_SIZE_ARGS])
def test_bad_cell_sizes(kind, arg, value, error, got):
    sizes = {"input_size": I, "hidden_size": H, arg: value}
    with pytest.raises(error, match=pattern(arg, got)):
        CELLS[kind](**sizes)


@all_cells
def test_cells_of_size_zero_give_empty_outputs_as_torch_nn_does(kind):
    """Issue 13, item 4: torch.nn.LSTMCell(3, 0) returns empty states; so do rnnkit's cells."""
    cell = CELLS[kind](input_size=I, hidden_size=0)
    out = cell(torch.randn(B, I))
    for part in out if isinstance(out, tuple) else (out,):
        assert part.shape == (B, 0)


@pytest.mark.parametrize("arg", ["input_size", "num_layers"])
@bad_sizes
def test_bad_recurrent_sizes(arg, value, error, got):
    sizes = {"input_size": I, "num_layers": 1, arg: value}
    with pytest.raises(error, match=pattern(arg, got)):
        rnnkit.Recurrent(lambda n: rnnkit.GRUCell(n, H), **sizes)


@pytest.mark.parametrize("build", [rnnkit.MinGRU, rnnkit.MinLSTM, rnnkit.MinGRUCell, rnnkit.MinLSTMCell])
def test_bad_scan_chunk(build):
    with pytest.raises(ValueError, match=pattern("scan_chunk", "positive integer", "got 0")):
        build(I, H, scan_chunk=0)


@pytest.mark.parametrize("build", [rnnkit.LSTM, rnnkit.LSTMCell])
@pytest.mark.parametrize("proj_size", [H, H + 3])
def test_proj_size_not_below_hidden_size(build, proj_size):
    with pytest.raises(ValueError, match=pattern("proj_size", f"smaller than hidden_size ({H})", f"got {proj_size}")):
        build(I, H, proj_size=proj_size)


@pytest.mark.parametrize("build", [rnnkit.LSTM, rnnkit.LSTMCell])
def test_proj_size_negative_or_fractional(build):
    with pytest.raises(ValueError, match=pattern("proj_size", "non-negative integer", "got -1")):
        build(I, H, proj_size=-1)
    with pytest.raises(TypeError, match=pattern("proj_size", "integer", "got float 1.5")):
        build(I, H, proj_size=1.5)


@pytest.mark.parametrize("build", [rnnkit.LSTM, rnnkit.LSTMCell])
def test_forget_bias(build):
    with pytest.raises(ValueError, match=pattern("forget_bias", "bias=True", "got bias=False")):
        build(I, H, bias=False, forget_bias=1.0)
    with pytest.raises(TypeError, match=pattern("forget_bias", "float or None", "got 'a'")):
        build(I, H, forget_bias="a")


@pytest.mark.parametrize(
    "kind, option",
    [("RNN", "bidirectional"), ("GRU", "batch_first"), ("LSTM", "layer_norm"), ("LSTM", "peepholes"),
     ("GRU", "reset_after"), ("RNN", "return_states"), ("MinGRU", "learn_initial_state"), ("RNN", "bias")],
)  # fmt: skip
def test_bool_options_reject_non_bools(kind, option):
    with pytest.raises(TypeError, match=pattern(option, "True or False", "got str 'yes'")):
        getattr(rnnkit, kind)(I, H, **{option: "yes"})


@pytest.mark.parametrize(
    "kind, options, shown",
    [
        ("RNN", {"layer_norm": True}, "layer_norm=True"),
        ("LSTM", {"layer_norm": True}, "layer_norm=True"),
        ("GRU", {"layer_norm": True}, "layer_norm=True"),
        ("LSTM", {"peepholes": True}, "peepholes=True"),
        ("GRU", {"reset_after": False}, "reset_after=False"),
        ("RNN", {"zoneout": 0.1}, "zoneout=0.1"),
        ("GRU", {"recurrent_dropout": 0.2}, "recurrent_dropout=0.2"),
        ("LSTM", {"dropconnect": 0.3}, "dropconnect=0.3"),
    ],
)
def test_torch_backend_rejects_options_its_kernel_lacks(kind, options, shown):
    with pytest.raises(ValueError, match=pattern("backend='torch'", shown, "backend='auto' or 'loop'")):
        LAYERS[kind](backend="torch", **options)


@torch_layers
def test_torch_backend_rejects_return_states(kind):
    with pytest.raises(ValueError, match=pattern("backend='torch'", "every step's state", "'auto' or 'loop'")):
        LAYERS[kind](backend="torch", return_states=True)


def test_torch_backend_return_states_message_names_return_states():
    with pytest.raises(ValueError, match=pattern("backend='torch'", "return_states=True")):
        rnnkit.GRU(I, H, backend="torch", return_states=True)


@torch_layers
def test_torch_backend_accepts_plain_layers(kind):
    extra = {"proj_size": 2} if kind == "LSTM" else {}  # torch.nn's own LSTM option
    layer = LAYERS[kind](backend="torch", num_layers=2, bidirectional=True, **extra)
    assert layer.uses_fused_kernel


@pytest.mark.parametrize("options", [{"num_layers": 2}, {"bidirectional": True}])
def test_recurrent_cell_instance_needs_one_slot(options):
    shown = "num_layers=2" if "num_layers" in options else "bidirectional=True"
    with pytest.raises(ValueError, match=pattern("cell must be a factory", "got a GRUCell instance", shown)):
        rnnkit.Recurrent(rnnkit.GRUCell(I, H), I, **options)


def test_recurrent_factory_returning_a_non_cell():
    with pytest.raises(TypeError, match=pattern("cell factory", "RecurrentCell", "got Linear")):
        rnnkit.Recurrent(lambda n: torch.nn.Linear(n, H), I)
    with pytest.raises(TypeError, match=pattern("cell factory", "RecurrentCell", "got GRU")):
        rnnkit.Recurrent(lambda n: torch.nn.GRU(n, H), I)  # a torch.nn layer is not a cell


def test_recurrent_cell_neither_cell_nor_factory():
    with pytest.raises(TypeError, match=pattern("cell", "RecurrentCell or a factory", "got int")):
        rnnkit.Recurrent(5, I)


def test_recurrent_cell_input_size_mismatch():
    with pytest.raises(ValueError, match=pattern("cell.input_size", "expected 3", "got 5")):
        rnnkit.Recurrent(rnnkit.GRUCell(5, H), I)
    with pytest.raises(ValueError, match=pattern("input_size=3", "got a cell with input_size=4")):
        rnnkit.Recurrent(lambda n: rnnkit.GRUCell(n + 1, H), I)


@pytest.mark.parametrize(
    "build, option",
    [
        (lambda: rnnkit.GRU(I, H, peepholes=True), "peepholes"),
        (lambda: rnnkit.GRU(I, H, proj_size=2), "proj_size"),
        (lambda: rnnkit.GRU(I, H, forget_bias=1.0), "forget_bias"),
        (lambda: rnnkit.RNN(I, H, reset_after=False), "reset_after"),
        (lambda: rnnkit.RNN(I, H, peepholes=True), "peepholes"),
        (lambda: rnnkit.LSTM(I, H, nonlinearity="relu"), "nonlinearity"),
        (lambda: rnnkit.LSTM(I, H, reset_after=False), "reset_after"),
        (lambda: rnnkit.MinGRU(I, H, layer_norm=True), "layer_norm"),
        (lambda: rnnkit.MinLSTM(I, H, zoneout=0.1), "zoneout"),
        (lambda: rnnkit.MinGRU(I, H, backend="loop"), "backend"),
        (lambda: rnnkit.GRUCell(I, H, peepholes=True), "peepholes"),
        (lambda: rnnkit.RNNCell(I, H, reset_after=False), "reset_after"),
        (lambda: rnnkit.LSTMCell(I, H, nonlinearity="relu"), "nonlinearity"),
        (lambda: rnnkit.MinGRUCell(I, H, zoneout=0.1), "zoneout"),
        (lambda: rnnkit.Recurrent(lambda n: rnnkit.GRUCell(n, H), I, hidden_size=H), "hidden_size"),
    ],
)
def test_option_the_cell_does_not_support(build, option):
    with pytest.raises(TypeError, match=pattern("unexpected keyword argument", f"'{option}'")):
        build()


# --- warnings and edge values --------------------------------------------------------------
@all_layers
def test_dropout_with_one_layer_warns(kind):
    with pytest.warns(UserWarning, match=pattern("dropout", "num_layers > 1", "dropout=0.5", "num_layers=1")):
        LAYERS[kind](dropout=0.5)



@pytest.mark.parametrize(
    "kind",
    [k for k in ("RNN", "LSTM", "GRU", "MinGRU", "MinLSTM")]
    + ["Recurrent"],
)
def test_dropout_warning_points_at_the_caller(kind):
    with pytest.warns(UserWarning, match="dropout") as record:
        LAYERS[kind](dropout=0.5)
    assert record[0].filename == __file__


@all_layers
@pytest.mark.parametrize("options", [{"dropout": 0.0}, {"dropout": 0.5, "num_layers": 2}])
def test_no_warning_for_the_usual_dropout(kind, options):
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        LAYERS[kind](**options)


@all_layers
def test_edge_dropout_values_are_kept(kind):
    assert LAYERS[kind](dropout=0.0).dropout == 0.0
    layer = LAYERS[kind](num_layers=2, dropout=0.999)
    assert layer.dropout == 0.999
    assert "dropout=0.999" in repr(layer)


@pytest.mark.parametrize("option", ["recurrent_dropout", "zoneout", "dropconnect"])
@pytest.mark.parametrize("value", [0.0, 0.999])
@pytest.mark.parametrize("kind", GATED_CELLS)
def test_edge_regulariser_values_are_kept(kind, option, value):
    cell = CELLS[kind](I, H, **{option: value})
    assert getattr(cell, option) == value
    layer = LAYERS[kind.removesuffix("Cell")](**{option: value})
    assert (f"{option}={value}" in repr(layer)) == bool(value)
    layer.train()
    output, _ = layer(x_layer(T, B, I))  # the edge value runs, in training mode too
    assert torch.isfinite(output).all()


def test_zoneout_near_one_is_not_clamped_at_evaluation():
    """At evaluation zoneout mixes ``rate * h_prev + (1 - rate) * h_new``: rate 0.999 exactly."""
    cell = rnnkit.RNNCell(I, H, zoneout=0.999, dtype=torch.float64).eval()
    plain = rnnkit.RNNCell(I, H, dtype=torch.float64).eval()
    plain.load_state_dict(cell.state_dict())
    x, h = torch.randn(B, I, dtype=torch.float64), torch.randn(B, H, dtype=torch.float64)
    torch.testing.assert_close(cell(x, h), 0.999 * h + 0.001 * plain(x, h), rtol=0, atol=1e-12)


# --- cells ---------------------------------------------------------------------------------
@all_cells
def test_cell_wrong_feature_size(kind):
    cell = CELLS[kind](I, H)
    with pytest.raises(ValueError, match=pattern("input.size(-1)", "input_size", "expected 3", "got 7")):
        cell(x_layer(B, 7))
    with pytest.raises(ValueError, match=pattern("input.size(-1)", "expected 3", "got 2")):
        cell(x_layer(2))


@all_cells
@pytest.mark.parametrize("shape", [(T, B, I), ()], ids=["3-D", "0-D"])
def test_cell_wrong_rank(kind, shape):
    with pytest.raises(ValueError, match=pattern("input", "1-D", "2-D", f"got {len(shape)}-D", str(shape))):
        CELLS[kind](I, H)(x_layer(*shape))


@all_cells
def test_cell_integer_input(kind):
    with pytest.raises(TypeError, match=pattern("input", "floating-point", "got dtype torch.int64")):
        CELLS[kind](I, H)(x_layer(B, I, dtype=torch.int64))


@all_cells
def test_cell_input_dtype_differs_from_parameters(kind):
    with pytest.raises(TypeError, match=pattern("input", "expected torch.float32", "got torch.float64")):
        CELLS[kind](I, H)(x_layer(B, I, dtype=torch.float64))


@all_cells
@pytest.mark.parametrize(
    "x_shape, bad, expected",
    [((B, I), (B + 1, H), (B, H)), ((B, I), (B, H + 1), (B, H)), ((B, I), (1, B, H), (B, H)), ((I,), (1, H), (H,))],
    ids=["batch", "size", "rank", "unbatched"],
)
def test_cell_hx_wrong_shape(kind, x_shape, bad, expected):
    with pytest.raises(ValueError, match=pattern("hx (h)", f"shape {expected}", f"got {bad}")):
        CELLS[kind](I, H)(x_layer(*x_shape), zero_state(kind, *bad))


@all_cells
def test_cell_hx_wrong_dtype(kind):
    hx = zero_state(kind, B, H, dtype=torch.float64)
    with pytest.raises(TypeError, match=pattern("hx (h)", "expected torch.float32", "got torch.float64")):
        CELLS[kind](I, H)(x_layer(B, I), hx)


@pytest.mark.parametrize(
    "hx, got", [(torch.zeros(B, H), "got 1"), ((torch.zeros(B, H),) * 3, "got 3")], ids=["tensor", "3-tuple"]
)
def test_lstm_cell_hx_wrong_number_of_components(hx, got):
    with pytest.raises(ValueError, match=pattern("hx", "2 state tensor(s)", "'h', 'c'", got)):
        rnnkit.LSTMCell(I, H)(x_layer(B, I), hx)


def test_lstm_cell_hx_component_wrong_shape_and_type():
    cell = rnnkit.LSTMCell(I, H)
    with pytest.raises(ValueError, match=pattern("hx (c)", f"shape {(B, H)}", f"got {(B, H + 1)}")):
        cell(x_layer(B, I), (torch.zeros(B, H), torch.zeros(B, H + 1)))
    with pytest.raises(TypeError, match=pattern("hx (c)", "torch.Tensor", "got str")):
        cell(x_layer(B, I), (torch.zeros(B, H), "c"))


@pytest.mark.parametrize("hx, error, got", [(5, TypeError, "got int"), ("ab", TypeError, "got str")])
def test_cell_hx_neither_tensor_nor_tuple(hx, error, got):
    with pytest.raises(Exception, match=pattern("hx", got)) as info:
        rnnkit.GRUCell(I, H)(x_layer(B, I), hx)
    assert info.type is error
