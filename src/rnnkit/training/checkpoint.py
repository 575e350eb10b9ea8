"""Checkpoints that survive a crash mid-save, verify themselves, and never unpickle.

A checkpoint is a directory::

    step-00000123/
        model.safetensors    the model's state_dict
        state.safetensors    every tensor in the optimizer, scheduler, scaler, trainer, RNG and
        state.json           extra state, and the JSON skeleton that puts them back in place
                             (``rnnkit._io.flatten_state``)
        manifest.json        format version, step, and each file's size and sha256; written last

It is built under a hidden temporary name beside its final one (``.tmp-step-00000123-<pid>-..``)
and renamed into place only when complete, so a crash leaves at most a ``.tmp-*`` directory,
never a half-written checkpoint under a real name. Loading checks every file against the
manifest before parsing it: a truncated or flipped byte raises :class:`CheckpointError`
naming the checkpoint and the file, and :class:`CheckpointManager` falls back to the previous
checkpoint with a warning.

>>> import tempfile, torch
>>> run_dir = tempfile.TemporaryDirectory()
>>> model = torch.nn.Linear(2, 1)
>>> manager = CheckpointManager(run_dir.name, keep_last=2, mode="min")
>>> path = manager.save(10, metric=0.5, model_state=model.state_dict(),
...                     trainer_state={"epoch": 1}, rng_state=capture_rng_state())
>>> path.name
'step-00000010'
>>> checkpoint = manager.load_latest()
>>> checkpoint.step, checkpoint.trainer_state
(10, {'epoch': 1})
>>> model.load_state_dict(checkpoint.model_state)
<All keys matched successfully>
>>> restore_rng_state(checkpoint.rng_state)
>>> run_dir.cleanup()
"""

from __future__ import annotations

import hashlib
import math
import numbers
import os
import random
import re
import secrets
import shutil
import warnings
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import Tensor

from .._io import (
    MissingFileError,
    StateFileError,
    decode_json,
    decode_tensors,
    flatten_state,
    fsync_dir,
    read_json,
    save_tensors,
    unflatten_state,
    write_json,
)
from .._validation import check_choice, check_nonnegative_int, check_positive_int

__all__ = [
    "Checkpoint",
    "CheckpointError",
    "CheckpointWarning",
    "CheckpointManager",
    "capture_rng_state",
    "restore_rng_state",
    "save_checkpoint",
    "load_checkpoint",
    "verify_checkpoint",
]

FORMAT = "rnnkit-checkpoint"
FORMAT_VERSION = 1
MANIFEST = "manifest.json"
MODEL_FILE = "model.safetensors"
STATE_TENSORS_FILE = "state.safetensors"
STATE_JSON_FILE = "state.json"
DATA_FILES = (MODEL_FILE, STATE_TENSORS_FILE, STATE_JSON_FILE)
TMP_PREFIX = ".tmp-"
_STEP_DIR = re.compile(r"step-(\d+)")
_CHUNK = 1 << 20


class CheckpointError(ValueError):
    """A checkpoint that is missing, partial, corrupt, or in a format this version cannot read."""


class CheckpointWarning(UserWarning):
    """A checkpoint was skipped (corrupt or partial) and an older one is used instead."""


@dataclass(frozen=True, eq=False)
class Checkpoint:
    """What :func:`load_checkpoint` read back; every tensor is on the CPU.

    ``load_state_dict`` of a model, optimizer, scheduler or scaler moves them where they belong.
    """

    path: Path
    step: int
    model_state: dict[str, Tensor]
    optimizer_state: Any = None
    scheduler_state: Any = None
    scaler_state: Any = None
    trainer_state: dict[str, Any] | None = None
    extra_tensors: dict[str, Any] | None = None
    rng_state: dict[str, Any] | None = None


