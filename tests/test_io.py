"""Atomic files, safetensors without surprises, and nested state through tensors + JSON exactly.

``flatten_state`` is what lets optimizer, scheduler and scaler state dicts reach the disk without
pickle, so its round trip is tested on the real thing: the state of torch optimizers and
schedulers after some steps, loaded into fresh objects that must then continue identically.
"""

from __future__ import annotations

import doctest
import json
import math
import os
import re
import tempfile
from pathlib import Path

import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st
from safetensors import safe_open

from rnnkit import _io
from rnnkit._io import (
    MissingFileError,
    StateFileError,
    atomic_write,
    atomic_write_bytes,
    atomic_write_text,
    flatten_state,
    load_tensors,
    read_json,
    save_tensors,
    unflatten_state,
    write_json,
)


def pattern(*parts: str) -> str:
    """A regex matching the literal ``parts`` in order, anything between them."""
    return ".*".join(re.escape(str(p)) for p in parts)


def assert_identical(actual, expected, where="state"):
    """Equal values of exactly the same types all the way down; tensors equal bit for bit in
    dtype, shape and value (nan matching nan), floats too (-0.0 is not 0.0)."""
    assert type(actual) is type(expected), f"{where}: {type(actual).__name__} != {type(expected).__name__}"
    if isinstance(expected, torch.Tensor):
        assert actual.dtype == expected.dtype and actual.shape == expected.shape, where
        torch.testing.assert_close(actual, expected, rtol=0, atol=0, equal_nan=True, msg=where)
    elif isinstance(expected, float):
        assert (math.isnan(actual) and math.isnan(expected)) or (
            actual == expected and math.copysign(1, actual) == math.copysign(1, expected)
        ), f"{where}: {actual!r} != {expected!r}"
    elif isinstance(expected, dict):
        assert list(actual) == list(expected), f"{where}: keys {list(actual)} != {list(expected)}"
        for (ka, va), ke in zip(actual.items(), expected):
            assert type(ka) is type(ke), f"{where}: key {ka!r} is {type(ka).__name__}, expected {type(ke).__name__}"
            assert_identical(va, expected[ke], f"{where}[{ke!r}]")
    elif isinstance(expected, (list, tuple)):
        assert len(actual) == len(expected), where
        for i, (a, e) in enumerate(zip(actual, expected)):
            assert_identical(a, e, f"{where}[{i}]")
    else:
        assert actual == expected, f"{where}: {actual!r} != {expected!r}"


def through_files(obj, directory: Path):
    """``obj`` -> safetensors + JSON files -> ``obj``, as a checkpoint stores state."""
    tensors, skeleton = flatten_state(obj)
    save_tensors(directory / "state.safetensors", tensors)
    write_json(directory / "state.json", skeleton)
    return unflatten_state(load_tensors(directory / "state.safetensors"), read_json(directory / "state.json"))


def only_file(directory: Path) -> list[str]:
    return sorted(p.name for p in directory.iterdir())


# --- atomic writes -------------------------------------------------------------------------
def test_atomic_write_creates_and_replaces(tmp_path):
    path = tmp_path / "a.txt"
    atomic_write_text(path, "first")
    assert path.read_text() == "first"
    atomic_write_bytes(path, b"second")
    assert path.read_bytes() == b"second"
    assert only_file(tmp_path) == ["a.txt"]  # no temporary file left behind


def test_atomic_write_failure_keeps_the_old_file(tmp_path):
    path = tmp_path / "a.txt"
    atomic_write_text(path, "old")

    def write_half_then_crash(tmp: Path) -> None:
        tmp.write_bytes(b"ne")
        raise OSError("disk full")

    with pytest.raises(OSError, match="disk full"):
        atomic_write(path, write_half_then_crash)
    assert path.read_text() == "old"
    assert only_file(tmp_path) == ["a.txt"]


def test_atomic_write_failing_rename_keeps_the_old_file(tmp_path, monkeypatch):
    path = tmp_path / "a.json"
    write_json(path, {"v": 1})

    def crash(*args, **kwargs):
        raise OSError("crash before the rename")

    monkeypatch.setattr(_io.os, "replace", crash)
    with pytest.raises(OSError, match="crash before the rename"):
        write_json(path, {"v": 2})
    monkeypatch.undo()
    assert read_json(path) == {"v": 1}
    assert only_file(tmp_path) == ["a.json"]


