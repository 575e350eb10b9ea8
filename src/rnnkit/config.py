"""Configuration: frozen dataclasses, read from JSON or YAML, with dotted command-line overrides.

The same dataclasses serve the Python API and the command line (nanoGPT's ``GPTConfig``)::

    config = load_config(RunConfig, "run.yaml", ["train.lr=3e-3", "model.hidden_size=256"])

Unknown keys and values of the wrong type are rejected with the dotted path of the offending
key; the final configuration is saved in the run directory (:func:`save_config`).
"""

from __future__ import annotations

import dataclasses
import json
import re
import types
import typing
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any, TypeVar

T = TypeVar("T")


def to_dict(config: Any) -> dict[str, Any]:
    """A dataclass as plain JSON-able data (nested dataclasses become dicts, tuples lists)."""
    return json.loads(json.dumps(dataclasses.asdict(config)))


def from_dict(cls: type[T], data: Mapping[str, Any], *, where: str = "") -> T:
    """Build dataclass ``cls`` from ``data``, checking every key and type."""
    if not isinstance(data, Mapping):
        raise TypeError(f"{where or cls.__name__} must be a mapping of settings, got {type(data).__name__}")
    hints = typing.get_type_hints(cls)
    fields = {f.name: f for f in dataclasses.fields(cls) if f.init}
    unknown = sorted(set(data) - set(fields))
    if unknown:
        prefix = f"{where}." if where else ""
        raise ValueError(
            f"unknown setting {prefix}{unknown[0]}: expected one of {', '.join(prefix + n for n in fields)}"
        )
    values = {}
    for name, value in data.items():
        path = f"{where}.{name}" if where else name
        values[name] = _coerce(hints[name], value, path)
    return cls(**values)


class RawValue(str):
    """A value typed on the command line: text for string settings, a YAML scalar for the others."""


def _accepts_text(annotation: Any) -> bool:
    origin, args = typing.get_origin(annotation), typing.get_args(annotation)
    if annotation is str:
        return True
    if origin in (typing.Union, types.UnionType):
        return str in args
    return origin is typing.Literal and all(isinstance(a, str) for a in args)


def _coerce(annotation: Any, value: Any, path: str) -> Any:
    origin = typing.get_origin(annotation)
    args = typing.get_args(annotation)
    if isinstance(value, RawValue):  # "ROMEO:" stays text where text is expected
        value = str(value) if _accepts_text(annotation) else _parse_scalar(value)
    if annotation is Any:
        return value
    if dataclasses.is_dataclass(annotation):
        return from_dict(annotation, value, where=path)
    if origin in (typing.Union, types.UnionType):
        if value is None and type(None) in args:
            return None
        errors = []
        for option in (a for a in args if a is not type(None)):
            try:
                return _coerce(option, value, path)
            except (TypeError, ValueError) as error:
                errors.append(str(error))
        raise TypeError(errors[0] if len(errors) == 1 else f"{path} has the wrong type: {'; '.join(errors)}")
    if origin is typing.Literal:
        if value not in args:
            raise ValueError(f"{path} must be one of {', '.join(repr(a) for a in args)}, got {value!r}")
        return value
    if origin in (tuple, list, Sequence):
        if not isinstance(value, (list, tuple)):
            raise TypeError(f"{path} must be a list, got {type(value).__name__} {value!r}")
        item = args[0] if args else Any
        items = [_coerce(item, v, f"{path}[{i}]") for i, v in enumerate(value)]
        return tuple(items) if origin is tuple else items
    if origin in (dict, Mapping):
        if not isinstance(value, Mapping):
            raise TypeError(f"{path} must be a mapping, got {type(value).__name__} {value!r}")
        item = args[1] if len(args) == 2 else Any  # --model.encoder.options.layer_norm=true: a bool
        return {key: _coerce(item, v, f"{path}.{key}") for key, v in value.items()}
    if annotation is bool:
        if not isinstance(value, bool):
            raise TypeError(f"{path} must be true or false, got {type(value).__name__} {value!r}")
        return value
    if annotation is int:
        if isinstance(value, bool) or not isinstance(value, int):
            raise TypeError(f"{path} must be an integer, got {type(value).__name__} {value!r}")
        return value
    if annotation is float:
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            raise TypeError(f"{path} must be a number, got {type(value).__name__} {value!r}")
        return float(value)
    if annotation is str:
        if not isinstance(value, str):
            raise TypeError(f"{path} must be a string, got {type(value).__name__} {value!r}")
        return value
    raise TypeError(f"{path}: unsupported setting type {annotation!r}")