# --- random number generators --------------------------------------------------------------
def capture_rng_state() -> dict[str, Any]:
    """The state of Python's ``random``, NumPy's global RNG, torch's CPU RNG and the RNG of
    every CUDA device (when CUDA is available), as tensors and JSON values that
    :func:`save_checkpoint` stores without pickling. :func:`restore_rng_state` puts it back."""
    version, internal, gauss_next = random.getstate()
    bit_generator, key, pos, has_gauss, cached_gaussian = np.random.get_state(legacy=True)
    return {
        "python": {
            "version": version,
            # 624 uint32 words of Mersenne Twister state plus the position: all fit in int64
            "internal": torch.tensor(internal, dtype=torch.int64),
            "gauss_next": gauss_next,
        },
        "numpy": {
            "bit_generator": bit_generator,
            "key": torch.from_numpy(key.astype(np.int64)),  # uint32 words, widened losslessly
            "pos": int(pos),
            "has_gauss": int(has_gauss),
            "cached_gaussian": float(cached_gaussian),
        },
        "torch": torch.get_rng_state(),
        "cuda": list(torch.cuda.get_rng_state_all()) if torch.cuda.is_available() else [],
    }


def restore_rng_state(state: Mapping[str, Any]) -> None:
    """Put back the RNG state taken by :func:`capture_rng_state`.

    CUDA states are restored device by device; if this machine has fewer CUDA devices (or
    none), the ones it lacks are skipped with a warning.
    """
    if not isinstance(state, Mapping):
        raise TypeError(f"rng_state must be a dict from capture_rng_state(), got {type(state).__name__}")
    missing = [k for k in ("python", "numpy", "torch") if k not in state]
    if missing:
        raise ValueError(
            f"rng_state must have the keys 'python', 'numpy', 'torch' (and 'cuda') from "
            f"capture_rng_state(), got keys {sorted(state)}"
        )
    try:
        py = state["python"]
        random.setstate((py["version"], tuple(int(v) for v in py["internal"].tolist()), py["gauss_next"]))
        npy = state["numpy"]
        np.random.set_state((
            npy["bit_generator"],
            npy["key"].numpy().astype(np.uint32),
            npy["pos"],
            npy["has_gauss"],
            npy["cached_gaussian"],
        ))
        torch.set_rng_state(state["torch"])
    except (KeyError, IndexError, TypeError, ValueError, AttributeError, OverflowError, RuntimeError) as err:
        raise ValueError(f"rng_state is not a state from capture_rng_state(): {err!r}") from err
    cuda_states = list(state.get("cuda") or [])
    available = torch.cuda.device_count() if torch.cuda.is_available() else 0
    if len(cuda_states) > available:
        warnings.warn(
            f"rng_state holds the RNG state of {len(cuda_states)} CUDA devices but this machine has "
            f"{available}; the RNG of devices {list(range(available, len(cuda_states)))} is not "
            "restored",
            CheckpointWarning,
            stacklevel=2,
        )
    for device, cuda_state in enumerate(cuda_states[:available]):
        torch.cuda.set_rng_state(cuda_state, device)


# --- one checkpoint ------------------------------------------------------------------------
def save_checkpoint(
    directory: str | os.PathLike,
    *,
    step: int,
    model_state: Mapping[str, Tensor],
    optimizer_state: Any = None,
    scheduler_state: Any = None,
    scaler_state: Any = None,
    trainer_state: Mapping[str, Any] | None = None,
    extra_tensors: Mapping[str, Any] | None = None,
    rng_state: Mapping[str, Any] | None = None,
) -> Path:
    """Write a checkpoint directory at ``directory``, atomically; return its path.

    ``model_state`` is a ``state_dict()``; ``optimizer_state``, ``scheduler_state`` and
    ``scaler_state`` are the ``state_dict()`` of those objects; ``trainer_state`` is a dict of
    JSON-like values (epoch, batch index, metrics...); ``extra_tensors`` holds tensors such
    as the hidden state carried across TBPTT chunks (nesting allowed, e.g. an LSTM's
    ``(h, c)``); ``rng_state`` comes from :func:`capture_rng_state`.

    The directory is built under a temporary name and renamed into place when complete. An
    existing checkpoint at ``directory`` is replaced (it is moved aside first, then deleted).
    """
    step = check_nonnegative_int("step", step)
    _check_tensor_dict("model_state", model_state, allow_nested=False)
    if trainer_state is not None and not isinstance(trainer_state, Mapping):
        raise TypeError(f"trainer_state must be a dict or None, got {type(trainer_state).__name__}")
    if extra_tensors is not None:
        _check_tensor_dict("extra_tensors", extra_tensors, allow_nested=True)
    # Flatten before touching the disk, so unsupported state fails before anything is written.
    state_tensors, skeleton = flatten_state({
        "optimizer": optimizer_state,
        "scheduler": scheduler_state,
        "scaler": scaler_state,
        "trainer": None if trainer_state is None else dict(trainer_state),
        "extra": None if extra_tensors is None else dict(extra_tensors),
        "rng": None if rng_state is None else dict(rng_state),
    })

    final = Path(directory)
    final.parent.mkdir(parents=True, exist_ok=True)
    tmp = final.with_name(f"{TMP_PREFIX}{final.name}-{os.getpid()}-{secrets.token_hex(4)}")
    tmp.mkdir()
    try:
        save_tensors(tmp / MODEL_FILE, model_state, metadata={"format": "pt", "step": str(step)})
        save_tensors(tmp / STATE_TENSORS_FILE, state_tensors, metadata={"step": str(step)})
        write_json(tmp / STATE_JSON_FILE, {"step": step, "state": skeleton})
        files = {}
        for name in DATA_FILES:
            size, digest = _file_digest(tmp / name)
            files[name] = {"size": size, "sha256": digest}
        # Last: a directory with a valid manifest is a complete checkpoint.
        write_json(
            tmp / MANIFEST,
            {"format": FORMAT, "format_version": FORMAT_VERSION, "step": step, "files": files},
        )
        fsync_dir(tmp)
        _move_into_place(tmp, final)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    return final


