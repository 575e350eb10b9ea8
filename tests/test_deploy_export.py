"""rnnkit.export: the whole-sequence and one-step graphs, state explicit, in onnxruntime and
TorchScript equal to PyTorch within 1e-5 (fp32).

The default matrix runs every layer kind and every option once; ``RNNKIT_FULL_EXPORT=1`` runs the
issue's whole cross product (RNN/LSTM/GRU x 1-3 layers x bidirectional x batch_first...).
"""

from __future__ import annotations

import itertools
import os

import numpy as np
import pytest
import torch

import rnnkit
from rnnkit._io import save_tensors, write_json
from rnnkit.cli import main
from rnnkit.deploy import export, initial_state
from rnnkit.models import create_model, model_spec

onnx = pytest.importorskip("onnx")
ort = pytest.importorskip("onnxruntime")

STEPS = 5
TOL = dict(atol=1e-5, rtol=1e-5)


def _layer(kind, layers=1, bidirectional=False, batch_first=False, **options):
    make = {"rnn": rnnkit.RNN, "rnn_relu": rnnkit.RNN, "lstm": rnnkit.LSTM, "gru": rnnkit.GRU,
            "mingru": rnnkit.MinGRU, "minlstm": rnnkit.MinLSTM}[kind]  # fmt: skip
    if kind == "rnn_relu":
        options["nonlinearity"] = "relu"
    torch.manual_seed(0)
    return make(3, 6, num_layers=layers, bidirectional=bidirectional, batch_first=batch_first, **options).eval()


DEFAULT = [  # every layer kind once, every option once
    ("rnn", dict(layers=2)),
    ("rnn_relu", dict(bidirectional=True)),
    ("lstm", dict(layers=2, batch_first=True)),
    ("lstm", dict(bidirectional=True, layers=2, proj_size=4)),
    ("lstm", dict(layer_norm=True, peepholes=True, zoneout=0.2, recurrent_dropout=0.3)),
    ("gru", dict(layers=3, reset_after=False, dropconnect=0.2, batch_first=True)),
    ("gru", dict(bidirectional=True, layer_norm=True)),
    ("mingru", dict(layers=2)),
    ("minlstm", dict(bidirectional=True, batch_first=True)),
]
FULL = [
    (kind, dict(layers=n, bidirectional=bi, batch_first=bf, **extra))
    for kind, n, bi, bf, extra in itertools.product(
        ("rnn", "lstm", "gru"), (1, 2, 3), (False, True), (False, True),
        ({}, {"layer_norm": True}, {"zoneout": 0.1, "recurrent_dropout": 0.2}),
    )
] + [("lstm", dict(layers=n, bidirectional=bi, proj_size=4, peepholes=True)) for n in (1, 2) for bi in (False, True)] + [
    ("gru", dict(layers=2, reset_after=False)), ("mingru", dict(layers=3, bidirectional=True)), ("minlstm", dict(layers=2)),
]  # fmt: skip
MATRIX = FULL if os.environ.get("RNNKIT_FULL_EXPORT") == "1" else DEFAULT


def _inputs(layer, batch, steps, seed=1):
    g = torch.Generator().manual_seed(seed)
    x = torch.randn((batch, steps, 3) if layer.batch_first else (steps, batch, 3), generator=g)
    lengths = torch.randint(1, steps + 1, (batch,), generator=g)
    lengths[0] = steps
    state = tuple(torch.randn(s.shape, generator=g) for s in initial_state(layer, batch))
    return x, state, lengths


def _reference(layer, x, state, lengths):
    with torch.no_grad():
        out, final = layer(x, state[0] if len(state) == 1 else state, lengths=lengths)
    return out, (final,) if isinstance(final, torch.Tensor) else final


def _close(actual, expected):
    np.testing.assert_allclose(actual, expected.numpy(), **TOL)


@pytest.mark.parametrize("kind, settings", MATRIX, ids=[f"{k}-{'-'.join(f'{a}={b}' for a, b in s.items())}" for k, s in MATRIX])
def test_onnx_graphs_equal_pytorch(kind, settings, tmp_path):
    layer = _layer(kind, **settings)
    paths = export(layer, tmp_path / "m.onnx", steps=STEPS)
    for path in paths.values():
        onnx.checker.check_model(onnx.load(str(path)))
    # a batch size other than the traced one's (2), with varied lengths
    x, state, lengths = _inputs(layer, batch=4, steps=STEPS)
    out, final = _reference(layer, x, state, lengths)
    session = ort.InferenceSession(str(paths["sequence"]))
    names = [i.name for i in session.get_inputs()]
    result = session.run(None, dict(zip(names, [x.numpy(), *(s.numpy() for s in state), lengths.numpy()])))
    _close(result[0], out)
    for got, want in zip(result[1:], final):
        _close(got, want)
    assert ("step" in paths) == (not layer.bidirectional)
    if layer.bidirectional:
        return
    # the one-step graph stepped T times equals the whole sequence (full-length sequences)
    full = torch.full_like(lengths, STEPS)
    out, final = _reference(layer, x, state, full)
    step = ort.InferenceSession(str(paths["step"]))
    carry = [s.numpy() for s in state]
    xs = x.transpose(0, 1) if layer.batch_first else x  # (T, B, I)
    for t in range(STEPS):
        y, *carry = step.run(None, dict(zip([i.name for i in step.get_inputs()], [xs[t].numpy(), *carry])))
        _close(y, (out[:, t] if layer.batch_first else out[t]))
    for got, want in zip(carry, final):
        _close(got, want)