def test_atomic_write_fsyncs_the_file_before_renaming(tmp_path, monkeypatch):
    events = []
    real_fsync, real_replace = os.fsync, os.replace
    monkeypatch.setattr(_io.os, "fsync", lambda fd: (events.append("fsync"), real_fsync(fd))[1])
    monkeypatch.setattr(_io.os, "replace", lambda a, b: (events.append("replace"), real_replace(a, b))[1])
    atomic_write_text(tmp_path / "a.txt", "data")
    assert events[:2] == ["fsync", "replace"]


# --- JSON ----------------------------------------------------------------------------------
def test_json_round_trip_and_layout(tmp_path):
    obj = {"b": [1, 2.5, None, True], "a": {"x": "y"}}
    write_json(tmp_path / "x.json", obj)
    assert read_json(tmp_path / "x.json") == obj
    text = (tmp_path / "x.json").read_text()
    assert text.startswith('{\n  "b"') and text.endswith("\n")  # indent 2, key order kept
    write_json(tmp_path / "s.json", obj, sort_keys=True)
    assert (tmp_path / "s.json").read_text().startswith('{\n  "a"')


def test_write_json_rejects_nan_and_unserialisable_naming_the_file(tmp_path):
    with pytest.raises(ValueError, match=pattern("x.json", "JSON")):
        write_json(tmp_path / "x.json", {"loss": float("nan")})
    with pytest.raises(TypeError, match=pattern("x.json", "set")):
        write_json(tmp_path / "x.json", {"s": {1, 2}})
    assert only_file(tmp_path) == []


def test_read_json_missing_file(tmp_path):
    path = tmp_path / "nope.json"
    with pytest.raises(MissingFileError, match=pattern(path, "does not exist")) as info:
        read_json(path)
    assert isinstance(info.value, ValueError) and isinstance(info.value, FileNotFoundError)


@pytest.mark.parametrize("content", [b'{"a": [1, 2', b"", b"\xff\xfe", b"{'a': 1}"])
def test_read_json_invalid_file(tmp_path, content):
    path = tmp_path / "bad.json"
    path.write_bytes(content)
    with pytest.raises(StateFileError, match=pattern(path, "not valid JSON")):
        read_json(path)


# --- safetensors ---------------------------------------------------------------------------
DTYPES = [torch.float32, torch.float64, torch.float16, torch.bfloat16, torch.int8, torch.int16,
          torch.int32, torch.int64, torch.uint8, torch.bool]


def test_tensors_round_trip_every_dtype_and_shape(tmp_path):
    tensors = {}
    for dtype in DTYPES:
        name = str(dtype).split(".")[-1]
        tensors[f"{name}/matrix"] = (torch.randn(3, 4) * 10).to(dtype)
        tensors[f"{name}/scalar"] = torch.tensor(7).to(dtype)
        tensors[f"{name}/empty"] = torch.zeros(0, 3, dtype=dtype)
    tensors["float/special"] = torch.tensor([float("nan"), float("inf"), -float("inf"), -0.0])
    save_tensors(tmp_path / "t.safetensors", tensors, metadata={"step": "12"})
    loaded = load_tensors(tmp_path / "t.safetensors")
    assert sorted(loaded) == sorted(tensors)
    for name, tensor in tensors.items():
        assert_identical(loaded[name], tensor, name)
    with safe_open(tmp_path / "t.safetensors", framework="pt") as f:
        assert f.metadata() == {"step": "12"}


def test_save_tensors_copies_views_and_shared_storage(tmp_path):
    weight = torch.nn.Parameter(torch.randn(4, 3))
    tensors = {
        "weight": weight,             # requires grad
        "tied": weight,               # the same tensor twice, as tied embeddings are
        "transposed": weight.T,       # non-contiguous view
        "row": weight[1],             # contiguous view into the middle of the storage
        "strided": torch.arange(10.0)[::2],
    }
    save_tensors(tmp_path / "t.safetensors", tensors)
    loaded = load_tensors(tmp_path / "t.safetensors")
    for name, tensor in tensors.items():
        assert_identical(loaded[name], tensor.detach(), name)
    loaded["weight"].add_(1)  # loaded tensors are writable and independent of each other
    assert torch.equal(loaded["tied"], weight.detach())
    assert torch.equal(weight, tensors["tied"])  # saving did not touch the originals