def verify_checkpoint(path: str | os.PathLike) -> dict[str, Any]:
    """Check every file of the checkpoint at ``path`` against its manifest; return the manifest.

    Raises :class:`CheckpointError` naming the checkpoint and the file at fault.
    """
    path = Path(path)
    manifest = _read_manifest(path)
    for name in DATA_FILES:
        _read_verified(path, name, manifest["files"][name])
    return manifest


def load_checkpoint(path: str | os.PathLike) -> Checkpoint:
    """Read the checkpoint directory at ``path``, verifying every file against the manifest.

    Nothing is unpickled. Raises :class:`CheckpointError` if the checkpoint is partial (no
    manifest), a file is missing, has the wrong size or sha256, or cannot be parsed.
    """
    path = Path(path)
    manifest = _read_manifest(path)
    data = {name: _read_verified(path, name, manifest["files"][name]) for name in DATA_FILES}
    try:
        model_state = decode_tensors(data[MODEL_FILE], path / MODEL_FILE)
        state_tensors = decode_tensors(data[STATE_TENSORS_FILE], path / STATE_TENSORS_FILE)
        state_json = decode_json(data[STATE_JSON_FILE], path / STATE_JSON_FILE)
        if not isinstance(state_json, dict) or "state" not in state_json:
            raise StateFileError(f"{path / STATE_JSON_FILE} has no 'state' entry")
        state = unflatten_state(state_tensors, state_json["state"])
    except ValueError as err:  # StateFileError, or a skeleton that does not fit its tensors
        raise CheckpointError(f"checkpoint {path} cannot be read: {err}") from err
    if not isinstance(state, dict) or set(state) != {
        "optimizer", "scheduler", "scaler", "trainer", "extra", "rng"
    }:
        raise CheckpointError(f"checkpoint {path}: {STATE_JSON_FILE} does not hold a checkpoint state")
    return Checkpoint(
        path=path,
        step=manifest["step"],
        model_state=model_state,
        optimizer_state=state["optimizer"],
        scheduler_state=state["scheduler"],
        scaler_state=state["scaler"],
        trainer_state=state["trainer"],
        extra_tensors=state["extra"],
        rng_state=state["rng"],
    )