def test_torchscript_graphs_equal_pytorch(tmp_path):
    layer = _layer("lstm", layers=2, layer_norm=True)
    paths = export(layer, tmp_path / "m.pt", format="torchscript", steps=STEPS)
    x, state, lengths = _inputs(layer, batch=3, steps=STEPS)
    out, final = _reference(layer, x, state, lengths)
    result = torch.jit.load(str(paths["sequence"]))(x, *state, lengths)
    torch.testing.assert_close(result[0], out, **TOL)
    torch.testing.assert_close(result[1:], final, **TOL)
    y, h, c = torch.jit.load(str(paths["step"]))(x[0], *state)
    out1, _ = _reference(layer, x[:1], state, torch.ones_like(lengths))
    torch.testing.assert_close(y, out1[0], **TOL)


def test_exported_program_step_equals_pytorch(tmp_path):
    layer = _layer("gru", layers=2)
    paths = export(layer, tmp_path / "m.pt2", format="exported", graphs="step")
    assert list(paths) == ["step"]
    program = torch.export.load(str(paths["step"]))
    x, state, _ = _inputs(layer, batch=5, steps=1)
    y, h = program.module()(x[0], *state)
    with torch.no_grad():
        ref, href = layer.step(x[0], state[0])
    torch.testing.assert_close(y, ref, **TOL)
    torch.testing.assert_close(h, href, **TOL)


@pytest.mark.parametrize("name, config, tokens", [
    ("many_to_one", {"input": {"vocab_size": 11, "embedding_dim": 4}, "outputs": 3, "pooling": "mean",
                     "encoder": {"cell": "gru", "hidden_size": 5, "bidirectional": True}}, True),
    ("many_to_one", {"input": {"features": 2}, "outputs": 1, "encoder": {"cell": "lstm", "hidden_size": 5}}, False),
    ("many_to_many", {"input": {"features": 2}, "outputs": 2, "encoder": {"cell": "minlstm", "hidden_size": 5, "num_layers": 2}}, False),
])  # fmt: skip
def test_models_export_to_onnx(name, config, tokens, tmp_path):
    torch.manual_seed(0)
    model = create_model(name, config).eval()
    paths = export(model, tmp_path / "m.onnx", steps=STEPS)
    g = torch.Generator().manual_seed(3)
    x = torch.randint(0, 11, (3, STEPS), generator=g) if tokens else torch.randn(3, STEPS, 2, generator=g)
    lengths = torch.tensor([STEPS, 2, 4])
    state = initial_state(model, 3)
    with torch.no_grad():
        expected = model(x, lengths=lengths) if name == "many_to_one" else model(x, lengths=lengths)[0]
    session = ort.InferenceSession(str(paths["sequence"]))
    feeds = dict(zip([i.name for i in session.get_inputs()], [x.numpy(), *(s.numpy() for s in state), lengths.numpy()]))
    _close(session.run(None, feeds)[0], expected)
    if "step" in paths:  # the streaming score: the model on the prefix so far
        step = ort.InferenceSession(str(paths["step"]))
        carry = [s.numpy() for s in state]
        for t in range(STEPS):
            y, *carry = step.run(None, dict(zip([i.name for i in step.get_inputs()], [x[:, t].numpy(), *carry])))
        with torch.no_grad():
            full = model(x) if name == "many_to_one" else model(x)[0][:, -1]
        _close(y, full)


def test_bad_arguments_are_named(tmp_path):
    with pytest.raises(ValueError, match="format must be one of"):
        export(rnnkit.GRU(3, 4), tmp_path / "m", format="tflite")
    with pytest.raises(ValueError, match="unidirectional"):
        export(rnnkit.GRU(3, 4, bidirectional=True), tmp_path / "m.onnx", graphs="step")
    with pytest.raises(TypeError, match="model must be an rnnkit recurrent layer"):
        export(torch.nn.Linear(2, 2), tmp_path / "m.onnx")
    assert not list(tmp_path.iterdir())  # nothing half-written


def test_caller_model_keeps_mode_and_dtype(tmp_path):
    layer = rnnkit.LSTM(3, 4).double().train()
    export(layer, tmp_path / "m.pt", format="torchscript", graphs="step")
    assert layer.training and next(layer.parameters()).dtype == torch.float64


def _run_dir(tmp_path):
    torch.manual_seed(0)
    model = create_model("many_to_many", {"input": {"features": 1}, "outputs": 1, "encoder": {"cell": "lstm", "hidden_size": 4}})
    run = tmp_path / "run"
    run.mkdir()
    write_json(run / "config.json", {"model": model_spec(model)})
    save_tensors(run / "model.safetensors", model.state_dict())
    return run, model.eval()


def test_cli_export(tmp_path, capsys):
    run, model = _run_dir(tmp_path)
    assert main(["export", str(run), "--format", "onnx", "--out", str(tmp_path / "d.onnx"), "--steps", "4"]) == 0
    assert "step: " in capsys.readouterr().out
    step = ort.InferenceSession(str(tmp_path / "d.step.onnx"))
    x = np.array([[0.5], [-1.0]], dtype=np.float32)
    h = np.zeros((1, 2, 4), dtype=np.float32)
    y, h1, c1 = step.run(None, {"input": x, "h": h, "c": h})
    with torch.no_grad():
        ref, _ = model.step(torch.from_numpy(x))
    _close(y, ref)
    assert main(["export", str(run), "--format", "onnx", "--out", str(tmp_path / "nowhere" / "d.onnx")]) == 2
    assert main(["export", str(tmp_path / "missing"), "--out", str(tmp_path / "d.onnx")]) == 2
    err = capsys.readouterr().err
    assert "does not exist" in err and "Traceback" not in err
