"""Optional dependencies: imported where an application uses them, with the pip command when missing.

Each application's dependencies are an extra of the package (``pyproject.toml``): ``timeseries``
(pandas, statsmodels), ``text`` (tokenizers), and the later applications' own. A missing one is
a :class:`MissingExtraError`, a ``ValueError`` too, so the command line prints it as one line.
"""

from __future__ import annotations

from types import ModuleType


class MissingExtraError(ImportError, ValueError):
    """An optional dependency is missing; a ``ValueError`` too, so the command line prints one line."""


def require(module: str, extra: str, purpose: str, *, package: str | None = None) -> ModuleType:
    """Import ``module``, or say which pip install brings it: ``pip install 'rnnkit[extra]'``.

    ``purpose`` names what needs it ("forecasting"); ``package`` is its name on PyPI where that
    differs from the module's (``Bio`` is ``biopython``).

    >>> require("math", "none", "arithmetic").sqrt(4.0)
    2.0
    """
    try:  # __import__ rather than importlib's: what a test that hides a package patches
        return __import__(module, fromlist=["_"])
    except ImportError:
        name = package or module.split(".")[0]
        raise MissingExtraError(
            f"{purpose} needs {name}: pip install 'rnnkit[{extra}]' (or pip install {name})"
        ) from None