# --- a run's checkpoints -------------------------------------------------------------------
class CheckpointManager:
    """The checkpoints of one run, in ``run_dir/checkpoints/step-XXXXXXXX``.

    :meth:`save` writes a checkpoint, records the best one by ``metric`` in
    ``checkpoints/best.json`` (lowest for ``mode="min"``, highest for ``"max"``; ties keep the
    earlier; a nan or infinite metric is never best), then deletes all but the ``keep_last``
    newest steps, never the best one nor the one just written. :meth:`latest` /
    :meth:`load_latest` return the newest checkpoint that verifies: corrupt or partial ones, and
    ``.tmp-*`` leftovers of interrupted saves, are skipped with a :class:`CheckpointWarning`
    naming them. One process saves (rank 0 under DDP); any may read.
    """

    BEST_FILE = "best.json"

    def __init__(self, run_dir: str | os.PathLike, *, keep_last: int = 3, mode: str = "min") -> None:
        self.run_dir = Path(run_dir)
        self.directory = self.run_dir / "checkpoints"
        self.keep_last = check_positive_int("keep_last", keep_last)
        self.mode = check_choice("mode", mode, ("min", "max"))
        self._read_best()  # a run recorded under the other mode fails here, not after a save

    def __repr__(self) -> str:
        return f"CheckpointManager({str(self.run_dir)!r}, keep_last={self.keep_last}, mode={self.mode!r})"

    def path_for(self, step: int) -> Path:
        """Where the checkpoint of ``step`` lives."""
        return self.directory / f"step-{check_nonnegative_int('step', step):08d}"

    def save(self, step: int, metric: float | None = None, **state: Any) -> Path:
        """Write the checkpoint of ``step`` (``state``: the keyword arguments of
        :func:`save_checkpoint` other than ``step``), update the best, prune; return its path."""
        step = check_nonnegative_int("step", step)
        if metric is not None:
            if isinstance(metric, bool) or not isinstance(metric, numbers.Real):
                raise TypeError(f"metric must be a real number or None, got {type(metric).__name__} {metric!r}")
            metric = float(metric)
        path = save_checkpoint(self.path_for(step), step=step, **state)
        self._update_best(step, metric)
        self._prune(keep=path)
        return path

    def checkpoints(self) -> list[Path]:
        """Every ``step-*`` directory, oldest step first, without verifying them."""
        if not self.directory.is_dir():
            return []
        found = []
        for entry in self.directory.iterdir():
            match = _STEP_DIR.fullmatch(entry.name)
            if match and entry.is_dir():
                found.append((int(match.group(1)), entry))
        return [entry for _, entry in sorted(found)]

    def latest(self) -> Path | None:
        """The newest checkpoint that verifies, or None; skipped ones are warned about."""
        for path, error in self._newest_first(verify_checkpoint):
            if error is None:
                return path
        return None

    def load_latest(self) -> Checkpoint | None:
        """:func:`load_checkpoint` of the newest checkpoint that loads, or None."""
        for _, result in self._newest_first(load_checkpoint, keep_result=True):
            if isinstance(result, Checkpoint):
                return result
        return None

    def best(self) -> Path | None:
        """The checkpoint with the best metric so far, or None if there is none (or it no
        longer verifies, which is warned about)."""
        record = self._read_best()
        if record is None:
            return None
        path = self.path_for(record["step"])
        try:
            verify_checkpoint(path)
        except CheckpointError as err:
            warnings.warn(f"the best checkpoint is unusable: {err}", CheckpointWarning, stacklevel=2)
            return None
        return path

    def best_metric(self) -> float | None:
        """The metric of the best checkpoint so far, or None."""
        record = self._read_best()
        return None if record is None else record["metric"]

    def leftovers(self) -> list[Path]:
        """The ``.tmp-*`` directories interrupted saves and deletes left behind."""
        if not self.directory.is_dir():
            return []
        return sorted(e for e in self.directory.iterdir()
                      if e.name.startswith(TMP_PREFIX) and e.is_dir() and not e.is_symlink())  # fmt: skip

    def remove_leftovers(self) -> list[Path]:
        """Delete the :meth:`leftovers` whose writing process is gone (the process id is in the
        name: a save still running in another live process is left alone); return those removed.
        Call it only from the process that owns the run, as a resumed run does."""
        removed = []
        for path in self.leftovers():
            if _writer_alive(path.name):
                continue
            shutil.rmtree(path, ignore_errors=True)
            if not path.exists():
                removed.append(path)
        if removed:
            fsync_dir(self.directory)
        return removed

    # --- internals ---
    def _newest_first(self, read, *, keep_result: bool = False) -> Iterator[tuple[Path, Any]]:
        """Yield ``(path, None or result)`` for the first checkpoint, newest first, that ``read``
        accepts, warning about each one it rejects and about ``.tmp-*`` leftovers."""
        leftovers = self.leftovers()
        if leftovers:  # one line for all of them; a resumed run removes them (remove_leftovers)
            names = ", ".join(p.name for p in leftovers[:3]) + (", ..." if len(leftovers) > 3 else "")
            warnings.warn(
                f"ignoring {len(leftovers)} partial checkpoint(s) ({names}) in {self.directory}, left by an"
                " interrupted save; resuming the run removes them",
                CheckpointWarning,
                stacklevel=3,
            )
        for path in reversed(self.checkpoints()):
            try:
                result = read(path)
            except CheckpointError as err:
                warnings.warn(
                    f"skipping checkpoint {path}, falling back to an older one: {err}",
                    CheckpointWarning,
                    stacklevel=3,
                )
                continue
            yield path, (result if keep_result else None)
            return

    def _read_best(self) -> dict[str, Any] | None:
        best_file = self.directory / self.BEST_FILE
        try:
            record = read_json(best_file)
        except MissingFileError:
            return None
        except StateFileError as err:
            warnings.warn(f"ignoring {best_file}: {err}", CheckpointWarning, stacklevel=3)
            return None
        if (
            not isinstance(record, dict)
            or isinstance(record.get("step"), bool)
            or not isinstance(record.get("step"), int)
            or not isinstance(record.get("metric"), (int, float))
        ):
            warnings.warn(
                f"ignoring {best_file}: expected an object with 'step' and 'metric', got {record!r:.200}",
                CheckpointWarning,
                stacklevel=3,
            )
            return None
        if record.get("mode", self.mode) != self.mode:
            raise ValueError(
                f"mode must match the run's best-checkpoint record: {best_file} was written with "
                f"mode={record['mode']!r}, got mode={self.mode!r}"
            )
        return record

    def _update_best(self, step: int, metric: float | None) -> None:
        best_file = self.directory / self.BEST_FILE
        record = self._read_best()
        if metric is None:
            # Without a metric, a rewritten step keeps its record: resumed exactly, training
            # reaches the same weights at the same step.
            return
        if record is not None and record["step"] == step:
            # This step was rewritten with a new metric; the old record no longer describes it.
            best_file.unlink(missing_ok=True)
            record = None
        if not math.isfinite(metric):  # nan: a diverged run; inf: JSON cannot even record it
            warnings.warn(
                f"metric of step {step} is {metric}; it cannot be the best checkpoint",
                CheckpointWarning,
                stacklevel=3,
            )
            return
        better = record is None or (
            metric < record["metric"] if self.mode == "min" else metric > record["metric"]
        )
        if better:
            write_json(
                best_file,
                {"step": step, "metric": metric, "mode": self.mode, "checkpoint": self.path_for(step).name},
            )

    def _prune(self, keep: Path) -> None:
        checkpoints = self.checkpoints()
        retained = set(checkpoints[-self.keep_last:]) | {keep}
        record = self._read_best()
        if record is not None:
            retained.add(self.path_for(record["step"]))
        for path in checkpoints:
            if path not in retained:
                # Rename first, so an interrupted delete leaves a .tmp-* leftover rather than a
                # half-deleted directory under a checkpoint's name.
                doomed = path.with_name(f"{TMP_PREFIX}delete-{path.name}-{os.getpid()}-{secrets.token_hex(4)}")
                os.replace(path, doomed)
                shutil.rmtree(doomed, ignore_errors=True)
        fsync_dir(self.directory)


