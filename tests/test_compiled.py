"""The compiled loops (rnnkit/_native/rnn.cpp) against their PyTorch twins, and their fallback.

The same layer with the same weights runs the compiled route and, with ``RNNKIT_NATIVE=0``, its
twin: the hand-written BPTT in PyTorch ops (rnnkit/scan/, itself held to the autograd step loop
by test_bptt.py) for the layer-norm LSTM, torch.nn's kernel for a plain GRU or Elman layer. Outputs, final states and every gradient must agree: 1e-10 in float64 (the compiled
math differs in the last bits, being built with -ffast-math), 1e-5 in float32 (the layer-norm LSTM,
ill-conditioned in float32 at these sizes, is held to the float64 result instead; see
test_matches_the_pytorch_bptt).
"""

from __future__ import annotations

import copy
import os
import shutil
import subprocess
import time

import pytest
import torch
from torch.autograd import gradcheck

import rnnkit
from rnnkit import _native, scan
from rnnkit.scan import _compiled, _minimal, _routes

pytestmark = pytest.mark.skipif(_native.ops() is None, reason="the compiled loops could not be built here")

T, B, I, H = 7, 3, 4, 5
LENGTHS = [7, 2, 5]
TORCH_NN_LAYERS = {  # the layers torch.nn also has, whose compiled loop rnnkit prefers to its kernel
    "gru": (rnnkit.GRU, {}),
    "gru_no_bias": (rnnkit.GRU, {"bias": False}),
    "rnn_tanh": (rnnkit.RNN, {}),
    "rnn_relu": (rnnkit.RNN, {"nonlinearity": "relu"}),
    "rnn_relu_no_bias": (rnnkit.RNN, {"nonlinearity": "relu", "bias": False}),
}
LAYERS = {
    **TORCH_NN_LAYERS,
    "lstm_layer_norm": (rnnkit.LSTM, {"layer_norm": True}),
    "lstm_layer_norm_no_bias": (rnnkit.LSTM, {"layer_norm": True, "bias": False}),
}


TOLERANCES = {torch.float64: dict(atol=1e-10, rtol=1e-10), torch.float32: dict(atol=1e-5, rtol=1e-5)}


def outputs_and_grads(layer, dtype, lengths, num_layers, bidirectional, drawn_in=None, autocast=None, inside=False):
    """The output and final states (an LSTM's h and c), and the gradients of a random projection
    of them with respect to the input, the initial states and every parameter. The random numbers
    are drawn in ``drawn_in`` (default ``dtype``), so a float64 run can take a float32 run's.
    ``autocast``: the forward runs under CPU autocast to that dtype (the backward too where ``inside``)."""
    drawn_in = drawn_in or dtype
    amp = torch.autocast("cpu", dtype=autocast or torch.bfloat16, enabled=autocast is not None)

    def draw(*shape):
        return torch.randn(shape, dtype=drawn_in).to(dtype)

    torch.manual_seed(7)
    x = draw(T, B, I).requires_grad_()
    components = 2 if isinstance(layer, rnnkit.LSTM) else 1
    state = tuple(
        draw(num_layers * (2 if bidirectional else 1), B, H).requires_grad_() for _ in range(components)
    )  # (L*D, B, H) each
    initial = state if components == 2 else state[0]
    with amp:
        output, final = layer(x, initial) if lengths is None else layer(x, initial, lengths=lengths)
    final = final if components == 2 else (final,)
    torch.manual_seed(99)
    loss = sum((y * draw(*y.shape)).sum() for y in (output, *final))
    with torch.autocast("cpu", dtype=autocast or torch.bfloat16, enabled=inside):
        grads = torch.autograd.grad(loss, [x, *state, *layer.parameters()])
    return (output, *final), grads


def spy_on_compiled_scan(monkeypatch) -> list[bool]:
    """Record, per scan the cells run (a layer's slot), whether the compiled loop took it."""
    taken = []
    real = _routes.select

    def spy(*args, **kwargs):
        route = real(*args, **kwargs)
        taken.append(route.name == "compiled")
        return route

    monkeypatch.setattr(_routes, "select", spy)
    return taken


def slot_route(cell, xp, state, params) -> str:
    """The route one slot of a layer takes (torch.nn's whole-stack kernel aside)."""
    return scan.select(cell, scan.ScanCall(xp, state, params), exclude={"torch"}).name


