"""The examples in the docstrings run and print what they show."""

import doctest
import importlib

import pytest

MODULES = [
    "rnnkit._extras",
    "rnnkit.cells._base",
    "rnnkit.cells._elman",
    "rnnkit.cells._gru",
    "rnnkit.cells._lstm",
    "rnnkit.cells._minimal",
    "rnnkit.layers._generic",
    "rnnkit.layers._torch_compatible",
    "rnnkit.models._shapes",
    "rnnkit.models.sampling",
    "rnnkit.data.splits",
    "rnnkit.data.tokenizers",
    "rnnkit.metrics.forecasting",
    "rnnkit.metrics.sequences",
    "rnnkit.metrics.spans",
    "rnnkit.training.data",
    "rnnkit.training.diagnostics",
]


@pytest.mark.parametrize("name", MODULES)
def test_docstring_examples(name):
    module = importlib.import_module(name)
    result = doctest.testmod(module, optionflags=doctest.ELLIPSIS | doctest.NORMALIZE_WHITESPACE)
    assert result.attempted > 0, f"{name} has no examples"
    assert result.failed == 0
