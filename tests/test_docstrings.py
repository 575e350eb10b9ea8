"""The examples in the docstrings run and print what they show: every module of the package whose
source holds a ``>>>`` example, found by reading the source, so that a new module is swept too."""

import doctest
import importlib
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent / "src" / "rnnkit"


def _modules_with_examples() -> list[str]:
    names = []
    for path in sorted(ROOT.rglob("*.py")):
        if ">>> " in path.read_text(encoding="utf-8"):
            parts = path.relative_to(ROOT.parent).with_suffix("").parts
            names.append(".".join(parts[:-1] if parts[-1] == "__init__" else parts))
    return names


MODULES = _modules_with_examples()


def test_the_sweep_finds_the_modules_it_should():
    assert {"rnnkit.cells._lstm", "rnnkit.data.tokenizers", "rnnkit.apps.anomaly.likelihood"} <= set(MODULES)


@pytest.mark.parametrize("name", MODULES)
def test_docstring_examples(name):
    try:
        module = importlib.import_module(name)
    except ModuleNotFoundError as error:  # an optional extra's package (music21, librosa, ...) is not installed
        pytest.skip(f"{name} needs {error.name}, which is not installed")
    result = doctest.testmod(module, optionflags=doctest.ELLIPSIS | doctest.NORMALIZE_WHITESPACE)
    assert result.attempted > 0, f"{name} has no examples"
    assert result.failed == 0