def run_slot(cell, xp, state, params):
    return scan.run(cell, scan.ScanCall(xp, state, params))


@pytest.mark.parametrize("name", list(LAYERS))
@pytest.mark.parametrize("dtype", [torch.float64, torch.float32, "float32 packed"])
@pytest.mark.parametrize("lengths", [None, LENGTHS])
@pytest.mark.parametrize("shape", [(1, False), (2, True)], ids=["1 layer", "2 layers bidirectional"])
def test_matches_the_pytorch_bptt(name, dtype, lengths, shape, monkeypatch):
    if dtype == "float32 packed":  # the per-step products on oneDNN's packed weights, at any size
        monkeypatch.setattr(_compiled, "PACK_FROM", 1)
        assert _compiled.pack(torch.randn(3 * H, H), B) is not None
        dtype = torch.float32
    layer_class, options = LAYERS[name]
    torch.manual_seed(0)
    layer = layer_class(I, H, num_layers=shape[0], bidirectional=shape[1], **options).to(dtype)
    taken = spy_on_compiled_scan(monkeypatch)
    compiled = outputs_and_grads(layer, dtype, lengths, *shape)
    scans = shape[0] * (2 if shape[1] else 1)
    assert len(taken) == scans and all(taken)
    monkeypatch.setenv("RNNKIT_NATIVE", "0")
    assert _native.ops() is None
    twin = outputs_and_grads(layer, dtype, lengths, *shape)
    assert not any(taken[scans:])  # the twin: rnnkit's PyTorch BPTT, or torch.nn's kernel for a plain layer
    compiled, twin = compiled[0] + compiled[1], twin[0] + twin[1]
    if dtype == torch.float32 and layer_class is rnnkit.LSTM:
        # The layer-norm LSTM at these sizes (norms over H = 5 units) is ill-conditioned in float32:
        # moving its weights by one float32 rounding moves some gradients by 2e-5 of their size, and
        # the twin and the compiled loop, each about as close to the exact result, differ by up to
        # 2.4e-5 (measured over these cases). So both are held to the float64 result of the same
        # numbers, within 3e-5 of each tensor's largest entry.
        exact = outputs_and_grads(copy.deepcopy(layer).double(), torch.float64, lengths, *shape, torch.float32)
        for a, b, truth in zip(compiled, twin, exact[0] + exact[1]):
            tolerance = dict(atol=3e-5 * truth.abs().max().item(), rtol=0)
            torch.testing.assert_close(a.double(), truth, **tolerance)
            torch.testing.assert_close(b.double(), truth, **tolerance)
        return
    for a, b in zip(compiled, twin):
        torch.testing.assert_close(a, b, **TOLERANCES[dtype])


LOW_DTYPES = [torch.bfloat16, torch.float16]  # CPU autocast's


@pytest.mark.parametrize("name", ["lstm_layer_norm", "lstm_layer_norm_no_bias"])
@pytest.mark.parametrize("low", LOW_DTYPES, ids=["bf16", "fp16"])
@pytest.mark.parametrize("lengths", [None, LENGTHS])
@pytest.mark.parametrize("shape", [(1, False), (2, True)], ids=["1 layer", "2 layers bidirectional"])
def test_matches_the_pytorch_bptt_under_autocast(name, low, lengths, shape, monkeypatch):
    """Under CPU autocast the layer-norm LSTM's compiled loop computes its products as the PyTorch
    BPTT's _Products does (operands and result rounded to bf16/fp16, states and gates float32)."""
    layer_class, options = LAYERS[name]
    torch.manual_seed(0)
    layer = layer_class(I, H, num_layers=shape[0], bidirectional=shape[1], **options)  # float32
    taken = spy_on_compiled_scan(monkeypatch)
    compiled = outputs_and_grads(layer, torch.float32, lengths, *shape, autocast=low)
    scans = shape[0] * (2 if shape[1] else 1)
    assert len(taken) == scans and all(taken)
    in_float32 = outputs_and_grads(layer, torch.float32, lengths, *shape)  # no autocast: the same loop
    monkeypatch.setenv("RNNKIT_NATIVE", "0")
    twin = outputs_and_grads(layer, torch.float32, lengths, *shape, autocast=low)
    assert not any(taken[2 * scans :])
    compiled, twin, in_float32 = (r[0] + r[1] for r in (compiled, twin, in_float32))
    # Both compute every product by the same at::mm on the same low-precision operands, so they
    # differ by the float32 rounding of the elementwise math (the compiled loop's -ffast-math), and
    # by a product's rounding where that moves an operand or a result across a rounding boundary
    # of the low dtype. In bf16 that never happened here: at most 8.5e-7 of each tensor's largest
    # entry over these cases, held to 1e-5. A product in float32 or a state rounded to bf16 moves
    # every tensor by bf16 rounding, as the float32 run shows: 2e-3 to 0.6 of its largest entry
    # (at least 2e-4 is asserted). fp16's boundaries are 8x denser: a few products round the other
    # way, and over H = 5 units that moves some gradients by up to 6.5e-4 of their largest entry
    # (measured), held to 1e-3, while the float32 run is 1e-2 or more away in some tensor (at least
    # 5e-3 is asserted); bf16, autocast's CPU default, is the strict check.
    tolerance, far = (1e-5, 2e-4) if low == torch.bfloat16 else (1e-3, 5e-3)
    distances = []
    for a, b, c in zip(compiled, twin, in_float32):
        assert a.dtype == torch.float32
        scale = b.abs().max().item()
        torch.testing.assert_close(a, b, atol=tolerance * scale, rtol=0)
        distances.append((c - b).abs().max().item() / scale)
    assert min(distances) > far if low == torch.bfloat16 else max(distances) > far


