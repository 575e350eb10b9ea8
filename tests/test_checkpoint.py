"""Checkpoints: exact round trips, atomic saves, corruption caught, the previous one still usable.

A crash is simulated three ways: a write that raises mid-save (the temporary directory is
cleaned up), a process killed mid-save (a ``.tmp-*`` directory is left behind, and skipped), and
damage to a finished checkpoint (truncation, a flipped byte, a lost file or manifest), which the
manifest's sizes and sha256 sums catch.
"""

from __future__ import annotations

import doctest
import json
import math
import os
import pickle
import random
import re
import subprocess
import sys
import warnings
from pathlib import Path

import numpy as np
import pytest
import torch

import rnnkit
from rnnkit import _io
from rnnkit.training import checkpoint as ckpt
from rnnkit.training.checkpoint import (
    Checkpoint,
    CheckpointError,
    CheckpointManager,
    CheckpointWarning,
    capture_rng_state,
    load_checkpoint,
    restore_rng_state,
    save_checkpoint,
    verify_checkpoint,
)

SRC = Path(rnnkit.__file__).resolve().parents[1]


def pattern(*parts: object) -> str:
    """A regex matching the literal ``parts`` in order, anything between them."""
    return ".*".join(re.escape(str(p)) for p in parts)


class Model(torch.nn.Module):
    """A small sequence model from the library: an LSTM and a linear read-out."""

    def __init__(self):
        super().__init__()
        self.rnn = rnnkit.LSTM(3, 4, batch_first=True)
        self.head = torch.nn.Linear(4, 2)

    def forward(self, x, state=None):
        y, state = self.rnn(x, state)
        return self.head(y), state


def train(model, optimizer, scheduler, steps, state=None):
    """TBPTT-style steps whose data comes from the global RNGs (so RNG restore matters)."""
    losses = []
    for _ in range(steps):
        x = torch.randn(2, 5, 3) + float(np.random.rand()) + random.random()
        y, state = model(x, state)
        state = tuple(s.detach() for s in state)  # carried across chunks
        loss = y.pow(2).mean()
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
        scheduler.step()
        losses.append(loss.item())
    return losses, state


def make_training(seed=0):
    torch.manual_seed(seed)
    model = Model()
    optimizer = torch.optim.Adam(model.parameters(), lr=1e-2)
    scheduler = torch.optim.lr_scheduler.StepLR(optimizer, step_size=2, gamma=0.5)
    return model, optimizer, scheduler


def small_state(value=0.0):
    return {"model_state": {"w": torch.full((4, 3), value), "b": torch.arange(3.0)}}


def save_steps(manager, steps, metrics=None):
    for i, step in enumerate(steps):
        manager.save(step, metric=None if metrics is None else metrics[i], **small_state(step))


def names(directory: Path) -> list[str]:
    return sorted(p.name for p in directory.iterdir()) if directory.exists() else []


# --- RNG -----------------------------------------------------------------------------------
def draw():
    return (
        [random.random() for _ in range(3)] + [random.gauss(0, 1)],
        np.random.rand(3).tolist() + [np.random.randn()],
        torch.rand(3).tolist() + torch.randint(0, 1000, (2,)).tolist(),
    )


def test_rng_restore_repeats_the_same_numbers():
    random.gauss(0, 1)  # leave a cached Gaussian in both Python's and NumPy's state
    np.random.randn()
    state = capture_rng_state()
    first = draw()
    restore_rng_state(state)
    assert draw() == first


def test_rng_state_survives_a_checkpoint(tmp_path):
    state = capture_rng_state()
    first = draw()
    save_checkpoint(tmp_path / "c", step=0, model_state={}, rng_state=state)
    draw()
    restore_rng_state(load_checkpoint(tmp_path / "c").rng_state)
    assert draw() == first


def test_restore_rng_state_rejects_foreign_state():
    with pytest.raises(TypeError, match=pattern("rng_state must be a dict", "list")):
        restore_rng_state([1, 2])
    with pytest.raises(ValueError, match=pattern("rng_state must have the keys", "got keys", "torch")):
        restore_rng_state({"torch": torch.get_rng_state()})
    bad = capture_rng_state()
    bad["numpy"]["key"] = torch.zeros(3, dtype=torch.int64)
    with pytest.raises(ValueError, match="rng_state is not a state from capture_rng_state"):
        restore_rng_state(bad)


