"""The benchmark's bookkeeping: configurations, FLOP counts, rows, JSON and the command line.

Timings are never asserted (they belong to the benchmark's output); what can be checked is that
the numbers are computed from the right counts, every field is filled, and the contenders of a
row really share their weights.
"""

import dataclasses
import json
import math

import pytest
import torch

import rnnkit
from rnnkit import bench, cli
from rnnkit import _native
from rnnkit.scan import _compiled
from rnnkit.bench import CONFIGS, Case, Config, case_flops, forward_flops, parse_configs, select_cases
from rnnkit.bench import _measure

TINY_MACHINE_SIZE = 64  # n of the matmul that stands for the peak in these tests


@pytest.fixture(scope="module")
def machine():
    return bench.measure_machine("cpu", matmul_size=TINY_MACHINE_SIZE)


# -----------------------------------------------------------------------------
# FLOPs, by hand


@pytest.mark.parametrize(
    "args, expected",
    [
        # 2 * G * H * (I + H) * B * T
        (("lstm", 256, 512, 32, 50), 2 * 4 * 512 * (256 + 512) * 32 * 50),  # config 6
        (("lstm", 256, 512, 32, 50), 5_033_164_800),
        (("gru", 1024, 1024, 32, 1500), 603_979_776_000),  # config 4, forward
        (("rnn_relu", 1760, 1760, 16, 50), 9_912_320_000),  # config 5
        (("rnn_tanh", 1760, 1760, 16, 50), 9_912_320_000),
        # two layers: the second reads H inputs: 2*4*200*(250+200)*15 + 2*4*200*(200+200)*15
        (("lstm", 250, 200, 1, 15, 2), 20_400_000),
        # minGRU: two input blocks, no recurrent matmul
        (("mingru", 256, 256, 16, 512), 2 * 2 * 256 * 256 * 16 * 512),
    ],
)
def test_forward_flops_by_hand(args, expected):
    assert forward_flops(*args) == expected


def test_deepbench_convention_leaves_out_the_input_projection():
    assert forward_flops("lstm", 250, 200, 1, 15, 2, input_projection=False) == 9_600_000  # 2*4*200*200*15*2
    assert forward_flops("gru", 7, 10, 2, 3, input_projection=False) == 2 * 3 * 10 * 10 * 2 * 3
    assert forward_flops("mingru", 256, 256, 16, 512, input_projection=False) == 0


def test_forward_flops_with_a_projection():
    # layer 1: 2*4*H*(I + P) + 2*H*P; layer 2 reads P inputs
    H, P, I, B, T = 10, 4, 7, 2, 3
    per_layer = lambda inputs: (2 * 4 * H * (inputs + P) + 2 * H * P) * B * T  # noqa: E731
    assert forward_flops("lstm", I, H, B, T, 2, proj_size=P) == per_layer(I) + per_layer(P)
    case = Case("lstm", H, B, T, "train", input_size=I, options=(("proj_size", P),))
    assert case_flops(case) == 3 * per_layer(I)


def test_training_counts_three_forwards_and_a_step_one():
    train = Case("gru", 1024, 32, 1500, "train")
    assert case_flops(train) == 1_811_939_328_000
    assert case_flops(Case("lstm", 512, 1, 1, "step")) == 2 * 4 * 512 * 1024  # one step, B=1
    assert case_flops(Case("lstm", 512, 16, 25, "infer")) == forward_flops("lstm", 512, 512, 16, 25)


# -----------------------------------------------------------------------------
# configurations


def test_configurations_follow_the_reference():
    assert [c for c in CONFIGS][:9] == [str(i) for i in range(1, 10)]
    (one,) = CONFIGS["1"].cases
    assert (one.kind, one.hidden_size, one.batch, one.steps, one.mode) == ("lstm", 1024, 64, 25, "train")
    six = {c.mode: c for c in CONFIGS["6"].cases}
    assert set(six) == {"train", "infer"}
    assert (six["train"].input_size, six["train"].hidden_size) == (256, 512)
    assert {c.kind for c in CONFIGS["5"].cases} == {"rnn_relu", "rnn_tanh"}
    assert {c.steps for c in CONFIGS["9"].cases} == {512, 4096}
    small = CONFIGS["8"].cases[-1]
    assert (small.input_size, small.hidden_size, small.layers, small.batch, small.steps) == (250, 200, 2, 1, 15)
    assert all(c.config == cid for cid, cfg in CONFIGS.items() for c in cfg.cases + cfg.quick)