@pytest.mark.parametrize("name", list(TORCH_NN_LAYERS))
def test_matches_torch_nn(name):
    """backend="auto" on CPU takes the compiled loop and equals torch.nn's layer, gradients included."""
    layer_class, options = TORCH_NN_LAYERS[name]
    assert layer_class(I, H, **options).prefers_compiled_loop
    torch.manual_seed(0)
    ours = layer_class(I, H, num_layers=2, **options).double()
    reference = getattr(torch.nn, layer_class.__name__)(I, H, num_layers=2, **options).double()
    reference.load_state_dict(ours.state_dict())
    ours_out = outputs_and_grads(ours, torch.float64, None, 2, False)
    reference_out = outputs_and_grads(reference, torch.float64, None, 2, False)
    for a, b in zip(ours_out[0] + ours_out[1], reference_out[0] + reference_out[1]):
        torch.testing.assert_close(a, b, **TOLERANCES[torch.float64])


def test_the_compiled_route_is_taken():
    x = torch.randn(T, B, I)
    for cell, taken in (
        (rnnkit.GRUCell(I, H), True),
        (rnnkit.RNNCell(I, H, nonlinearity="relu"), True),
        (rnnkit.GRUCell(I, H, zoneout=0.1), False),
        (rnnkit.GRUCell(I, H, reset_after=False), False),
        (rnnkit.LSTMCell(I, H), False),  # torch.nn's oneDNN kernel runs a plain LSTM
        (rnnkit.LSTMCell(I, H, layer_norm=True), True),
        (rnnkit.LSTMCell(I, H, layer_norm=True, bias=False), True),
        (rnnkit.LSTMCell(I, H, layer_norm=True, peepholes=True), False),
        (rnnkit.LSTMCell(I, H, layer_norm=True, zoneout=0.1), False),
        (rnnkit.LSTMCell(I, H, layer_norm=True, proj_size=3), False),
        (rnnkit.LSTMCell(I, H, layer_norm=True, recurrent_dropout=0.1), False),
        (rnnkit.LSTMCell(I, H, layer_norm=True, dropconnect=0.1), False),
    ):
        params = cell.parameters_dict()
        xp = cell.project_input(x, params)
        state = cell.initial_state(B, dtype=x.dtype, device=x.device)
        assert (slot_route(cell, xp, state, params) == "compiled") is taken
    with torch.autocast("cpu", dtype=torch.bfloat16):
        assert not _compiled.applies(x)  # GRU and Elman: their products are float32 in C++
        for cell, dtype, taken in (
            (rnnkit.LSTMCell(I, H, layer_norm=True), torch.float32, True),  # products in bf16
            (rnnkit.LSTMCell(I, H, layer_norm=True, bias=False), torch.float32, True),
            (rnnkit.LSTMCell(I, H, layer_norm=True), torch.float64, False),  # autocast leaves float64 alone
            (rnnkit.LSTMCell(I, H, layer_norm=True, peepholes=True), torch.float32, False),
            (rnnkit.LSTMCell(I, H), torch.float32, False),
            (rnnkit.GRUCell(I, H), torch.float32, False),
            (rnnkit.RNNCell(I, H), torch.float32, False),
        ):
            cell = cell.to(dtype)
            params = cell.parameters_dict()
            xp = cell.project_input(x.to(dtype), params)
            state = cell.initial_state(B, dtype=dtype, device=x.device)
            assert (slot_route(cell, xp, state, params) == "compiled") is taken