@pytest.mark.skipif(torch.cuda.is_available(), reason="needs a machine without CUDA")
def test_restoring_cuda_rng_state_without_cuda_warns():
    state = capture_rng_state()
    assert state["cuda"] == []
    state["cuda"] = [torch.zeros(16, dtype=torch.uint8)]
    with pytest.warns(CheckpointWarning, match=pattern("1 CUDA devices", "has 0", "not restored")):
        restore_rng_state(state)


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs CUDA")
def test_cuda_rng_restore_repeats_the_same_numbers():
    state = capture_rng_state()
    assert len(state["cuda"]) == torch.cuda.device_count()
    first = torch.rand(4, device="cuda").tolist()
    restore_rng_state(state)
    assert torch.rand(4, device="cuda").tolist() == first


# --- one checkpoint ------------------------------------------------------------------------
def test_round_trip_resumes_training_exactly(tmp_path):
    model, optimizer, scheduler = make_training()
    _, hidden = train(model, optimizer, scheduler, steps=3)
    scaler = torch.amp.GradScaler("cpu", init_scale=256.0)
    trainer_state = {"epoch": 2, "batch": 17, "metrics": {"loss": 0.25, "best": math.inf, "nan": math.nan}}
    path = save_checkpoint(
        tmp_path / "step-00000003",
        step=3,
        model_state=model.state_dict(),
        optimizer_state=optimizer.state_dict(),
        scheduler_state=scheduler.state_dict(),
        scaler_state=scaler.state_dict(),
        trainer_state=trainer_state,
        extra_tensors={"hidden": hidden},
        rng_state=capture_rng_state(),
    )
    assert path == tmp_path / "step-00000003"
    expected_losses, expected_hidden = train(model, optimizer, scheduler, steps=4, state=hidden)

    checkpoint = load_checkpoint(path)
    assert isinstance(checkpoint, Checkpoint) and checkpoint.step == 3 and checkpoint.path == path
    assert checkpoint.trainer_state["epoch"] == 2 and checkpoint.trainer_state["metrics"]["best"] == math.inf
    assert math.isnan(checkpoint.trainer_state["metrics"]["nan"])
    assert checkpoint.scaler_state == scaler.state_dict()
    assert isinstance(checkpoint.extra_tensors["hidden"], tuple)  # (h, c) stays a tuple

    resumed, resumed_optimizer, resumed_scheduler = make_training(seed=99)  # different init
    resumed.load_state_dict(checkpoint.model_state)
    resumed_optimizer.load_state_dict(checkpoint.optimizer_state)
    resumed_scheduler.load_state_dict(checkpoint.scheduler_state)
    restore_rng_state(checkpoint.rng_state)
    losses, final_hidden = train(
        resumed, resumed_optimizer, resumed_scheduler, steps=4, state=checkpoint.extra_tensors["hidden"]
    )
    assert losses == expected_losses
    for a, b in zip(final_hidden, expected_hidden):
        torch.testing.assert_close(a, b, rtol=0, atol=0)
    for (name, p), q in zip(model.named_parameters(), resumed.parameters()):
        torch.testing.assert_close(q, p, rtol=0, atol=0, msg=name)


def test_layout_and_manifest(tmp_path):
    path = save_checkpoint(tmp_path / "run" / "c", step=5, **small_state())
    assert names(path) == ["manifest.json", "model.safetensors", "state.json", "state.safetensors"]
    assert names(path.parent) == ["c"]  # no temporary directory left behind
    manifest = json.loads((path / "manifest.json").read_text())
    assert manifest["format"] == "rnnkit-checkpoint" and manifest["format_version"] == 1
    assert manifest["step"] == 5
    for name, entry in manifest["files"].items():
        assert entry["size"] == (path / name).stat().st_size
        assert len(entry["sha256"]) == 64
    assert verify_checkpoint(path) == manifest
    assert json.loads((path / "state.json").read_text())["step"] == 5


def test_loading_never_unpickles(tmp_path, monkeypatch):
    model, optimizer, scheduler = make_training()
    train(model, optimizer, scheduler, steps=2)
    path = save_checkpoint(tmp_path / "c", step=2, model_state=model.state_dict(),
                           optimizer_state=optimizer.state_dict(), rng_state=capture_rng_state())

    def forbidden(*args, **kwargs):
        raise AssertionError("a checkpoint must never be unpickled")

    monkeypatch.setattr(pickle, "load", forbidden)
    monkeypatch.setattr(pickle, "loads", forbidden)
    monkeypatch.setattr(pickle, "Unpickler", forbidden)
    monkeypatch.setattr(torch, "load", forbidden)
    checkpoint = load_checkpoint(path)
    assert checkpoint.optimizer_state["param_groups"][0]["betas"] == (0.9, 0.999)
    for name in names(path):
        assert not (path / name).read_bytes().startswith(b"\x80")  # no pickle protocol header