def describe(cls: type, values: Mapping[str, Any] | None = None, prefix: str = "") -> list[tuple[str, str, str]]:
    """Every setting of dataclass ``cls`` as ``(dotted name, value, type)``, nested dataclasses
    flattened; ``values`` (nested like the settings) replace the defaults, as a task's do."""
    values = values or {}
    hints = typing.get_type_hints(cls)
    rows = []
    for f in dataclasses.fields(cls):
        if not f.init:
            continue
        name = f"{prefix}{f.name}"
        given = values.get(f.name, dataclasses.MISSING)
        if f.default is not dataclasses.MISSING:
            default = f.default
        elif f.default_factory is not dataclasses.MISSING:
            default = f.default_factory()
        else:
            default = dataclasses.MISSING
        if dataclasses.is_dataclass(hints[f.name]):
            nested = to_dict(default) if default is not dataclasses.MISSING else {}
            nested.update(given if isinstance(given, Mapping) else {})
            rows.extend(describe(hints[f.name], nested, f"{name}."))
            continue
        value = given if given is not dataclasses.MISSING else default
        rows.append((name, _shown(value), _type_name(hints[f.name])))
    return rows


def _shown(value: Any) -> str:
    """A setting's value as it would be typed: plain text bare, anything else (``"\\n"``) as JSON."""
    if value is dataclasses.MISSING:
        return "(required)"
    if isinstance(value, str) and value and value.isprintable() and value == value.strip():
        return value
    return json.dumps(value)


def _type_name(annotation: Any) -> str:
    origin, args = typing.get_origin(annotation), typing.get_args(annotation)
    if origin is typing.Literal:
        return "|".join(str(a) for a in args)
    if origin in (typing.Union, types.UnionType):
        names = [_type_name(a) for a in args if a is not type(None)]
        return " or ".join(names) + (" or null" if type(None) in args else "")
    if origin is not None:
        return getattr(origin, "__name__", str(origin))
    return getattr(annotation, "__name__", str(annotation))


def parse_override(text: str) -> tuple[list[str], Any]:
    """``"train.lr=3e-3"`` -> (["train", "lr"], RawValue("3e-3")), typed later by its setting."""
    key, sep, raw = text.partition("=")
    if not sep or not key.strip():
        raise ValueError(f"an override must look like section.name=value, got {text!r}")
    return key.strip().split("."), RawValue(raw)


def _parse_scalar(raw: str) -> Any:
    """A command-line value: int, float (``3e-3`` too, which YAML 1.1 leaves a string), bool,
    null, a JSON list or mapping, else the text itself."""
    text = raw.strip()
    for parse in (int, float):
        try:
            return parse(text)
        except ValueError:
            pass
    lowered = text.lower()
    if lowered in ("true", "false"):
        return lowered == "true"
    if lowered in ("null", "none", "~"):
        return None
    if text[:1] in "[{":
        try:
            return json.loads(text)
        except json.JSONDecodeError:
            pass
    return str(raw)


def apply_overrides(data: dict[str, Any], overrides: Sequence[str]) -> dict[str, Any]:
    """Set dotted keys in nested ``data`` (a copy); the dataclass check catches unknown keys."""
    result = json.loads(json.dumps(data))
    for text in overrides:
        keys, value = parse_override(text)
        node = result
        for key in keys[:-1]:
            child = node.setdefault(key, {})
            if not isinstance(child, dict):
                raise ValueError(f"cannot set {'.'.join(keys)}: {key} is a value, not a section")
            node = child
        node[keys[-1]] = value
    return result