# --- helpers -------------------------------------------------------------------------------
_TMP_PID = re.compile(r"-(\d+)-[0-9a-f]{8}$")  # .tmp-<what>-<pid>-<8 hex digits>


def _writer_alive(name: str) -> bool:
    """Whether the process that named a ``.tmp-*`` directory ``name`` is another live process."""
    match = _TMP_PID.search(name)
    if match is None:
        return False
    pid = int(match.group(1))
    if pid == os.getpid() or pid <= 0:
        return False
    try:
        os.kill(pid, 0)
    except (ProcessLookupError, OverflowError):  # no such process (or no such process id)
        return False
    except OSError:
        return True  # it exists (another user's): leave it
    return True


def _check_tensor_dict(name: str, value: object, *, allow_nested: bool) -> None:
    if not isinstance(value, Mapping):
        raise TypeError(f"{name} must be a dict of str to Tensor, got {type(value).__name__}")
    for key, item in value.items():
        if not isinstance(key, str):
            raise TypeError(f"{name} keys must be str, got {type(key).__name__} {key!r}")
        if not allow_nested and not isinstance(item, Tensor):
            raise TypeError(f"{name}[{key!r}] must be a torch.Tensor, got {type(item).__name__}")


def _file_digest(path: Path) -> tuple[int, str]:
    digest = hashlib.sha256()
    size = 0
    with open(path, "rb") as file:
        while chunk := file.read(_CHUNK):
            digest.update(chunk)
            size += len(chunk)
    return size, digest.hexdigest()