def test_save_tensors_bad_input_names_the_problem(tmp_path):
    with pytest.raises(TypeError, match=pattern("tensors", "must be a mapping", "list")):
        save_tensors(tmp_path / "t.safetensors", [torch.zeros(1)])
    with pytest.raises(TypeError, match=pattern("tensors['a']", "torch.Tensor", "float")):
        save_tensors(tmp_path / "t.safetensors", {"a": 1.0})
    with pytest.raises(TypeError, match=pattern("names must be str", "int")):
        save_tensors(tmp_path / "t.safetensors", {0: torch.zeros(1)})
    with pytest.raises(TypeError, match=pattern("metadata", "str to str")):
        save_tensors(tmp_path / "t.safetensors", {"a": torch.zeros(1)}, metadata={"step": 1})
    with pytest.raises(TypeError, match=pattern("t.safetensors", "complex128")):
        save_tensors(tmp_path / "t.safetensors", {"a": torch.zeros(2, dtype=torch.complex128)})
    assert only_file(tmp_path) == []


def test_load_tensors_missing_file(tmp_path):
    with pytest.raises(MissingFileError, match=pattern(tmp_path / "x.safetensors", "does not exist")):
        load_tensors(tmp_path / "x.safetensors")


@pytest.mark.parametrize("damage", ["truncate", "truncate_header", "garbage", "empty"])
def test_load_tensors_corrupt_file_names_it(tmp_path, damage):
    path = tmp_path / "t.safetensors"
    save_tensors(path, {"a": torch.randn(100), "b": torch.randn(3, 3)})
    data = path.read_bytes()
    damaged = {
        "truncate": data[:-10],
        "truncate_header": data[:20],
        "garbage": b"\x10\x00\x00\x00\x00\x00\x00\x00" + b"not json at all!" + data[24:],
        "empty": b"",
    }[damage]
    path.write_bytes(damaged)
    with pytest.raises(StateFileError, match=pattern(path, "not a valid safetensors file")):
        load_tensors(path)


# --- flatten_state on real optimizer, scheduler and scaler state ---------------------------
def _train(model, optimizer, steps, seed, scheduler=None):
    generator = torch.Generator().manual_seed(seed)
    for _ in range(steps):
        x = torch.randn(8, 3, generator=generator)
        loss = model(x).pow(2).mean()
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
        if scheduler is not None:
            scheduler.step()


OPTIMIZERS = {
    "Adam": lambda p: torch.optim.Adam(p, lr=1e-2, betas=(0.8, 0.99)),
    "Adam-amsgrad": lambda p: torch.optim.Adam(p, lr=1e-2, amsgrad=True),
    "AdamW": lambda p: torch.optim.AdamW(p, lr=1e-2, weight_decay=0.1),
    "SGD-momentum": lambda p: torch.optim.SGD(p, lr=1e-2, momentum=0.9, nesterov=True),
    "RMSprop": lambda p: torch.optim.RMSprop(p, lr=1e-3, centered=True),
}


@pytest.mark.parametrize("name", OPTIMIZERS)
def test_optimizer_state_round_trip_continues_identically(tmp_path, name):
    torch.manual_seed(0)
    model = torch.nn.Sequential(torch.nn.Linear(3, 5), torch.nn.Tanh(), torch.nn.Linear(5, 2))
    optimizer = OPTIMIZERS[name](model.parameters())
    _train(model, optimizer, steps=3, seed=1)

    state = optimizer.state_dict()
    restored_state = through_files(state, tmp_path)
    assert_identical(restored_state, state)  # int keys, tuple betas, 0-d step tensors, all exact

    twin = torch.nn.Sequential(torch.nn.Linear(3, 5), torch.nn.Tanh(), torch.nn.Linear(5, 2))
    twin.load_state_dict(model.state_dict())
    twin_optimizer = OPTIMIZERS[name](twin.parameters())
    twin_optimizer.load_state_dict(restored_state)
    _train(model, optimizer, steps=4, seed=2)
    _train(twin, twin_optimizer, steps=4, seed=2)
    for (n, p), q in zip(model.named_parameters(), twin.parameters()):
        torch.testing.assert_close(q, p, rtol=0, atol=0, msg=n)