# YAML 1.2's core-schema floats (https://yaml.org/spec/1.2.2/#1032-tag-resolution): ``3e-3``,
# ``1e5`` and ``.5`` are numbers, as in JSON; PyYAML's YAML 1.1 reads the first two as strings
_YAML_12_FLOAT = re.compile(
    r"""^(?:[-+]?(?:\.[0-9]+|[0-9]+(?:\.[0-9]*)?)(?:[eE][-+]?[0-9]+)?
        |[-+]?\.(?:inf|Inf|INF)
        |\.(?:nan|NaN|NAN))$""",
    re.X,
)


def _yaml_loader():
    """PyYAML's safe loader, with floats resolved as YAML 1.2 (and JSON) read them."""
    import yaml

    class Loader(yaml.SafeLoader):
        pass

    Loader.yaml_implicit_resolvers = {
        first: [(tag, regexp) for tag, regexp in resolvers if tag != "tag:yaml.org,2002:float"]
        for first, resolvers in yaml.SafeLoader.yaml_implicit_resolvers.items()
    }
    Loader.add_implicit_resolver("tag:yaml.org,2002:float", _YAML_12_FLOAT, list("-+0123456789."))
    # an integer keeps its own tag: the int resolver is tried first, and it was kept above
    return Loader


def read_config_file(path: str | Path) -> dict[str, Any]:
    """A JSON or YAML file (by extension) as a dict; clear errors for missing or malformed files.
    YAML numbers are read as YAML 1.2 reads them: ``lr: 3e-3`` is the float 0.003."""
    import yaml

    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"config file {path} does not exist")
    text = path.read_text(encoding="utf-8")
    try:
        data = json.loads(text) if path.suffix == ".json" else yaml.load(text, Loader=_yaml_loader())  # noqa: S506 - a SafeLoader
    except (json.JSONDecodeError, yaml.YAMLError) as error:
        raise ValueError(f"config file {path} is not valid {'JSON' if path.suffix == '.json' else 'YAML'}: {error}") from None
    if data is None:
        data = {}
    if not isinstance(data, dict):
        raise ValueError(f"config file {path} must hold a mapping of settings, got {type(data).__name__}")
    return data


def load_config(
    cls: type[T], path: str | Path | None = None, overrides: Sequence[str] = (), base: T | None = None
) -> T:
    """``base`` (or ``cls()``'s defaults), updated by the file at ``path``, then by ``overrides``."""
    data = to_dict(base if base is not None else cls())
    if path is not None:
        data = merge_settings(data, read_config_file(path))
    return from_dict(cls, apply_overrides(data, overrides))


def merge_settings(base: dict[str, Any], update: Any, where: str = "settings") -> dict[str, Any]:
    """``base`` updated by ``update`` key by key, nested sections merged rather than replaced."""
    if not isinstance(update, Mapping):
        raise TypeError(f"{where} must be a mapping of settings, got {type(update).__name__}")
    merged = dict(base)
    for key, value in update.items():
        if isinstance(value, Mapping) and isinstance(merged.get(key), dict):
            merged[key] = merge_settings(merged[key], value, f"{where}.{key}")
        else:
            merged[key] = value
    return merged


def save_config(config: Any, path: str | Path) -> None:
    """Write a dataclass (or dict) as JSON or YAML by extension, atomically."""
    from ._io import atomic_write_text

    data = config if isinstance(config, dict) else to_dict(config)
    path = Path(path)
    if path.suffix in (".yaml", ".yml"):
        import yaml

        text = yaml.safe_dump(data, sort_keys=False)
    else:
        text = json.dumps(data, indent=2) + "\n"
    atomic_write_text(path, text)
