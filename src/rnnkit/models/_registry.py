"""Models by name, so a run directory's JSON config rebuilds its model (``rnnkit.load``)."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

from torch import nn

from ..config import from_dict, to_dict

MODELS: dict[str, type[nn.Module]] = {}


def register_model(name: str) -> Callable[[type[nn.Module]], type[nn.Module]]:
    """Class decorator: the class takes one frozen-dataclass argument of type ``cls.config_class``."""

    def register(cls: type[nn.Module]) -> type[nn.Module]:
        if name in MODELS:
            raise ValueError(f"a model named {name!r} is already registered")
        cls.registry_name = name
        MODELS[name] = cls
        return cls

    return register


def create_model(name: str, config: Any = None) -> nn.Module:
    """Build registered model ``name`` from its config dataclass or a dict of its settings."""
    if name not in MODELS:
        raise ValueError(f"model must be one of {', '.join(repr(n) for n in MODELS)}, got {name!r}")
    cls = MODELS[name]
    if config is None or isinstance(config, Mapping):
        config = from_dict(cls.config_class, config or {}, where="model")
    return cls(config)


def model_spec(model: nn.Module) -> dict[str, Any]:
    """What :func:`create_model` needs to rebuild ``model``: its registered name and config."""
    name = getattr(model, "registry_name", None)
    if name is None:
        raise TypeError(f"model must be a registered rnnkit model to be saved and loaded by name, got {type(model).__name__}")
    return {"name": name, "config": to_dict(model.config)}