def _schedulers(optimizer):
    return {
        "LambdaLR": lambda: torch.optim.lr_scheduler.LambdaLR(optimizer, lambda s: 0.9**s),
        "StepLR": lambda: torch.optim.lr_scheduler.StepLR(optimizer, step_size=2, gamma=0.5),
        "CosineAnnealingLR": lambda: torch.optim.lr_scheduler.CosineAnnealingLR(optimizer, T_max=10),
        "OneCycleLR": lambda: torch.optim.lr_scheduler.OneCycleLR(optimizer, max_lr=0.1, total_steps=20),
        "SequentialLR": lambda: torch.optim.lr_scheduler.SequentialLR(
            optimizer,
            [torch.optim.lr_scheduler.LinearLR(optimizer, start_factor=0.1, total_iters=3),
             torch.optim.lr_scheduler.ExponentialLR(optimizer, gamma=0.9)],
            milestones=[3],
        ),
    }


@pytest.mark.parametrize("name", ["LambdaLR", "StepLR", "CosineAnnealingLR", "OneCycleLR", "SequentialLR"])
def test_scheduler_state_round_trip_continues_identically(tmp_path, name):
    model = torch.nn.Linear(3, 1)
    optimizer = torch.optim.SGD(model.parameters(), lr=0.1, momentum=0.9)
    scheduler = _schedulers(optimizer)[name]()
    _train(model, optimizer, steps=5, seed=0, scheduler=scheduler)

    state = scheduler.state_dict()
    restored = through_files(state, tmp_path)
    assert_identical(restored, state)

    # Resume in the usual order: build optimizer and scheduler (which may set lr), then load both.
    twin_optimizer = torch.optim.SGD(torch.nn.Linear(3, 1).parameters(), lr=0.1, momentum=0.9)
    twin = _schedulers(twin_optimizer)[name]()
    twin_optimizer.load_state_dict(through_files(optimizer.state_dict(), tmp_path))
    twin.load_state_dict(restored)
    for _ in range(6):
        optimizer.step()
        scheduler.step()
        twin_optimizer.step()
        twin.step()
        assert twin.get_last_lr() == scheduler.get_last_lr()


def test_plateau_scheduler_and_grad_scaler_state_keep_inf_and_floats(tmp_path):
    optimizer = torch.optim.SGD(torch.nn.Linear(2, 1).parameters(), lr=0.1)
    plateau = torch.optim.lr_scheduler.ReduceLROnPlateau(optimizer, patience=1)
    state = plateau.state_dict()
    assert state["best"] == math.inf  # nothing observed yet: the state holds inf
    restored = through_files(state, tmp_path)
    assert_identical(restored, state)
    plateau.step(1.0)
    assert_identical(through_files(plateau.state_dict(), tmp_path), plateau.state_dict())

    scaler = torch.amp.GradScaler("cpu", init_scale=1024.0, growth_interval=7)
    assert_identical(through_files(scaler.state_dict(), tmp_path), scaler.state_dict())


def test_skeleton_is_plain_readable_json():
    tensors, skeleton = flatten_state({"state": {0: {"step": torch.tensor(2.0)}}, "lr": 0.1, "best": math.inf})
    text = json.dumps(skeleton, allow_nan=False)  # strict JSON: inf is spelled out, not Infinity
    assert json.loads(text) == skeleton
    assert list(tensors) == ["state.0.step"]


# --- flatten_state: properties and edges ---------------------------------------------------
def _small_tensors():
    dtype = st.sampled_from([torch.float32, torch.float64, torch.int64, torch.int8, torch.bool,
                             torch.uint8, torch.bfloat16])
    shape = st.lists(st.integers(0, 3), max_size=3)
    return st.builds(lambda d, s, seed: (torch.randn(s, generator=torch.Generator().manual_seed(seed)) * 5).to(d),
                     dtype, shape, st.integers(0, 2**16))