def test_quick_subset_is_smaller():
    quick = select_cases(None, quick=True)
    with_quick = {c.config for c in quick}
    assert {"2", "3", "4", "5", "6", "7", "8", "9", "10", "11", "12", "13"} <= with_quick and "1" not in with_quick
    assert max(c.steps for c in quick if c.config == "3") < CONFIGS["3"].cases[0].steps
    assert {c.steps for c in quick if c.config == "9"} == {512}
    assert [c.label for c in quick if c.config == "8"] == ["LSTM I250 H200 L2 B1 T15"]


def test_parse_configs():
    assert parse_configs("2, 6,2") == ["2", "6"]
    assert parse_configs([3, "10"]) == ["3", "10"]
    assert parse_configs(None) == list(CONFIGS)
    with pytest.raises(ValueError, match=r"configs must be .* got '2,42'"):
        parse_configs("2,42")
    with pytest.raises(ValueError, match="configs must be"):
        parse_configs("")
    with pytest.raises(ValueError, match="no --quick variant"):
        select_cases("1", quick=True)


def test_case_labels_and_checks():
    assert Case("lstm", 512, 32, 50, "train", input_size=256).label == "LSTM I256 H512 B32 T50"
    assert Case("gru", 256, 32, 200, "train", options=(("zoneout", 0.1),)).label == "GRU H256 B32 T200 zoneout=0.1"
    assert Case("lstm", 256, 1, 1, "step").label == "LSTM H256 B1"
    with pytest.raises(ValueError, match="kind must be one of"):
        Case("transformer", 8, 1, 1, "train")
    with pytest.raises(ValueError, match="mode must be one of"):
        Case("lstm", 8, 1, 1, "eval")
    with pytest.raises(ValueError, match="hidden_size must be a positive integer"):
        Case("lstm", 0, 1, 1, "train")
    assert Case("gru", 256, 1, 1, "step", layers=2).label == "GRU H256 L2 B1"
    with pytest.raises(ValueError, match="mode='step'"):
        Case("lstm", 8, 1, 1, "step", options=(("layer_norm", True),))
    with pytest.raises(ValueError, match="mode='step'"):
        Case("lstm", 8, 1, 2, "step")


def test_register_config_rejects_duplicates():
    with pytest.raises(ValueError, match="already registered"):
        bench.register_config(Config("2", "again", ()))


# -----------------------------------------------------------------------------
# contenders compute the same thing


@pytest.mark.parametrize("kind", ["lstm", "gru", "rnn_relu"])
def test_contenders_share_weights(kind):
    case = Case(kind, 6, 2, 4, "infer", input_size=5, layers=2)
    ours, reference, loop = bench.build_contenders(case, torch.device("cpu"))
    x = torch.randn(4, 2, 5)
    with torch.no_grad():
        expected = reference.module(x)[0]
        torch.testing.assert_close(ours.module(x)[0], expected)
        torch.testing.assert_close(loop.module(x)[0], expected)
    compiled = kind != "lstm" and _native.ops() is not None  # plain GRU/Elman on CPU: rnnkit's C++ loop
    assert ours.path == ("compiled" if compiled else "fused") and loop.path == "loop"


def test_loop_reference_is_the_autograd_step_loop():
    case = Case("gru", 6, 2, 4, "train", backend="loop")
    ours, _, loop = bench.build_contenders(case, torch.device("cpu"))
    assert ours.name == "rnnkit.GRU(backend='loop')" and ours.path in ("compiled", "bptt", "loop")
    assert loop.path == "loop"
    assert bench.layer_path(loop.module, torch.randn(4, 2, 6)) == "loop"
    with pytest.raises(ValueError, match="backend must be one of"):
        Case("gru", 6, 2, 4, "train", backend="cudnn")