def _move_into_place(tmp: Path, final: Path) -> None:
    if final.exists():
        # os.replace cannot replace a non-empty directory: move the old one aside first. A crash
        # in between leaves both as .tmp-* directories, and the other checkpoints untouched.
        old = final.with_name(f"{TMP_PREFIX}old-{final.name}-{os.getpid()}-{secrets.token_hex(4)}")
        os.replace(final, old)
        os.replace(tmp, final)
        shutil.rmtree(old, ignore_errors=True)
    else:
        os.replace(tmp, final)
    fsync_dir(final.parent)


def _read_manifest(path: Path) -> dict[str, Any]:
    for place in (path.parent, path):  # checkpoints/ and step-N: inside the run directory, never links
        if place.is_symlink():
            raise CheckpointError(f"checkpoint {path}: {place} is a symbolic link; a run's checkpoints must be its own")
    if not path.is_dir():
        raise CheckpointError(f"checkpoint {path} does not exist or is not a directory")
    if (path / MANIFEST).is_symlink():
        raise CheckpointError(f"checkpoint {path}: {MANIFEST} is a symbolic link; a run's checkpoints must be its own")
    try:
        manifest = read_json(path / MANIFEST)
    except MissingFileError as err:
        raise CheckpointError(
            f"checkpoint {path} is partial: {MANIFEST} is missing (was the save interrupted?)"
        ) from err
    except StateFileError as err:
        raise CheckpointError(f"checkpoint {path} is corrupt: {err}") from err
    problem = _manifest_problem(manifest)
    if problem:
        raise CheckpointError(f"checkpoint {path} has an invalid {MANIFEST}: {problem}")
    return manifest


def _manifest_problem(manifest: Any) -> str | None:
    if not isinstance(manifest, dict) or manifest.get("format") != FORMAT:
        return f"expected format {FORMAT!r}"
    version = manifest.get("format_version")
    if not isinstance(version, int) or version < 1:
        return f"format_version must be a positive integer, got {version!r}"
    if version > FORMAT_VERSION:
        return f"format_version {version} is newer than this rnnkit reads ({FORMAT_VERSION}); upgrade rnnkit"
    if isinstance(manifest.get("step"), bool) or not isinstance(manifest.get("step"), int):
        return f"step must be an integer, got {manifest.get('step')!r}"
    files = manifest.get("files")
    if not isinstance(files, dict):
        return "no 'files' entry"
    for name in DATA_FILES:
        entry = files.get(name)
        if (
            not isinstance(entry, dict)
            or not isinstance(entry.get("size"), int)
            or not isinstance(entry.get("sha256"), str)
        ):
            return f"no size and sha256 for {name}"
    return None


def _read_verified(path: Path, name: str, entry: Mapping[str, Any]) -> bytes:
    if (path / name).is_symlink():
        raise CheckpointError(f"checkpoint {path}: {name} is a symbolic link; a run's checkpoints must be its own")
    try:
        data = (path / name).read_bytes()
    except FileNotFoundError as err:
        raise CheckpointError(f"checkpoint {path} is corrupt: {name} is missing") from err
    if len(data) != entry["size"]:
        raise CheckpointError(
            f"checkpoint {path} is corrupt: {name} has {len(data)} bytes, {MANIFEST} says "
            f"{entry['size']} (truncated?)"
        )
    digest = hashlib.sha256(data).hexdigest()
    if digest != entry["sha256"]:
        raise CheckpointError(
            f"checkpoint {path} is corrupt: {name} has sha256 {digest[:16]}..., {MANIFEST} says "
            f"{entry['sha256'][:16]}..."
        )
    return data