_leaves = (
    st.none()
    | st.booleans()
    | st.integers(min_value=-(2**70), max_value=2**70)
    | st.floats(allow_nan=True, allow_infinity=True)
    | st.text(max_size=8)
    | _small_tensors()
)
_keys = st.text(max_size=6) | st.integers(-5, 10**12) | st.booleans() | st.none() | st.floats(allow_nan=False)
_nested = st.recursive(
    _leaves,
    lambda children: (
        st.lists(children, max_size=4)
        | st.lists(children, max_size=4).map(tuple)
        | st.dictionaries(st.text(max_size=6), children, max_size=4)
        | st.dictionaries(_keys, children, max_size=4)
    ),
    max_leaves=20,
)


@settings(max_examples=150, deadline=None)
@given(_nested)
def test_flatten_round_trips_any_nested_state(obj):
    tensors, skeleton = flatten_state(obj)
    assert all(isinstance(t, torch.Tensor) for t in tensors.values())
    skeleton = json.loads(json.dumps(skeleton, allow_nan=False))  # the skeleton is strict JSON
    assert_identical(unflatten_state(tensors, skeleton), obj)


@settings(max_examples=30, deadline=None)
@given(_nested)
def test_flatten_round_trips_through_files(obj):
    with tempfile.TemporaryDirectory() as directory:
        assert_identical(through_files(obj, Path(directory)), obj)


def test_a_tensor_appearing_twice_comes_back_as_one():
    shared = torch.randn(3)
    obj = {"a": shared, "b": [shared, torch.randn(3)]}
    tensors, skeleton = flatten_state(obj)
    assert len(tensors) == 2
    back = unflatten_state(tensors, skeleton)
    assert back["a"] is back["b"][0]


def test_colliding_tensor_names_get_distinct_entries():
    obj = {"a": [torch.zeros(1)], "a.0": torch.ones(1), 0: {"x": torch.full((1,), 2.0)}, "0": {"x": torch.full((1,), 3.0)}}
    tensors, skeleton = flatten_state(obj)
    assert len(tensors) == 4
    assert_identical(unflatten_state(tensors, skeleton), obj)


def test_keys_and_containers_keep_their_types():
    obj = {1: "int", "1": "str", None: "none", 2.5: "float", (1, "a"): "tuple",
           "nested": {0: (1, [2, (3,)], {})}, "empty": ([], (), {})}
    tensors, skeleton = flatten_state(obj)
    assert tensors == {}
    assert_identical(unflatten_state(tensors, json.loads(json.dumps(skeleton))), obj)
    # True and 1 are one key in a dict, so a bool key gets a dict of its own
    flags = {True: "bool", False: "no"}
    tensors, skeleton = flatten_state(flags)
    assert_identical(unflatten_state(tensors, json.loads(json.dumps(skeleton))), flags)


@pytest.mark.parametrize(
    ("obj", "where", "what"),
    [
        ({"a": [1, {2, 3}]}, "state['a'][1]", "set"),
        ({"a": object()}, "state['a']", "object"),
        ({frozenset(): 1}, "state", "frozenset"),
        ([1.5, b"bytes"], "state[1]", "bytes"),
    ],
)
def test_flatten_rejects_unsupported_values_naming_where(obj, where, what):
    with pytest.raises(TypeError, match=pattern("flatten_state supports", what, where)):
        flatten_state(obj)


@pytest.mark.parametrize(
    ("tensors", "skeleton", "message"),
    [
        ({}, {"tensor": "gone"}, "names tensor 'gone', which is missing"),
        ({"x": torch.zeros(1)}, [1, 2], "not referenced by the state skeleton: ['x']"),
        ({}, {"lr": 0.1}, "one-key object"),
        ({}, {"float": "1.5"}, "expected 'nan', 'inf' or '-inf'"),
        ({}, {"items": [[[1], 2]]}, "unhashable key"),
        ({}, {"tuple": 3}, "malformed 'tuple'"),
    ],
)
def test_unflatten_rejects_bad_skeletons(tensors, skeleton, message):
    with pytest.raises(ValueError, match=re.escape(message)):
        unflatten_state(tensors, skeleton)


def test_docstring_examples():
    result = doctest.testmod(_io, optionflags=doctest.ELLIPSIS | doctest.NORMALIZE_WHITESPACE)
    assert result.attempted > 0 and result.failed == 0
