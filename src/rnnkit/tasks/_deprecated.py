"""The warning every module of the old ``rnnkit.tasks`` layout gives when it is imported."""

from __future__ import annotations

import warnings


def moved(old: str, new: str) -> None:
    """Warn that module ``old`` is now ``new`` (``rnnkit.tasks`` goes away after one release)."""
    warnings.warn(f"{old} is deprecated and will be removed in the next release: use {new}",
                  DeprecationWarning, stacklevel=3)  # fmt: skip
