import math

import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from rnnkit.data.synthetic import (
    ADDING_BASELINE_MSE,
    adding_problem,
    copy_memory,
    copy_memory_baseline,
)


def _gen(seed: int = 0) -> torch.Generator:
    return torch.Generator().manual_seed(seed)


# -----------------------------------------------------------------------------
# adding problem


def test_adding_problem_shapes_and_dtypes():
    x, y = adding_problem(5, 30, generator=_gen())
    assert x.shape == (5, 30, 2) and x.dtype == torch.float32
    assert y.shape == (5,) and y.dtype == torch.float32


@settings(max_examples=50, deadline=None)
@given(n=st.integers(1, 20), length=st.integers(2, 80), seed=st.integers(0, 2**31))
def test_adding_problem_markers_and_targets(n, length, seed):
    x, y = adding_problem(n, length, generator=_gen(seed))
    values, markers = x[..., 0], x[..., 1]
    assert ((values >= 0) & (values < 1)).all()
    assert set(markers.unique().tolist()) <= {0.0, 1.0}

    half = length // 2
    assert (markers[:, :half].sum(dim=1) == 1).all(), "one marker in the first half"
    assert (markers[:, half:].sum(dim=1) == 1).all(), "one marker in the second half"
    torch.testing.assert_close(y, (values * markers).sum(dim=1))


def test_adding_problem_seeded_reproducibility():
    a = adding_problem(8, 20, generator=_gen(3))
    b = adding_problem(8, 20, generator=_gen(3))
    c = adding_problem(8, 20, generator=_gen(4))
    torch.testing.assert_close(a, b, rtol=0, atol=0)
    assert not torch.equal(a[0], c[0])


def test_adding_problem_unseeded_uses_global_rng():
    torch.manual_seed(11)
    a = adding_problem(4, 10)
    torch.manual_seed(11)
    b = adding_problem(4, 10)
    torch.testing.assert_close(a, b, rtol=0, atol=0)


def test_adding_problem_baseline_matches_data():
    # Predicting 1.0 everywhere scores about 1/6.
    _, y = adding_problem(20000, 10, generator=_gen())
    mse = ((y - 1.0) ** 2).mean().item()
    assert mse == pytest.approx(ADDING_BASELINE_MSE, abs=0.01)
    assert ADDING_BASELINE_MSE == pytest.approx(0.167, abs=5e-4)


@pytest.mark.parametrize(
    ("kwargs", "name", "error"),
    [
        ({"n": 0, "length": 10}, "n", ValueError),
        ({"n": -3, "length": 10}, "n", ValueError),
        ({"n": 2, "length": 1}, "length", ValueError),
        ({"n": 2.0, "length": 10}, "n", TypeError),
        ({"n": True, "length": 10}, "n", TypeError),
        ({"n": 2, "length": "10"}, "length", TypeError),
    ],
)
def test_adding_problem_bad_arguments(kwargs, name, error):
    with pytest.raises(error, match=rf"^{name} must be an integer >= \d+, got "):
        adding_problem(**kwargs)


def test_adding_problem_message_shows_received_value():
    with pytest.raises(ValueError, match="length must be an integer >= 2, got 1"):
        adding_problem(3, 1)


def test_adding_problem_bad_generator():
    with pytest.raises(TypeError, match="generator must be a torch.Generator"):
        adding_problem(2, 10, generator=0)


# -----------------------------------------------------------------------------
# copy memory


def test_copy_memory_shapes_and_dtypes():
    x, y = copy_memory(6, 30, generator=_gen())
    assert x.shape == y.shape == (6, 50)  # T + 20 with the paper's 10 symbols
    assert x.dtype == y.dtype == torch.long


@settings(max_examples=50, deadline=None)
@given(
    n=st.integers(1, 8),
    lag=st.integers(1, 40),
    num_symbols=st.integers(1, 12),
    copy_length=st.integers(1, 12),
    seed=st.integers(0, 2**31),
)
def test_copy_memory_layout(n, lag, num_symbols, copy_length, seed):
    K, T = copy_length, lag
    x, y = copy_memory(n, lag, num_symbols=num_symbols, copy_length=K, generator=_gen(seed))
    assert x.shape == y.shape == (n, T + 2 * K)

    symbols = x[:, :K]
    assert ((symbols >= 1) & (symbols <= num_symbols)).all()
    expected_x = torch.zeros_like(x)
    expected_x[:, :K] = symbols
    expected_x[:, K + T - 1] = num_symbols + 1  # delimiter, then the answer window
    torch.testing.assert_close(x, expected_x, rtol=0, atol=0)

    expected_y = torch.zeros_like(y)
    expected_y[:, T + K :] = symbols  # blanks, then the symbols in order
    torch.testing.assert_close(y, expected_y, rtol=0, atol=0)


def test_copy_memory_paper_example():
    # Arjovsky et al. (2016): symbols from {1..8}, blank 0, delimiter 9.
    x, y = copy_memory(200, 5, generator=_gen())
    assert set(x.unique().tolist()) <= set(range(10))
    assert (x[:, 14] == 9).all() and (x == 9).sum() == 200
    assert (y[:, :15] == 0).all() and (y[:, 15:] > 0).all()


def test_copy_memory_seeded_reproducibility():
    a = copy_memory(4, 12, generator=_gen(5))
    b = copy_memory(4, 12, generator=_gen(5))
    torch.testing.assert_close(a, b, rtol=0, atol=0)


def test_copy_memory_baseline():
    assert copy_memory_baseline(100) == pytest.approx(10 * math.log(8) / 120)
    assert copy_memory_baseline(5, num_symbols=4, copy_length=3) == pytest.approx(
        3 * math.log(4) / 11
    )


@pytest.mark.parametrize(
    ("kwargs", "name", "error"),
    [
        ({"n": 0, "lag": 10}, "n", ValueError),
        ({"n": 2, "lag": 0}, "lag", ValueError),
        ({"n": 2, "lag": 10, "num_symbols": 0}, "num_symbols", ValueError),
        ({"n": 2, "lag": 10, "copy_length": 0}, "copy_length", ValueError),
        ({"n": 2, "lag": 1.5}, "lag", TypeError),
    ],
)
def test_copy_memory_bad_arguments(kwargs, name, error):
    with pytest.raises(error, match=rf"^{name} must be an integer >= \d+, got "):
        copy_memory(**kwargs)
