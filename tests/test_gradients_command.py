"""``rnnkit gradients``: files, the table against the JSON, one-line errors, and vanishing at init."""

from __future__ import annotations

import json
import math

import pytest

from rnnkit.cli import main
from rnnkit.experiments.gradients import GradientsConfig, run_gradients

TINY = ["--length", "10", "--steps", "3", "--hidden-size", "8", "--quiet"]


def _table_rows(out: str) -> dict[tuple[str, str], list[str]]:
    """``(cell, stage) -> the row's remaining columns`` from the printed table."""
    lines = out.splitlines()
    header = next(i for i, line in enumerate(lines) if line.startswith("cell"))
    rows = {}
    for line in lines[header + 2 :]:
        if line.startswith("figure:"):
            break
        cell, *rest = line.split()
        stage = " ".join(rest[:2]) if rest[0].isdigit() else rest[0]  # "init" or "3 steps"
        rows[(cell, stage)] = rest[2:] if rest[0].isdigit() else rest[1:]
    return rows


def test_writes_figure_and_numbers_and_prints_a_row_per_cell(tmp_path, capsys):
    code = main(["gradients", *TINY, "--out", str(tmp_path / "run")])
    out = capsys.readouterr().out
    assert code == 0
    png = tmp_path / "run" / "gradient_flow.png"
    assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    data = json.loads((tmp_path / "run" / "gradient_flow.json").read_text())

    assert list(data["cells"]) == ["rnn_tanh", "lstm", "gru"]
    assert data["sequence_length"] == 10 and data["distances"] == [1, 9]
    rows = _table_rows(out)
    assert sorted(rows) == sorted((c, s) for c in data["cells"] for s in ("init", "3 steps"))
    for cell, numbers in data["cells"].items():
        for stage, key in (("init", "init"), ("3 steps", "trained")):
            m = numbers[key]
            values = [*m["norms"], *m["ratios"], m["rate"], m["jacobian_mean"], m["jacobian_max"], m["val_loss"]]
            assert all(isinstance(v, float) and math.isfinite(v) for v in values), (cell, key)
            assert len(m["norms"]) == len(m["ratios"]) == 10 and m["ratios"][0] == 1.0
            assert all(n > 0 for n in m["norms"]) and m["jacobian_max"] >= m["jacobian_mean"] > 0
            # the table shows these numbers, rounded: r(1), r(9), rate, |J| mean, |J| max, val MSE
            shown = [float(v) for v in rows[(cell, stage)]]
            expected = [m["ratios"][1], m["ratios"][9], m["rate"], m["jacobian_mean"], m["jacobian_max"], m["val_loss"]]
            assert shown == pytest.approx(expected, rel=1e-2, abs=1e-4), (cell, stage)
        assert numbers["parameters"] > 0
    assert f"figure: {png}" in out


def test_copy_task_and_a_chosen_cell(tmp_path, capsys):
    code = main(["gradients", "--task", "copy", "--length", "3", "--steps", "2", "--hidden-size", "8",
                 "--cells", "gru", "--quiet", "--out", str(tmp_path)])  # fmt: skip
    out = capsys.readouterr().out
    assert code == 0 and "copy memory, lag=3 (23 steps)" in out and "recall" in out
    data = json.loads((tmp_path / "gradient_flow.json").read_text())
    assert list(data["cells"]) == ["gru"] and len(data["cells"]["gru"]["init"]["ratios"]) == 23
    assert 0.0 <= data["cells"]["gru"]["trained"]["val_accuracy"] <= 1.0


@pytest.mark.parametrize(
    "args,message",
    [
        (["--length", "1"], "length must be an integer >= 2, got 1"),
        (["--steps", "0"], "steps must be an integer >= 1, got 0"),
        (["--hidden-size", "-4"], "hidden_size must be an integer >= 1, got -4"),
        (["--cells", "lstm,lstmm"], "cells must be among"),
        (["--cells", "gru,gru"], "cells must not repeat"),
        (["--cells", ","], "cells must be a non-empty list"),
        (["--task", "sort"], "argument --task: invalid choice: 'sort'"),
        (["--length", "ten"], "argument --length: invalid int value: 'ten'"),
    ],
)
def test_bad_arguments_give_one_line_and_exit_2(tmp_path, capsys, args, message):
    code = main(["gradients", "--quiet", "--out", str(tmp_path), *args])
    err = capsys.readouterr().err
    assert code == 2
    assert message in err and err.count("\n") == 1 and "Traceback" not in err
    assert not any(tmp_path.iterdir())  # nothing written


def test_out_that_is_a_file_fails_before_the_run(tmp_path, capsys):
    taken = tmp_path / "taken"
    taken.write_text("")
    assert main(["gradients", *TINY, "--out", str(taken)]) == 2
    err = capsys.readouterr().err
    assert "out must be a directory, got the file" in err and err.count("\n") == 1


def test_help_shows_an_example(capsys):
    assert main(["gradients", "--help"]) == 0
    assert "example:\n  rnnkit gradients --length" in capsys.readouterr().out


def test_tanh_rnn_gradient_vanishes_at_initialisation():
    # torch.nn's default init, U(-1/sqrt(H), 1/sqrt(H)): measured rates 0.49-0.61 per step at T=30
    # for H in {8, 16, 64} and seeds 0-3, so the gradient from the loss shrinks ~1e-7 over 29 steps
    for seed in (0, 1):
        config = GradientsConfig(length=30, steps=1, hidden_size=16, seed=seed, cells=("rnn_tanh",),
                                 train_size=64, val_size=64, probe_size=64)  # fmt: skip
        before = run_gradients(config).results[0].before
        assert before.rate < 0.8, seed
        assert before.ratios[29] < 1e-3, seed
        # geometric: the fitted rate predicts the far end within two orders of magnitude
        assert 1e-2 < before.ratios[29] / before.rate**29 < 1e2, seed


def test_module_docstring_example_runs():
    import doctest

    import rnnkit.experiments.gradients as module

    result = doctest.testmod(module, optionflags=doctest.ELLIPSIS | doctest.NORMALIZE_WHITESPACE)
    assert result.attempted > 0 and result.failed == 0
