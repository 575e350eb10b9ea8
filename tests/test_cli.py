import argparse
import os
import subprocess
import sys

import pytest

from rnnkit import cli


def _run_cli(*args: str) -> subprocess.CompletedProcess:
    # One intra-op thread, as in conftest.py: tiny tensors, and busy-waiting threads beside
    # other work on a 2-core machine slow single calls down by orders of magnitude.
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    return subprocess.run(
        [sys.executable, "-m", "rnnkit.cli", *args],
        capture_output=True, text=True, timeout=300, env=env,
    )


def test_help_lists_commands_and_example(capsys):
    assert cli.main(["--help"]) == 0
    out = capsys.readouterr().out
    assert "compare" in out
    assert "examples:" in out


@pytest.mark.parametrize("name", sorted(cli.COMMANDS))
def test_every_subcommand_help_has_an_example(name, capsys):
    assert cli.main([name, "--help"]) == 0
    out = capsys.readouterr().out
    assert "example:" in out
    assert f"rnnkit {name}" in out.split("example:")[1]


def test_version(capsys):
    assert cli.main(["--version"]) == 0
    assert capsys.readouterr().out.startswith("rnnkit ")


def test_registry_rejects_duplicates():
    with pytest.raises(ValueError, match="already registered"):
        cli.command("compare", help="x", example="rnnkit demo")(lambda args: 0)


def test_registered_command_is_dispatched(monkeypatch, capsys):
    monkeypatch.setattr(cli, "COMMANDS", dict(cli.COMMANDS))

    def add_arguments(parser: argparse.ArgumentParser) -> None:
        parser.add_argument("--n", type=int, default=1)

    @cli.command("echo-n", help="print n", example="rnnkit echo-n --n 3",
                 add_arguments=add_arguments)
    def _echo(args):
        print(args.n)
        return 0

    assert cli.main(["echo-n", "--n", "3"]) == 0
    assert capsys.readouterr().out == "3\n"


@pytest.mark.parametrize(
    ("argv", "fragment"),
    [
        (["compare", "--length", "1"], "length must be an integer >= 2, got 1"),
        (["compare", "--steps", "0"], "steps must be an integer >= 1, got 0"),
        (["compare", "--hidden-size", "0"], "hidden_size must be an integer >= 1, got 0"),
        (["compare", "--seed", "-1"], "seed must be an integer >= 0, got -1"),
        (["compare", "--length", "ten"], "invalid int value"),
        (["no-such-command"], "invalid choice"),
        ([], "required"),
    ],
)
def test_bad_input_is_one_line_exit_2(argv, fragment, capsys):
    assert cli.main(argv) == 2
    captured = capsys.readouterr()
    lines = captured.err.splitlines()
    assert len(lines) == 1, captured.err
    assert lines[0].startswith("rnnkit: error: ")
    assert fragment in lines[0]


def test_keyboard_interrupt_exits_130(monkeypatch, capsys):
    def interrupted(args):
        raise KeyboardInterrupt

    monkeypatch.setitem(cli.COMMANDS, "compare", cli.Command(
        help="h", add_arguments=lambda parser: None, run=interrupted, example="rnnkit demo"))
    assert cli.main(["compare"]) == 130
    assert capsys.readouterr().err.splitlines() == ["rnnkit: interrupted"]


def test_subprocess_bad_argument_has_no_traceback():
    result = _run_cli("compare", "--length", "1")
    assert result.returncode == 2
    assert result.stderr.splitlines() == ["rnnkit: error: length must be an integer >= 2, got 1"]
    assert "Traceback" not in result.stderr + result.stdout


def test_subprocess_tiny_demo_prints_table():
    result = _run_cli("compare", "--steps", "3", "--length", "10", "--quiet")
    assert result.returncode == 0, result.stderr
    assert result.stderr == ""
    lines = result.stdout.splitlines()
    assert lines[0].split()[:3] == ["model", "parameters", "test"]
    assert any(line.startswith("LSTM") for line in lines)
    assert any(line.startswith("RNN (tanh)") for line in lines)


def test_demo_progress_log_lines(capsys):
    # stderr is not a terminal under pytest: plain log lines, then the table on stdout.
    assert cli.main(["compare", "--steps", "4", "--length", "6", "--hidden-size", "4"]) == 0
    captured = capsys.readouterr()
    assert "step      4/4" in captured.err
    assert "steps/s" in captured.err
    assert "LSTM" in captured.out and "solved" in captured.out


def test_demo_is_deterministic(capsys):
    tables = []
    for _ in range(2):
        assert cli.main(["compare", "--steps", "5", "--length", "8", "--hidden-size", "4",
                         "--seed", "7", "--quiet"]) == 0
        out = capsys.readouterr().out
        tables.append([line.rsplit("  ", 1)[0] for line in out.splitlines()])  # minus time
    assert tables[0] == tables[1]


def test_demo_restores_thread_count():
    import torch

    from rnnkit.experiments.compare import CompareConfig, run_compare

    before = torch.get_num_threads()
    run_compare(CompareConfig(length=4, steps=1, hidden_size=2, test_size=8, threads=2), progress="none")
    assert torch.get_num_threads() == before