def test_tied_weights_are_saved(tmp_path):
    embedding = torch.nn.Embedding(5, 4)
    head = torch.nn.Linear(4, 5, bias=False)
    head.weight = embedding.weight  # tied
    model = torch.nn.ModuleDict({"embedding": embedding, "head": head})
    path = save_checkpoint(tmp_path / "c", step=0, model_state=model.state_dict())
    state = load_checkpoint(path).model_state
    torch.testing.assert_close(state["head.weight"], embedding.weight.detach())
    torch.testing.assert_close(state["embedding.weight"], embedding.weight.detach())


def test_saving_over_an_existing_checkpoint_replaces_it(tmp_path):
    save_checkpoint(tmp_path / "c", step=1, **small_state(1.0))
    (tmp_path / "c" / "stray").write_text("from before")
    save_checkpoint(tmp_path / "c", step=1, **small_state(2.0))
    assert names(tmp_path) == ["c"]
    assert "stray" not in names(tmp_path / "c")
    assert load_checkpoint(tmp_path / "c").model_state["w"].eq(2.0).all()


def test_save_rejects_bad_state_before_writing(tmp_path):
    with pytest.raises(ValueError, match=pattern("step must be a non-negative integer", "got -1")):
        save_checkpoint(tmp_path / "c", step=-1, **small_state())
    with pytest.raises(TypeError, match=pattern("model_state must be a dict", "Linear")):
        save_checkpoint(tmp_path / "c", step=0, model_state=torch.nn.Linear(2, 2))
    with pytest.raises(TypeError, match=pattern("model_state['w']", "torch.Tensor", "list")):
        save_checkpoint(tmp_path / "c", step=0, model_state={"w": [1.0]})
    with pytest.raises(TypeError, match=pattern("trainer_state must be a dict", "list")):
        save_checkpoint(tmp_path / "c", step=0, trainer_state=[1], **small_state())
    with pytest.raises(TypeError, match=pattern("flatten_state supports", "function", "['optimizer']['fn']")):
        save_checkpoint(tmp_path / "c", step=0, optimizer_state={"fn": lambda: 0}, **small_state())
    assert names(tmp_path) == []


def test_load_of_a_missing_checkpoint(tmp_path):
    with pytest.raises(CheckpointError, match=pattern(tmp_path / "nope", "does not exist")):
        load_checkpoint(tmp_path / "nope")


# --- crashes mid-save ----------------------------------------------------------------------
def test_a_write_that_raises_leaves_no_checkpoint(tmp_path, monkeypatch):
    manager = CheckpointManager(tmp_path)
    save_steps(manager, [1])
    real_write_json = ckpt.write_json

    def crash_on_manifest(path, obj, **kwargs):
        if Path(path).name == "manifest.json":
            raise OSError("simulated crash while writing the manifest")
        return real_write_json(path, obj, **kwargs)

    monkeypatch.setattr(ckpt, "write_json", crash_on_manifest)
    with pytest.raises(OSError, match="simulated crash"):
        manager.save(2, **small_state(2.0))
    monkeypatch.undo()
    assert names(manager.directory) == ["step-00000001"]  # no step-2, no .tmp-* left
    assert manager.latest() == manager.path_for(1)


def test_a_tensor_write_that_dies_halfway_leaves_no_checkpoint(tmp_path, monkeypatch):
    manager = CheckpointManager(tmp_path)
    save_steps(manager, [1])

    def half_written(tensors, path, **kwargs):  # safetensors dies after writing half the file
        Path(path).write_bytes(b"\x00" * 10)
        raise OSError("simulated crash inside safetensors")

    monkeypatch.setattr(_io, "_safetensors_save_file", half_written)
    with pytest.raises(OSError, match="simulated crash inside safetensors"):
        manager.save(2, **small_state(2.0))
    monkeypatch.undo()
    assert names(manager.directory) == ["step-00000001"]
    assert manager.load_latest().step == 1


