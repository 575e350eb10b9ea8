"""Files that survive a crash and never run code when read.

Every writer here is atomic: it writes a temporary file in the destination's directory, flushes
and fsyncs it, then ``os.replace``-s it over the destination and fsyncs the directory, so a
reader sees either the old file or the new one, never half of one. Nothing is ever unpickled:
tensors go to safetensors, everything else to strict JSON.

``flatten_state`` / ``unflatten_state`` carry the nested state dicts of optimizers, schedulers
and ``GradScaler`` (dicts with int keys, tuples, tensors, floats such as ``inf``) through those
two formats and back exactly, which ``torch.save`` does only by pickling.

Errors about a file are ``StateFileError`` (a ``ValueError``) and name the file; a missing file
is ``MissingFileError``, which is also a ``FileNotFoundError``.
"""

from __future__ import annotations

import json
import math
import os
import secrets
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

import torch
from safetensors import SafetensorError
from safetensors.torch import load as _safetensors_load
from safetensors.torch import save_file as _safetensors_save_file
from torch import Tensor

__all__ = [
    "StateFileError",
    "MissingFileError",
    "atomic_write",
    "atomic_write_bytes",
    "atomic_write_text",
    "write_json",
    "read_json",
    "decode_json",
    "save_tensors",
    "load_tensors",
    "decode_tensors",
    "fsync_dir",
    "run_file",
    "file_record",
    "check_file_record",
    "flatten_state",
    "unflatten_state",
]

PathLike = str | os.PathLike


class StateFileError(ValueError):
    """A file that is missing, truncated, corrupt or not in the expected format."""


class MissingFileError(StateFileError, FileNotFoundError):
    """A file that does not exist; also a ``FileNotFoundError`` for callers that expect one."""


# --- atomic writes -------------------------------------------------------------------------
def fsync_dir(directory: PathLike) -> None:
    """Make a rename or a new entry in ``directory`` durable (a no-op where unsupported)."""
    try:
        fd = os.open(directory, os.O_RDONLY)
    except OSError:  # Windows cannot open a directory; its renames are durable enough
        return
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)


def atomic_write(path: PathLike, write: Callable[[Path], None]) -> Path:
    """Call ``write(tmp)`` to fill a new temporary file ``tmp`` beside ``path``, then move it
    into place: fsync the file, ``os.replace`` it over ``path``, fsync the directory.

    If ``write`` raises, the temporary file is removed and ``path`` is left as it was.
    """
    path = Path(path)
    tmp = path.with_name(f".{path.name}.tmp-{os.getpid()}-{secrets.token_hex(4)}")
    # O_EXCL: never write through someone else's file; 0o666 lets the umask decide, as open() does
    os.close(os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o666))
    try:
        write(tmp)
        fd = os.open(tmp, os.O_RDWR)
        try:
            os.fsync(fd)
        finally:
            os.close(fd)
        os.replace(tmp, path)
    except BaseException:
        _remove_quietly(tmp)
        raise
    fsync_dir(path.parent)
    return path