@pytest.mark.parametrize("low", LOW_DTYPES, ids=["bf16", "fp16"])
def test_backward_inside_autocast_gives_the_same_gradients(low, monkeypatch):
    """backward() called inside the autocast region (on CPU it runs on the calling thread) computes
    what it computes outside: the compiled loop's products keep the forward's dtype."""
    torch.manual_seed(0)
    layer = rnnkit.LSTM(I, H, num_layers=2, bidirectional=True, layer_norm=True)
    taken = spy_on_compiled_scan(monkeypatch)
    outside = outputs_and_grads(layer, torch.float32, LENGTHS, 2, True, autocast=low)
    inside = outputs_and_grads(layer, torch.float32, LENGTHS, 2, True, autocast=low, inside=True)
    assert len(taken) == 8 and all(taken)
    for a, b in zip(outside[0] + outside[1], inside[0] + inside[1]):
        torch.testing.assert_close(a, b, atol=0, rtol=0)


@pytest.mark.parametrize("cell", [rnnkit.LSTMCell(I, H, layer_norm=True), rnnkit.GRUCell(I, H), rnnkit.RNNCell(I, H)],
                         ids=["lstm_layer_norm", "gru", "rnn_tanh"])  # fmt: skip
def test_a_float32_scan_keeps_float32_products_when_backward_runs_inside_autocast(cell):
    """A scan run outside autocast and differentiated inside it: the compiled backward's products stay
    float32 (the scan alone: autograd's own nodes, such as the input projection's, would not)."""
    torch.manual_seed(0)
    params = cell.parameters_dict()
    xp = torch.randn(T, B, params["weight_hh"].shape[0], requires_grad=True)  # (T, B, G*H)
    state = tuple(torch.randn(B, H, requires_grad=True) for _ in cell.state_sizes)
    assert slot_route(cell, xp, state, params) == "compiled"
    ys, final, _ = run_slot(cell, xp, state, params)
    loss = (ys * torch.randn(ys.shape)).sum() + sum((s * torch.randn(s.shape)).sum() for s in final)
    grads = []
    for inside in (False, True):
        with torch.autocast("cpu", dtype=torch.bfloat16, enabled=inside):
            found = torch.autograd.grad(loss, [xp, *state, *params.values()], retain_graph=True, allow_unused=True)
            grads.append([g for g in found if g is not None])  # the input projection's are not the scan's
    assert len(grads[0]) >= len(state) + 2  # xp, the states, W_hh and more
    torch.testing.assert_close(grads[0], grads[1], atol=0, rtol=0)


@pytest.mark.parametrize("name", ["gru", "rnn_tanh", "rnn_relu", "lstm_layer_norm", "lstm_layer_norm_no_bias"])
def test_gradcheck(name, monkeypatch):
    layer_class, options = LAYERS[name]
    torch.manual_seed(0)
    layer = layer_class(I, H, **options).double()
    names, params = zip(*layer.named_parameters())
    x = torch.randn(4, 2, I, dtype=torch.float64, requires_grad=True)
    components = 2 if layer_class is rnnkit.LSTM else 1
    state = tuple(torch.randn(1, 2, H, dtype=torch.float64, requires_grad=True) for _ in range(components))

    def f(x, *values):
        state, weights = values[:components], dict(zip(names, values[components:]))
        output, final = torch.func.functional_call(
            layer, weights, (x, state if components == 2 else state[0]), {"lengths": [4, 3]}
        )
        return (output, *final) if components == 2 else (output, final)

    # torch.func's functional_call runs no transform, so the compiled route is the one checked
    assert _compiled.applies(x)
    taken = spy_on_compiled_scan(monkeypatch)
    assert gradcheck(f, (x, *state, *params))
    assert taken and all(taken)