CRASH_SCRIPT = """
import os, sys, torch
from rnnkit.training.checkpoint import CheckpointManager
manager = CheckpointManager(sys.argv[1])
state = {"w": torch.ones(3)}
manager.save(1, model_state=state)
calls = 0
real_fsync = os.fsync
def fsync(fd):  # the machine "loses power" at the third fsync of the second save
    global calls
    calls += 1
    if calls == 3:
        os._exit(17)
    real_fsync(fd)
os.fsync = fsync
manager.save(2, model_state=state)
"""


def test_a_process_killed_mid_save_leaves_the_previous_checkpoint_usable(tmp_path):
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(filter(None, [str(SRC), os.environ.get("PYTHONPATH")]))}
    result = subprocess.run([sys.executable, "-c", CRASH_SCRIPT, str(tmp_path)], env=env,
                            capture_output=True, text=True, timeout=120)
    assert result.returncode == 17, result.stderr
    directory = tmp_path / "checkpoints"
    leftovers = [n for n in names(directory) if n.startswith(".tmp-step-00000002")]
    assert len(leftovers) == 1 and "step-00000002" not in names(directory)
    manager = CheckpointManager(tmp_path)
    with pytest.warns(CheckpointWarning, match=pattern(leftovers[0], "interrupted save")):
        assert manager.latest() == directory / "step-00000001"
    with pytest.warns(CheckpointWarning):
        assert manager.load_latest().model_state["w"].eq(1).all()


# --- damage to a finished checkpoint -------------------------------------------------------
def truncate(path: Path) -> None:
    path.write_bytes(path.read_bytes()[:-7])