@pytest.mark.parametrize(
    "kind, options",
    [
        ("lstm", (("layer_norm", True), ("peepholes", True))),
        ("gru", (("zoneout", 0.1), ("reset_after", False))),
        ("lstm", (("proj_size", 3),)),
    ],
)
def test_loop_reference_is_the_same_cell_with_its_options(kind, options):
    """The loop reference is the same layer (options, weights) held on the autograd step loop."""
    case = Case(kind, 6, 2, 4, "infer", input_size=5, options=options)
    ours, _, loop = bench.build_contenders(case, torch.device("cpu"))
    assert loop.path == "loop" and bench.layer_path(loop.module, torch.randn(4, 2, 5)) == "loop"
    assert all(getattr(loop.module._cells[0], name) == value for name, value in options)
    x = torch.randn(4, 2, 5)
    with torch.no_grad():
        torch.testing.assert_close(loop.module(x)[0], ours.module(x)[0])


def test_layer_path_follows_autocast():
    """Under bf16 autocast the compiled loop steps aside to torch's kernel and the hand-written BPTT
    stays; the row's path says so."""
    x = torch.randn(4, 2, 6)
    bf16 = lambda: torch.autocast("cpu", dtype=torch.bfloat16)  # noqa: E731
    options = rnnkit.GRU(6, 6, zoneout=0.1)
    assert bench.layer_path(options, x) == bench.layer_path(options, x, bf16) == "bptt"
    plain = rnnkit.GRU(6, 6)
    assert bench.layer_path(plain, x) == ("compiled" if _compiled.applies(x) else "fused")
    assert bench.layer_path(plain, x, bf16) == "fused"


@pytest.mark.parametrize("kind", ["lstm", "gru"])
@pytest.mark.parametrize("layers", [1, 2])
def test_step_contenders_share_weights(kind, layers):
    """The references are one cell per layer with the layer's weights, each h the next one's input."""
    case = Case(kind, 6, 1, 1, "step", input_size=5, layers=layers)
    ours, reference, cells = bench.build_contenders(case, torch.device("cpu"))
    assert reference.name == ("" if layers == 1 else f"{layers} x ") + f"torch.nn.{kind.upper()}Cell"
    x = torch.randn(1, 5)
    with torch.no_grad():
        _, state = ours.module.step(x)
        state = state if isinstance(state, tuple) else (state,)
        for stack in (reference.module, cells.module):
            inputs = x
            for index, cell in enumerate(stack):
                out = cell(inputs)
                parts = out if isinstance(out, tuple) else (out,)
                for got, expected in zip(parts, state, strict=True):
                    torch.testing.assert_close(got, expected[index])
                inputs = parts[0]
    assert ours.path == ("compiled" if _native.ops() is not None else "fused")


def test_interleaved_timing_rotates_and_counts():
    order = []
    calls = [lambda: order.append("a"), lambda: order.append("b"), lambda: order.append("c")]
    samples = bench.time_interleaved(calls, warmup=0, reps=2, min_rep_s=0.0)
    assert order == ["a", "b", "c", "b", "c", "a"]
    assert [len(s) for s in samples] == [2, 2, 2]


# -----------------------------------------------------------------------------
# a tiny run


TINY = [
    Case("lstm", 8, 2, 3, "train", input_size=5),
    Case("lstm", 8, 2, 3, "infer", layers=2),
    Case("gru", 8, 2, 3, "train", options=(("zoneout", 0.1),)),
    Case("rnn_tanh", 8, 2, 3, "train"),
    Case("lstm", 8, 2, 3, "train", options=(("layer_norm", True),)),
    Case("lstm", 8, 1, 1, "step"),
    Case("mingru", 8, 2, 40, "train"),
]


@pytest.fixture(scope="module")
def tiny_rows(machine):
    return bench.run(TINY, reps=1, warmup=0, dtypes="fp32", machine=machine)


def test_tiny_run_fills_every_field(tiny_rows):
    assert len(tiny_rows) == len(TINY)
    for row in tiny_rows:
        for field in dataclasses.fields(row):
            value = getattr(row, field.name)
            if isinstance(value, float):
                assert math.isfinite(value), (row.case, field.name, value)
        assert row.ms > 0 and row.torch_ms > 0 and row.loop_ms > 0
        assert row.mem_mb >= 0
        assert row.vs_torch == pytest.approx(row.torch_ms / row.ms)
        assert row.vs_loop == pytest.approx(row.loop_ms / row.ms)
        assert row.gflops == pytest.approx(case_flops(TINY[tiny_rows.index(row)]) / row.ms / 1e6)
    paths = [r.path for r in tiny_rows]
    step = "compiled" if _native.ops() is not None else "fused"  # the LSTM's step: one compiled call
    assert paths[:2] == ["fused", "fused"] and paths[5:] == [step, "scan"]
    assert paths[3] == ("compiled" if _native.ops() is not None else "fused")  # plain Elman on CPU
    assert paths[2] == "bptt" and paths[4] in ("compiled", "bptt")  # zoneout GRU, layer-norm LSTM
    assert tiny_rows[0].loop_ref == "rnnkit.LSTM autograd step loop"
    assert tiny_rows[-1].torch_ref == "torch.nn.GRU" and tiny_rows[-1].loop_ref == "rnnkit.MinGRU stepped"
    assert tiny_rows[5].torch_ref == "torch.nn.LSTMCell"