@pytest.mark.parametrize("dtype", [torch.float64, torch.float32])
def test_linear_scan_matches_its_twin(dtype):
    torch.manual_seed(0)
    a = torch.rand(50, 3, 4, dtype=dtype, requires_grad=True)
    b = torch.randn(50, 3, 4, dtype=dtype, requires_grad=True)
    h0 = torch.randn(3, 4, dtype=dtype, requires_grad=True)
    results = []
    for recurrence in (_minimal.CompiledLinearRecurrence.apply, scan.LinearRecurrence.apply):
        hs = recurrence(a, b, h0)
        grads = torch.autograd.grad((hs * torch.linspace(-1, 1, 4, dtype=dtype)).sum(), (a, b, h0))
        results.append((hs, *grads))
    for x, y in zip(*results):
        torch.testing.assert_close(x, y, **TOLERANCES[dtype])


@pytest.mark.parametrize("dtype", [torch.float64, torch.float32])
@pytest.mark.parametrize("lengths", [None, LENGTHS])
def test_mingru_matches_its_twin(dtype, lengths, monkeypatch):
    """minGRU's one-pass compiled scan against its coefficients and the PyTorch linear recurrence."""
    torch.manual_seed(0)
    layer = rnnkit.MinGRU(I, H, num_layers=2).to(dtype)
    compiled = outputs_and_grads(layer, dtype, lengths, 2, False)
    monkeypatch.setenv("RNNKIT_NATIVE", "0")
    twin = outputs_and_grads(layer, dtype, lengths, 2, False)
    for a, b in zip(compiled[0] + compiled[1], twin[0] + twin[1]):
        torch.testing.assert_close(a, b, **TOLERANCES[dtype])


def test_mingru_and_minlstm_take_the_compiled_scans():
    x = torch.randn(T, B, I, dtype=torch.float64, requires_grad=True)
    assert type(rnnkit.MinGRU(I, H).double()(x)[0].grad_fn).__name__ == "CompiledMinGRUBackward"
    assert type(rnnkit.MinLSTM(I, H).double()(x)[0].grad_fn).__name__ == "CompiledLinearRecurrenceBackward"


def test_switched_off_and_falls_back(monkeypatch):
    monkeypatch.setenv("RNNKIT_NATIVE", "0")
    assert _native.ops() is None
    x = torch.randn(T, B, I)
    assert not _compiled.applies(x)
    output, _ = rnnkit.GRU(I, H)(x)  # torch.nn's kernel again
    assert output.shape == (T, B, H)


def test_a_failed_build_warns_once_and_falls_back(monkeypatch, tmp_path):
    monkeypatch.setattr(_native, "_state", {})
    monkeypatch.setenv("RNNKIT_CACHE", str(tmp_path))
    monkeypatch.setenv("CXX", str(tmp_path / "no-such-compiler"))
    with pytest.warns(RuntimeWarning, match="compiled RNN loops are unavailable"):
        assert _native.ops() is None
    assert _native.ops() is None  # remembered: no second attempt, no second warning
    torch.manual_seed(0)
    layer = rnnkit.GRU(I, H)
    output, _ = layer(torch.randn(T, B, I))
    assert output.shape == (T, B, H)


def test_the_build_is_cached(monkeypatch):
    """A second build for the same setup reuses the library (the compiler is not run again)."""
    first = _native.build()  # built by ops() already
    real_run = subprocess.run

    def run(command, **kwargs):
        if "--version" not in command:
            pytest.fail(f"compiled again: {command}")
        return real_run(command, **kwargs)

    monkeypatch.setattr(_native.subprocess, "run", run)
    assert _native.build() == first


def test_builds_of_other_setups_unused_for_a_month_are_deleted(tmp_path):
    """Each source or torch version builds into its own folder: old ones do not pile up forever."""

    def build_folder(name, days_unused):
        folder = tmp_path / name
        folder.mkdir()
        library = folder / "rnnkit_native.so"
        library.write_bytes(b"")
        stamp = time.time() - days_unused * 86400
        os.utime(library, (stamp, stamp))
        return folder

    current = build_folder("0123456789abcdef", 400)  # in use now, however old
    recent = build_folder("1111111111111111", _native.PRUNE_AFTER_DAYS - 1)
    stale = build_folder("2222222222222222", _native.PRUNE_AFTER_DAYS + 1)
    someone_elses = build_folder("not-a-build-key!", 400)
    in_progress = tmp_path / "3333333333333333"
    in_progress.mkdir()  # no library yet: a build under way
    _native._prune(tmp_path, keep=current)
    assert current.exists() and recent.exists() and someone_elses.exists() and in_progress.exists()
    assert not stale.exists()