def save_figure(figure: Any, path: PathLike, **savefig: Any) -> Path:
    """Write a matplotlib figure as a PNG at ``path`` atomically (parent folders created)."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    return atomic_write(path, lambda tmp: figure.savefig(tmp, format="png", **savefig))


def atomic_write_bytes(path: PathLike, data: bytes) -> Path:
    """Write ``data`` to ``path`` atomically."""
    return atomic_write(path, lambda tmp: tmp.write_bytes(data))


def atomic_write_text(path: PathLike, text: str, encoding: str = "utf-8") -> Path:
    """Write ``text`` to ``path`` atomically."""
    return atomic_write_bytes(path, text.encode(encoding))


def write_json(path: PathLike, obj: Any, *, sort_keys: bool = False) -> Path:
    """Write ``obj`` as strict JSON (no ``NaN``/``Infinity``), indented by 2, atomically."""
    try:
        text = json.dumps(obj, indent=2, sort_keys=sort_keys, allow_nan=False)
    except (TypeError, ValueError) as err:  # an unserialisable object, or a nan/inf float
        raise type(err)(f"cannot write {path} as JSON: {err}") from err
    return atomic_write_text(path, text + "\n")


def read_json(path: PathLike) -> Any:
    """Read a JSON file; a missing or invalid file raises an error that names it."""
    return decode_json(_read_bytes(path), path)


def decode_json(data: bytes, source: PathLike) -> Any:
    """Parse JSON ``data`` read from ``source`` (named in the error if it is invalid)."""
    try:
        return json.loads(data.decode("utf-8"))
    except (UnicodeDecodeError, json.JSONDecodeError) as err:
        raise StateFileError(f"{source} is not valid JSON (truncated or corrupt?): {err}") from err


# --- tensors -------------------------------------------------------------------------------
def save_tensors(
    path: PathLike, tensors: Mapping[str, Tensor], metadata: Mapping[str, str] | None = None
) -> Path:
    """Write ``tensors`` to a safetensors file atomically.

    Tensors are detached and moved to the CPU; views, non-contiguous tensors and tensors that
    share storage with another entry (tied weights) are copied, because safetensors stores each
    tensor once and whole. ``metadata`` is free-form text stored in the header.
    """
    if not isinstance(tensors, Mapping):
        raise TypeError(f"tensors must be a mapping of str to Tensor, got {type(tensors).__name__}")
    if metadata is not None:
        if not isinstance(metadata, Mapping) or not all(
            isinstance(k, str) and isinstance(v, str) for k, v in metadata.items()
        ):
            raise TypeError(f"metadata must be a mapping of str to str, got {metadata!r}")
        metadata = dict(metadata)
    prepared = _independent_tensors(tensors)

    def write(tmp: Path) -> None:
        mode = os.stat(tmp).st_mode  # what the umask allows; safetensors would leave 0o600
        try:
            _safetensors_save_file(prepared, tmp, metadata=metadata)
            os.chmod(tmp, mode)
        except (KeyError, SafetensorError) as err:  # KeyError: a dtype it cannot store
            raise TypeError(f"cannot write {path} as safetensors: {err!r}") from err

    return atomic_write(path, write)


def load_tensors(path: PathLike) -> dict[str, Tensor]:
    """Read a safetensors file into CPU tensors; a missing, truncated or corrupt file raises."""
    return decode_tensors(_read_bytes(path), path)


def decode_tensors(data: bytes, source: PathLike) -> dict[str, Tensor]:
    """Parse safetensors ``data`` read from ``source`` (named in the error if it is corrupt)."""
    try:
        return _safetensors_load(data)
    except (SafetensorError, KeyError, ValueError, RuntimeError) as err:
        raise StateFileError(
            f"{source} is not a valid safetensors file (truncated or corrupt?): {err}"
        ) from err


def _independent_tensors(tensors: Mapping[str, Tensor]) -> dict[str, Tensor]:
    """Detached CPU tensors, each contiguous and owning the whole of its own storage."""
    seen: set[tuple[str, int]] = set()
    out: dict[str, Tensor] = {}
    for name, tensor in tensors.items():
        if not isinstance(name, str):
            raise TypeError(f"tensor names must be str, got {type(name).__name__} {name!r}")
        if not isinstance(tensor, Tensor):
            raise TypeError(f"tensors[{name!r}] must be a torch.Tensor, got {type(tensor).__name__}")
        if tensor.layout != torch.strided:
            raise TypeError(f"tensors[{name!r}] must be a dense tensor, got layout {tensor.layout}")
        t = tensor.detach().cpu()
        storage = t.untyped_storage()
        key = (str(t.device), storage.data_ptr())
        whole = (
            t.is_contiguous()
            and t.storage_offset() == 0
            and t.numel() * t.element_size() == storage.nbytes()
        )
        if key in seen or not whole:
            t = t.clone(memory_format=torch.contiguous_format)
        if t.numel():  # empty tensors may all share the null pointer; they hold no data
            seen.add((str(t.device), t.untyped_storage().data_ptr()))
        out[name] = t
    return out


# --- nested state <-> (tensors, JSON skeleton) ---------------------------------------------
# The skeleton is plain JSON. None, bools, ints, strings, finite floats and lists stand for
# themselves; everything else is a one-key object whose key says what it is:
#   {"tensor": name}        a tensor, stored under ``name`` in the flat dict
#   {"float": "nan"}        a float JSON cannot write: "nan", "inf" or "-inf"
#   {"tuple": [...]}        a tuple
#   {"dict": {...}}         a dict whose keys are all str
#   {"items": [[k, v]...]}  any other dict (int keys, as optimizer state dicts use)
# Dicts never stand for themselves, so a user's dict can never be mistaken for a tag.
_TAGS = ("tensor", "float", "tuple", "dict", "items")


def flatten_state(obj: Any) -> tuple[dict[str, Tensor], Any]:
    """Split a nested state into a flat dict of tensors and a JSON-serialisable skeleton.

    ``obj`` may nest dicts (keys: str, int, bool, float, None or tuples of those), lists,
    tuples, tensors, ints, floats (``inf`` and ``nan`` included), bools, str and None.
    ``unflatten_state(*flatten_state(obj))`` rebuilds it exactly: int keys stay ints, tuples
    stay tuples, floats stay floats, a tensor appearing twice comes back as one tensor.

    >>> tensors, skeleton = flatten_state({"state": {0: {"step": torch.tensor(3.0)}}, "lr": 0.1})
    >>> sorted(tensors)
    ['state.0.step']
    >>> unflatten_state(tensors, skeleton)
    {'state': {0: {'step': tensor(3.)}}, 'lr': 0.1}
    """
    tensors: dict[str, Tensor] = {}
    names_by_id: dict[int, str] = {}

    def name_for(tensor: Tensor, path: tuple[str, ...]) -> str:
        if id(tensor) in names_by_id:
            return names_by_id[id(tensor)]
        base = ".".join(path) or "tensor"
        name, n = base, 1
        while name in tensors:  # "a.0" from {"a": [x]} and from {"a": {0: x}}
            name, n = f"{base}#{n}", n + 1
        tensors[name] = tensor
        names_by_id[id(tensor)] = name
        return name

    def encode(value: Any, path: tuple[str, ...], where: str, *, key: bool = False) -> Any:
        if value is None or isinstance(value, (bool, str)):
            return value
        if isinstance(value, int):
            return int(value)
        if isinstance(value, float):
            value = float(value)
            return value if math.isfinite(value) else {"float": repr(value)}
        if isinstance(value, tuple):
            return {"tuple": [encode(v, path + (str(i),), f"{where}[{i}]", key=key)
                              for i, v in enumerate(value)]}
        if key:
            raise TypeError(
                f"flatten_state supports dict keys of type str, int, bool, float, None or "
                f"tuple, got {type(value).__name__} {value!r} as a key in {where}"
            )
        if isinstance(value, Tensor):
            return {"tensor": name_for(value, path)}
        if isinstance(value, list):
            return [encode(v, path + (str(i),), f"{where}[{i}]") for i, v in enumerate(value)]
        if isinstance(value, Mapping):
            if all(isinstance(k, str) for k in value):
                return {"dict": {k: encode(v, path + (k,), f"{where}[{k!r}]")
                                 for k, v in value.items()}}
            return {"items": [[encode(k, (), f"{where}", key=True),
                               encode(v, path + (str(k),), f"{where}[{k!r}]")]
                              for k, v in value.items()]}
        raise TypeError(
            f"flatten_state supports dicts, lists, tuples, tensors, int, float, bool, str and "
            f"None, got {type(value).__name__} at {where}"
        )

    skeleton = encode(obj, (), "state")
    return tensors, skeleton


def unflatten_state(tensors: Mapping[str, Tensor], skeleton: Any) -> Any:
    """Rebuild the nested state that ``flatten_state`` split into ``tensors`` and ``skeleton``.

    Raises ``ValueError`` if the skeleton is malformed, names a tensor that ``tensors`` lacks,
    or if ``tensors`` holds tensors the skeleton does not use.
    """
    used: set[str] = set()

    def decode(node: Any, where: str) -> Any:
        if node is None or isinstance(node, (bool, int, float, str)):
            return node
        if isinstance(node, list):
            return [decode(v, f"{where}[{i}]") for i, v in enumerate(node)]
        if not isinstance(node, dict) or len(node) != 1 or next(iter(node)) not in _TAGS:
            raise ValueError(
                f"state skeleton at {where} must be a JSON scalar, a list or a one-key object "
                f"tagged {', '.join(_TAGS)}; got {node!r:.200}"
            )
        tag, body = next(iter(node.items()))
        if tag == "tensor":
            if not isinstance(body, str) or body not in tensors:
                raise ValueError(f"state skeleton at {where} names tensor {body!r}, which is missing")
            used.add(body)
            return tensors[body]
        if tag == "float":
            if body not in ("nan", "inf", "-inf"):
                raise ValueError(f"state skeleton at {where}: expected 'nan', 'inf' or '-inf', got {body!r}")
            return float(body)
        if tag == "tuple" and isinstance(body, list):
            return tuple(decode(v, f"{where}[{i}]") for i, v in enumerate(body))
        if tag == "dict" and isinstance(body, dict):
            return {k: decode(v, f"{where}[{k!r}]") for k, v in body.items()}
        if tag == "items" and isinstance(body, list) and all(
            isinstance(kv, list) and len(kv) == 2 for kv in body
        ):
            out = {}
            for k, v in body:
                k = decode(k, where)
                try:
                    out[k] = decode(v, f"{where}[{k!r}]")
                except TypeError as err:  # an unhashable key from a hand-edited skeleton
                    raise ValueError(f"state skeleton at {where} has an unhashable key {k!r}") from err
            return out
        raise ValueError(f"state skeleton at {where}: malformed {tag!r} entry {body!r:.200}")

    obj = decode(skeleton, "state")
    unused = sorted(set(tensors) - used)
    if unused:
        raise ValueError(f"tensors not referenced by the state skeleton: {unused[:10]}")
    return obj


# --- run directories: what is read from one stays inside it --------------------------------
def run_file(run_dir: PathLike, name: str | PathLike) -> Path:
    """``run_dir / name``, for reading: refused (``StateFileError``) where ``name`` would leave the
    run directory or a symbolic link lies on the way (a run directory from someone else must not
    make rnnkit read, and echo, a file of yours). ``run_dir`` itself is the caller's to trust."""
    root = Path(run_dir)
    relative = Path(name)
    if relative.is_absolute() or ".." in relative.parts:
        raise StateFileError(f"{relative} is not a path inside the run directory {root}")
    path = root
    for part in relative.parts:
        path = path / part
        if path.is_symlink():
            raise StateFileError(f"{path} is a symbolic link: a run directory's files must be its own, not links")
    return path