def flip_a_byte(path: Path) -> None:
    data = bytearray(path.read_bytes())
    data[len(data) // 2] ^= 0x01
    path.write_bytes(bytes(data))


DAMAGE = {
    "truncated": (truncate, "(truncated?)"),
    "flipped byte": (flip_a_byte, "has sha256"),
    "deleted": (Path.unlink, "is missing"),
}


@pytest.mark.parametrize("damage", DAMAGE)
@pytest.mark.parametrize("file", ["model.safetensors", "state.safetensors", "state.json"])
def test_damaged_file_is_caught_and_the_previous_checkpoint_used(tmp_path, file, damage):
    manager = CheckpointManager(tmp_path)
    save_steps(manager, [1, 2])
    newest = manager.path_for(2)
    do_damage, message = DAMAGE[damage]
    do_damage(newest / file)

    with pytest.raises(CheckpointError, match=pattern("checkpoint", newest, "is corrupt", file, message)):
        load_checkpoint(newest)
    with pytest.raises(CheckpointError, match=pattern(newest, file)):
        verify_checkpoint(newest)
    with pytest.warns(CheckpointWarning, match=pattern("skipping checkpoint", newest, file)):
        assert manager.latest() == manager.path_for(1)
    with pytest.warns(CheckpointWarning, match=pattern("skipping checkpoint", newest)):
        checkpoint = manager.load_latest()
    assert checkpoint.step == 1 and checkpoint.model_state["w"].eq(1).all()


def test_missing_manifest_means_a_partial_checkpoint(tmp_path):
    manager = CheckpointManager(tmp_path)
    save_steps(manager, [1, 2])
    (manager.path_for(2) / "manifest.json").unlink()
    with pytest.raises(CheckpointError, match=pattern(manager.path_for(2), "partial", "manifest.json is missing")):
        load_checkpoint(manager.path_for(2))
    with pytest.warns(CheckpointWarning, match=pattern(manager.path_for(2), "partial")):
        assert manager.latest() == manager.path_for(1)


@pytest.mark.parametrize(
    ("edit", "message"),
    [
        (lambda m: m.update(format="something-else"), "expected format 'rnnkit-checkpoint'"),
        (lambda m: m.update(format_version=99), "format_version 99 is newer"),
        (lambda m: m["files"].pop("state.json"), "no size and sha256 for state.json"),
        (lambda m: m.update(step="3"), "step must be an integer"),
    ],
)
def test_invalid_manifest(tmp_path, edit, message):
    path = save_checkpoint(tmp_path / "c", step=3, **small_state())
    manifest = json.loads((path / "manifest.json").read_text())
    edit(manifest)
    (path / "manifest.json").write_text(json.dumps(manifest))
    with pytest.raises(CheckpointError, match=pattern(path, "invalid manifest.json", message)):
        load_checkpoint(path)


def test_corrupt_manifest_json(tmp_path):
    path = save_checkpoint(tmp_path / "c", step=3, **small_state())
    truncate(path / "manifest.json")
    with pytest.raises(CheckpointError, match=pattern(path, "corrupt", "manifest.json", "not valid JSON")):
        load_checkpoint(path)


def test_resaving_a_corrupt_step_replaces_it(tmp_path):
    manager = CheckpointManager(tmp_path)
    save_steps(manager, [1, 2])
    flip_a_byte(manager.path_for(2) / "model.safetensors")
    with pytest.warns(CheckpointWarning):
        assert manager.load_latest().step == 1  # resume from step 1 ...
    manager.save(2, **small_state(22.0))  # ... and reach step 2 again
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        assert manager.load_latest().model_state["w"].eq(22.0).all()


# --- the manager ---------------------------------------------------------------------------
def test_no_checkpoints_gives_none(tmp_path):
    for run_dir in (tmp_path / "never-created", tmp_path):
        manager = CheckpointManager(run_dir)
        assert manager.latest() is None and manager.load_latest() is None
        assert manager.best() is None and manager.best_metric() is None
        assert manager.checkpoints() == []
    (tmp_path / "checkpoints").mkdir()
    assert CheckpointManager(tmp_path).latest() is None


def test_save_writes_step_directories_and_latest_is_newest(tmp_path):
    manager = CheckpointManager(tmp_path, keep_last=5)
    save_steps(manager, [3, 10, 7])
    assert names(manager.directory) == ["step-00000003", "step-00000007", "step-00000010"]
    assert manager.latest() == tmp_path / "checkpoints" / "step-00000010"
    assert manager.load_latest().step == 10


@pytest.mark.parametrize(
    ("mode", "metrics", "best_step"),
    [
        ("min", [0.9, 0.2, 0.5, 0.4, 0.3, 0.6], 2),
        ("max", [0.1, 0.9, 0.5, 0.4, 0.3, 0.6], 2),
        ("min", [0.5, 0.4, 0.3, 0.2, 0.1, 0.0], 6),
        ("max", [0.5, 0.5, 0.4, 0.1, 0.1, 0.1], 1),  # ties keep the earlier
    ],
)
def test_pruning_keeps_the_last_k_and_the_best(tmp_path, mode, metrics, best_step):
    manager = CheckpointManager(tmp_path, keep_last=2, mode=mode)
    save_steps(manager, [1, 2, 3, 4, 5, 6], metrics)
    kept = {f"step-{s:08d}" for s in (5, 6, best_step)}
    assert names(manager.directory) == sorted(kept | {"best.json"})
    assert manager.best() == manager.path_for(best_step)
    assert manager.best_metric() == metrics[best_step - 1]
    record = json.loads((manager.directory / "best.json").read_text())
    assert record == {"step": best_step, "metric": metrics[best_step - 1], "mode": mode,
                      "checkpoint": f"step-{best_step:08d}"}


def test_keep_last_one_without_metrics(tmp_path):
    manager = CheckpointManager(tmp_path, keep_last=1)
    save_steps(manager, [1, 2, 3])
    assert names(manager.directory) == ["step-00000003"]
    assert manager.best() is None


def test_best_is_tracked_across_managers(tmp_path):
    save_steps(CheckpointManager(tmp_path, keep_last=1), [1, 2], [0.5, 0.7])
    manager = CheckpointManager(tmp_path, keep_last=1)  # a resumed run
    save_steps(manager, [3], [0.6])
    assert manager.best() == manager.path_for(1)
    save_steps(manager, [4], [0.4])
    assert manager.best() == manager.path_for(4)
    assert names(manager.directory) == ["best.json", "step-00000004"]


def test_mode_must_match_the_runs_record(tmp_path):
    save_steps(CheckpointManager(tmp_path, mode="min"), [1], [0.5])
    with pytest.raises(ValueError, match=pattern("mode must match", "best.json", "'min'", "got mode='max'")):
        CheckpointManager(tmp_path, mode="max")


@pytest.mark.parametrize("bad", [math.nan, math.inf])
def test_non_finite_metric_is_never_best(tmp_path, bad):
    manager = CheckpointManager(tmp_path, keep_last=1)
    save_steps(manager, [1], [0.5])
    with pytest.warns(CheckpointWarning, match=pattern("metric of step 2", "cannot be the best")):
        save_steps(manager, [2], [bad])
    assert manager.best() == manager.path_for(1)


def test_resaving_the_best_step_replaces_its_record(tmp_path):
    manager = CheckpointManager(tmp_path, keep_last=3)
    save_steps(manager, [1, 2], [0.5, 0.1])
    manager.save(2, **small_state())  # no metric: the record stands
    assert manager.best() == manager.path_for(2) and manager.best_metric() == 0.1
    manager.save(2, metric=0.9, **small_state())  # a new metric for step 2 replaces it
    assert manager.best() == manager.path_for(2) and manager.best_metric() == 0.9
    with pytest.warns(CheckpointWarning, match="cannot be the best"):
        manager.save(2, metric=math.nan, **small_state())
    assert manager.best() is None


def test_corrupt_best_checkpoint_warns(tmp_path):
    manager = CheckpointManager(tmp_path, keep_last=1)
    save_steps(manager, [1, 2], [0.1, 0.5])
    truncate(manager.path_for(1) / "model.safetensors")
    with pytest.warns(CheckpointWarning, match=pattern("best checkpoint is unusable", manager.path_for(1))):
        assert manager.best() is None


def test_best_json_is_written_atomically(tmp_path, monkeypatch):
    manager = CheckpointManager(tmp_path)
    save_steps(manager, [1], [0.5])
    monkeypatch.setattr(_io.os, "replace", lambda *a: (_ for _ in ()).throw(OSError("crash")))
    with pytest.raises(OSError):
        manager._update_best(2, 0.1)
    monkeypatch.undo()
    assert json.loads((manager.directory / "best.json").read_text())["step"] == 1
    assert names(manager.directory) == ["best.json", "step-00000001"]


@pytest.mark.parametrize(
    ("kwargs", "error", "message"),
    [
        ({"keep_last": 0}, ValueError, ("keep_last must be a positive integer", "got 0")),
        ({"keep_last": -2}, ValueError, ("keep_last must be a positive integer", "got -2")),
        ({"keep_last": 2.5}, TypeError, ("keep_last must be an integer", "got float 2.5")),
        ({"keep_last": True}, TypeError, ("keep_last must be an integer", "got bool True")),
        ({"mode": "avg"}, ValueError, ("mode must be one of 'min', 'max'", "got 'avg'")),
        ({"mode": None}, ValueError, ("mode must be one of 'min', 'max'", "got None")),
    ],
)
def test_manager_rejects_bad_arguments(tmp_path, kwargs, error, message):
    with pytest.raises(error, match=pattern(*message)):
        CheckpointManager(tmp_path, **kwargs)


def test_manager_save_rejects_bad_arguments(tmp_path):
    manager = CheckpointManager(tmp_path)
    with pytest.raises(ValueError, match=pattern("step must be a non-negative integer", "got -1")):
        manager.save(-1, **small_state())
    with pytest.raises(TypeError, match=pattern("step must be an integer", "got str '3'")):
        manager.save("3", **small_state())
    with pytest.raises(TypeError, match=pattern("metric must be a real number or None", "got str 'low'")):
        manager.save(1, metric="low", **small_state())
    with pytest.raises(TypeError, match="model_state"):
        manager.save(1)
    assert manager.checkpoints() == []


def test_docstring_examples():
    result = doctest.testmod(ckpt, optionflags=doctest.ELLIPSIS | doctest.NORMALIZE_WHITESPACE)
    assert result.attempted > 0 and result.failed == 0


def test_leftovers_of_killed_saves_are_one_warning_and_removed_by_their_owner(tmp_path):
    """Three ``.tmp-*`` leftovers (dead writers) give one warning, not three; ``remove_leftovers``
    deletes them, and a live writer's directory is left alone."""
    manager = CheckpointManager(tmp_path)
    manager.save(1, model_state={"w": torch.ones(2)})
    dead = 2**22 + 12345  # above Linux's default pid_max: no such process
    for what in ("step-00000002", "old-step-00000001", "delete-step-00000000"):
        (manager.directory / f".tmp-{what}-{dead}-0123abcd").mkdir()
    live = manager.directory / f".tmp-step-00000003-{os.getppid()}-89abcdef"
    live.mkdir()
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        assert manager.latest() == manager.directory / "step-00000001"
    assert len([w for w in caught if issubclass(w.category, CheckpointWarning)]) == 1
    assert "4 partial checkpoint(s)" in str(caught[0].message)
    removed = manager.remove_leftovers()
    assert len(removed) == 3 and live not in removed
    assert names(manager.directory) == sorted(["step-00000001", live.name])