def test_a_use_marks_the_build_as_used(monkeypatch, tmp_path):
    monkeypatch.setenv("RNNKIT_CACHE", str(tmp_path))
    cached = tmp_path / _native._build_key(shutil.which("g++") or "g++") / "rnnkit_native.so"
    cached.parent.mkdir()
    cached.write_bytes(b"")
    os.utime(cached, (0, 0))
    assert _native.build() == cached
    assert time.time() - cached.stat().st_mtime < 3600


def test_a_compiler_is_used_when_present():
    """Where g++ exists the library must build: a broken rnn.cpp must not pass as a silent fallback."""
    if shutil.which("g++") is None:
        pytest.skip("no g++ on this machine; the PyTorch twin runs")
    assert _native.available()


def test_loading_keeps_subnormal_numbers():
    """The library is built with -ffast-math but linked without it: loading it must not switch the
    process to flush-to-zero (gcc's crtfastmath.o would; hypothesis, for one, refuses to run then)."""
    assert _native.ops() is not None
    assert 5e-324 * 1.0 > 0.0
    assert (torch.tensor(1e-44) * 1.0).item() > 0.0


@pytest.mark.parametrize("name", list(LAYERS))
@pytest.mark.parametrize("lengths", [None, LENGTHS])
@pytest.mark.parametrize("packed", [False, True])
def test_inference_sweep_equals_the_training_one(name, lengths, packed, monkeypatch):
    """Under no_grad the forward sweep runs without the Function; the numbers are the same."""
    layer_class, options = LAYERS[name]
    torch.manual_seed(0)
    dtype = torch.float32 if packed else torch.float64
    if packed:
        monkeypatch.setattr(_compiled, "PACK_FROM", 1)
    layer = layer_class(I, H, num_layers=2, bidirectional=True, **options).to(dtype)
    x = torch.randn(T, B, I, dtype=dtype)
    trained = layer(x, lengths=lengths) if lengths else layer(x)
    with torch.no_grad():
        inferred = layer(x, lengths=lengths) if lengths else layer(x)
    assert trained[0].grad_fn is not None and inferred[0].grad_fn is None
    for a, b in zip(trained, inferred):
        torch.testing.assert_close(a, b, atol=0, rtol=0)


@pytest.mark.parametrize("name", ["gru", "lstm_layer_norm"])
def test_rows_split_across_threads_give_the_same_numbers(name):
    """A batch big enough that the compiled loops hand its rows to two threads: the same outputs and
    gradients as one thread (each row, and the layer-norm LSTM's per-row parameter sums, belongs to
    one thread; only the matmuls may sum in another order)."""
    layer_class, options = LAYERS[name]
    torch.manual_seed(0)
    layer = layer_class(3, 4, **options).double()
    x = torch.randn(6, 3000, 3, dtype=torch.float64, requires_grad=True)  # 3000 rows: > 2 grains at H=4
    lengths = torch.randint(1, 7, (3000,))
    weights = torch.randn(6, 3000, 4, dtype=torch.float64)
    results = []
    threads = torch.get_num_threads()
    try:
        for n in (1, 2):
            torch.set_num_threads(n)
            output, _ = layer(x, lengths=lengths)
            results.append((output, *torch.autograd.grad((output * weights).sum(), [x, *layer.parameters()])))
    finally:
        torch.set_num_threads(threads)
    for a, b in zip(*results):
        torch.testing.assert_close(a, b, atol=1e-12, rtol=1e-12)


def test_a_read_only_home_caches_in_the_temporary_folder(monkeypatch, tmp_path):
    blocked = tmp_path / "not-a-folder"
    blocked.write_text("")  # a file where the cache folder would go: mkdir fails
    monkeypatch.delenv("RNNKIT_CACHE", raising=False)
    monkeypatch.setenv("XDG_CACHE_HOME", str(blocked))
    monkeypatch.setattr(_native.tempfile, "tempdir", str(tmp_path / "tmp"))
    home, temporary = _native._cache_roots()
    assert home == blocked / "rnnkit" and temporary.parent == tmp_path / "tmp"
    key = _native._build_key(shutil.which("g++") or "g++")
    cached = temporary / key / "rnnkit_native.so"
    cached.parent.mkdir(parents=True)
    cached.write_bytes(b"")  # a build already there: found, not compiled again
    assert _native.build() == cached