def file_record(path: PathLike) -> dict[str, Any]:
    """What identifies a data file a run read: its absolute path, size and sha256."""
    path = Path(path).resolve()
    return {"path": str(path), "bytes": path.stat().st_size, "sha256": _sha256(path)}


def check_file_record(record: Any, what: str) -> Path:
    """The path of a :func:`file_record`, once the file there is the one recorded -- checked by its
    size and sha256 before anything parses it, so a run directory can name only the file it was
    trained on, never make rnnkit read another."""
    if not isinstance(record, dict) or not isinstance(record.get("path"), str):
        raise StateFileError(f"{what}: expected a file record (path, bytes, sha256), got {record!r:.100}")
    path = Path(record["path"])
    if not path.is_file():
        raise MissingFileError(f"{what} {path} does not exist any more; give the data again")
    if path.stat().st_size != record.get("bytes") or _sha256(path) != record.get("sha256"):
        raise StateFileError(f"{what} {path} is not the file the run trained on (its size or sha256 differs)")
    return path


def _sha256(path: Path) -> str:
    import hashlib

    digest = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


# --- helpers -------------------------------------------------------------------------------
def _read_bytes(path: PathLike) -> bytes:
    try:
        return Path(path).read_bytes()
    except FileNotFoundError as err:
        raise MissingFileError(f"{path} does not exist") from err
    except IsADirectoryError as err:
        raise StateFileError(f"{path} is a directory, expected a file") from err


def _remove_quietly(path: PathLike) -> None:
    try:
        os.remove(path)
    except OSError:
        pass