def test_bf16_rows_where_the_hardware_has_it(machine):
    if not machine.bf16:
        with pytest.raises(ValueError, match="no native bf16"):
            bench.run(TINY[:1], dtypes="bf16", reps=1, warmup=0, machine=machine)
        return
    (row,) = bench.run(TINY[:1], dtypes="bf16", reps=1, warmup=0, memory=False, machine=machine)
    assert row.dtype == "bf16" and math.isfinite(row.ms)


def test_table_and_json(tiny_rows, machine, tmp_path):
    table = bench.format_table(tiny_rows, machine)
    assert f"{machine.threads} threads" in table and "2*G*H*(I+H)*B*T" in table
    assert "LSTM I5 H8 B2 T3" in table
    markdown = bench.format_table(tiny_rows, machine, markdown=True)
    assert markdown.count("\n| ") == len(tiny_rows) + 1
    path = tmp_path / "rows.json"
    bench.write_json(path, tiny_rows, machine, command="rnnkit bench")
    data = json.loads(path.read_text())
    assert data["machine"]["threads"] == machine.threads
    assert [r["case"] for r in data["rows"]] == [r.case for r in tiny_rows]
    assert data["rows"][0]["vs_torch"] == pytest.approx(tiny_rows[0].vs_torch)


# -----------------------------------------------------------------------------
# command line


def test_cli_help_has_an_example(capsys):
    assert cli.main(["bench", "--help"]) == 0
    out = capsys.readouterr().out
    assert "example:\n  rnnkit bench" in out
    assert "--quick" in out and "--json" in out


@pytest.mark.parametrize(
    "args, message",
    [
        (["--configs", "42"], "configs must be comma-separated ids"),
        (["--quick", "--configs", "1"], "no --quick variant"),
        (["--configs", "2", "--reps", "0"], "--reps must be a positive integer"),
        (["--configs", "2", "--device", "tpu"], "device must be"),
    ],
)
def test_cli_bad_arguments_exit_2_with_one_line(args, message, capsys):
    assert cli.main(["bench", *args]) == 2
    err = capsys.readouterr().err
    assert err.startswith("rnnkit: error: ") and message in err
    assert err.count("\n") == 1


def test_cli_writes_json(monkeypatch, tmp_path, capsys):
    monkeypatch.setattr(_measure, "MATMUL_SIZE", TINY_MACHINE_SIZE)
    monkeypatch.setitem(CONFIGS, "tiny", Config("tiny", "tiny", (Case("lstm", 8, 2, 3, "train", config="tiny"),)))
    path = tmp_path / "bench.json"
    code = cli.main(["bench", "--configs", "tiny", "--dtype", "fp32", "--reps", "1", "--warmup", "0", "--no-memory",
                     "--quiet", "--json", str(path)])  # fmt: skip
    assert code == 0
    out = capsys.readouterr().out
    assert "LSTM H8 B2 T3" in out
    data = json.loads(path.read_text())
    assert data["command"].startswith("rnnkit ")
    (row,) = data["rows"]
    assert row["config"] == "tiny" and row["mode"] == "train" and row["ms"] > 0 and row["mem_mb"] is None


@pytest.mark.parametrize("name", ["rnnkit.bench", "rnnkit.bench._run"])
def test_docstring_examples(name):
    import doctest
    import importlib

    result = doctest.testmod(importlib.import_module(name), optionflags=doctest.ELLIPSIS)
    assert result.attempted > 0 and result.failed == 0


def test_busy_machine_is_flagged(machine):
    import os

    quiet = dataclasses.replace(machine, load_average=(0.0, 0.0, 0.0), load_average_end=None)
    loaded = dataclasses.replace(machine, load_average=(10.0 * (os.cpu_count() or 1),) * 3)
    assert not any("WARNING" in line for line in bench.format_table([], quiet).splitlines())
    assert "WARNING: the machine was busy" in bench.format_table([], loaded)


def test_a_failing_case_becomes_a_row_with_its_error(monkeypatch, machine, tmp_path):
    from rnnkit.bench import _run

    def broken(case, device, dtype):
        raise RuntimeError("expected dtype BFloat16 but got float\nmore detail")

    monkeypatch.setattr(_run, "build_contenders", broken)
    (row,) = bench.run(TINY[:1], reps=1, warmup=0, dtypes="fp32", machine=machine)
    assert row.error == "RuntimeError: expected dtype BFloat16 but got float" and row.path == "error"
    assert math.isnan(row.ms) and math.isnan(row.vs_torch)
    assert "rows that failed:" in bench.format_table([row], machine)
    bench.write_json(tmp_path / "x.json", [row], machine)
    assert json.loads((tmp_path / "x.json").read_text())["rows"][0]["ms"] is None


# -----------------------------------------------------------------------------
# --quick: rows as they are measured, sized by time


def test_each_row_is_printed_and_flushed_as_it_is_measured(monkeypatch, capsys):
    """When the second case starts, the first case's row is already on stdout."""
    from rnnkit.bench import _run

    monkeypatch.setattr(_measure, "MATMUL_SIZE", TINY_MACHINE_SIZE)
    cases = (Case("lstm", 8, 2, 3, "train", config="tiny"), Case("gru", 8, 2, 3, "train", config="tiny"))
    monkeypatch.setitem(CONFIGS, "tiny", Config("tiny", "tiny", cases))
    seen_before = []
    real = _run.bench_case

    def watched(case, *args, **kwargs):
        seen_before.append(capsys.readouterr().out)
        return real(case, *args, **kwargs)

    monkeypatch.setattr(_run, "bench_case", watched)
    code = cli.main(["bench", "--configs", "tiny", "--dtype", "fp32", "--reps", "1", "--warmup", "0", "--no-memory",
                     "--quiet"])  # fmt: skip
    assert code == 0
    assert "cfg" in seen_before[0] and "LSTM H8 B2 T3" not in seen_before[0]  # the header, before any row
    assert "LSTM H8 B2 T3" in seen_before[1]  # the first row, before the second case ran
    rest = capsys.readouterr().out
    assert "GRU H8 B2 T3" in rest and "contenders" in rest and "at the end" in rest


def test_a_time_budget_shrinks_the_cases_that_would_not_fit(machine):
    """With a budget far too small, a long case is measured on fewer steps (at least MIN_STEPS)
    and says so in its label; a streaming step case is left alone."""
    from rnnkit.bench._run import TimeSizer

    sizer = TimeSizer(1.0, 2, machine)
    long = Case("lstm", 256, 16, 400, "train")
    shrunk, budget = sizer.fit(long)
    assert TimeSizer.MIN_STEPS <= shrunk.steps < 400 and shrunk.label.endswith(f"T{shrunk.steps}")
    assert 0 < budget <= 1.0
    step = Case("lstm", 8, 1, 1, "step")
    assert sizer.fit(step)[0] == step
    roomy = TimeSizer(1e6, 1, machine)
    assert roomy.fit(long)[0] == long  # the time to measure it in full
    rows = bench.run([Case("lstm", 8, 2, 40, "train")], warmup=0, memory=False, dtypes="fp32", machine=machine,
                     time_budget_s=0.5)  # fmt: skip
    assert rows[0].steps == TimeSizer.MIN_STEPS and rows[0].case.endswith("T10")
    # once the budget is spent, the cases left are not measured
    assert bench.run([Case("lstm", 8, 2, 40, "train")] * 3, warmup=0, memory=False, dtypes="fp32", machine=machine,
                     time_budget_s=1e-6) == []  # fmt: skip
    with pytest.raises(ValueError, match="time_budget_s must be a positive number"):
        TimeSizer(0, 1, machine)


def test_quick_promises_its_time_in_its_help(capsys):
    assert cli.main(["bench", "--help"]) == 0
    out = " ".join(capsys.readouterr().out.split())
    assert "sized to about 90 s (under two minutes)" in out and "--time-budget SECONDS" in out
