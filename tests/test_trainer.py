"""The trainer: exact resume after an interrupt, truncated BPTT, the NaN guard, clipping,
schedules, early stopping, progress output, run directories and loading."""

from __future__ import annotations

import io
import json
import math
import os
import signal
import warnings

import pytest
import torch

import rnnkit
from rnnkit.models import create_model, model_spec
from rnnkit.training import (
    StepOutput,
    StreamBatches,
    StreamObjective,
    SupervisedObjective,
    TensorBatches,
    TrainConfig,
    Trainer,
    TrainingError,
    TrainingInterrupted,
)
from rnnkit.training.optim import LearningRateSchedule
from rnnkit.training.progress import Progress
from rnnkit.training.run import read_metrics


def adding_data(n, length=12, seed=0):
    from rnnkit.data.synthetic import adding_problem

    return adding_problem(n, length, generator=torch.Generator().manual_seed(seed))


def small_regressor(cell="lstm", dropout=0.0):
    return create_model(
        "many_to_one",
        {"input": {"features": 2}, "encoder": {"cell": cell, "hidden_size": 16, "num_layers": 2, "dropout": dropout},
         "head_dropout": 0.2},
    )  # fmt: skip


def train_losses(run_dir):
    return [(r["step"], r["loss"]) for r in read_metrics(run_dir / "metrics.jsonl") if r["split"] == "train"]


# --- exact resume -----------------------------------------------------------------------
def run_adding(run_dir, *, callbacks=(), resume=False, quiet=True, **overrides):
    torch.manual_seed(123)
    model = small_regressor(dropout=0.3)
    x, y = adding_data(96)
    xv, yv = adding_data(32, seed=1)
    settings = dict(max_epochs=3, lr=5e-3, log_every=3, checkpoint_every=5, schedule="cosine", warmup_steps=3)
    config = TrainConfig(**{**settings, **overrides})
    trainer = Trainer(model, SupervisedObjective("mse"), config, run_dir, model_spec=model_spec(model),
                      quiet=quiet, callbacks=callbacks)  # fmt: skip
    result = trainer.fit(TensorBatches(x, y, batch_size=16, seed=4), TensorBatches(xv, yv, batch_size=16), resume=resume)
    return trainer, result


def interrupt_at(step):
    def callback(trainer, current):
        if current == step:
            os.kill(os.getpid(), signal.SIGINT)

    return callback


def test_deterministic_training_fills_no_new_tensor_and_puts_torchs_settings_back(tmp_path):
    """deterministic=True turns torch's deterministic algorithms on while training, without the NaN
    fill of every new tensor (about 5% of a small model's step, changing no result); after fit
    the process's settings are what they were."""
    before = (torch.are_deterministic_algorithms_enabled(), torch.utils.deterministic.fill_uninitialized_memory)
    seen = []

    def record(trainer, step):
        seen.append((torch.are_deterministic_algorithms_enabled(), torch.utils.deterministic.fill_uninitialized_memory))

    run_adding(tmp_path / "run", callbacks=[record], max_epochs=1)
    assert seen and set(seen) == {(True, False)}
    assert (torch.are_deterministic_algorithms_enabled(), torch.utils.deterministic.fill_uninitialized_memory) == before


@pytest.mark.parametrize("stop_at", [7, 12])  # mid-epoch between checkpoints; the last step of an epoch
def test_interrupted_run_resumes_exactly(tmp_path, stop_at):
    """SIGINT saves a checkpoint; the resumed run's losses and weights equal an uninterrupted run's."""
    full, _ = run_adding(tmp_path / "full")
    with pytest.raises(TrainingInterrupted, match=f"SIGINT at step {stop_at}: checkpoint saved"):
        run_adding(tmp_path / "cut", callbacks=[interrupt_at(stop_at)])
    assert max(s for s, _ in train_losses(tmp_path / "cut")) <= stop_at
    resumed, result = run_adding(tmp_path / "cut", resume=True)
    assert result.steps == 18
    assert train_losses(tmp_path / "cut") == train_losses(tmp_path / "full")
    val = lambda d: [r for r in read_metrics(d / "metrics.jsonl") if r["split"] == "val"]  # noqa: E731
    assert val(tmp_path / "cut") == val(tmp_path / "full")
    for (name, a), b in zip(full.model.state_dict().items(), resumed.model.state_dict().values()):
        assert torch.equal(a, b), name


def test_signal_handlers_are_restored_after_training(tmp_path):
    before = signal.getsignal(signal.SIGINT)
    run_adding(tmp_path / "run", max_epochs=1)
    assert signal.getsignal(signal.SIGINT) is before


def test_fresh_run_refuses_a_directory_with_checkpoints(tmp_path):
    run_adding(tmp_path / "run", max_epochs=1)
    with pytest.raises(ValueError, match="already holds checkpoints"):
        run_adding(tmp_path / "run", max_epochs=1)


def test_resume_without_checkpoint_is_a_clear_error(tmp_path):
    with pytest.raises(ValueError, match="nothing to resume"):
        run_adding(tmp_path / "empty", resume=True)


def test_corrupt_latest_checkpoint_falls_back_to_the_previous(tmp_path):
    run_adding(tmp_path / "run")  # checkpoints at steps 15 and 18 (last 3 kept, plus the best)
    latest = sorted((tmp_path / "run" / "checkpoints").glob("step-*"))[-1]
    weights = latest / "model.safetensors"
    weights.write_bytes(weights.read_bytes()[:100])
    with pytest.warns(UserWarning, match=latest.name):
        _, result = run_adding(tmp_path / "run", resume=True, max_epochs=4)
    assert result.steps == 24


# --- the run directory and loading -------------------------------------------------------
def test_run_directory_holds_everything_and_load_rebuilds_the_model(tmp_path):
    trainer, result = run_adding(tmp_path / "run", max_epochs=2)
    run = tmp_path / "run"
    config = json.loads((run / "config.json").read_text())
    assert config["model"]["name"] == "many_to_one" and config["train"]["lr"] == 5e-3
    assert (run / "plots" / "loss.png").stat().st_size > 1000
    assert "best val_loss" in (run / "summary.md").read_text()
    model = rnnkit.load(run)
    assert not model.training
    xv, yv = adding_data(32, seed=1)
    loss = torch.nn.functional.mse_loss(model(xv).squeeze(-1), yv).item()
    assert loss == pytest.approx(result.best["val_loss"], rel=1e-5)  # the best checkpoint's weights
    assert not any(run.rglob("*.pt")) and not any(run.rglob("*.pkl"))


def test_load_rejects_a_directory_without_a_model(tmp_path):
    with pytest.raises(FileNotFoundError, match="does not exist"):
        rnnkit.load(tmp_path / "missing")
    (tmp_path / "bad").mkdir()
    (tmp_path / "bad" / "config.json").write_text("{}")
    with pytest.raises(ValueError, match="no model spec"):
        rnnkit.load(tmp_path / "bad")


# --- truncated BPTT -----------------------------------------------------------------------
def char_lm(vocab=5, hidden=8):
    return create_model(
        "many_to_many",
        {"input": {"vocab_size": vocab, "embedding_dim": 4}, "encoder": {"cell": "gru", "hidden_size": hidden},
         "outputs": vocab},
    )  # fmt: skip


def test_stream_windows_carry_the_state_of_one_long_run():
    """k1 = k2: the windows' outputs, state carried, equal one pass over each whole stream."""
    torch.manual_seed(0)
    model = char_lm().eval()
    stream = torch.randint(0, 5, (101,))
    batches = StreamBatches(stream, batch_size=4, k1=5)
    state, pieces = None, []
    for window in batches.epoch(0):
        out, state = model(window.inputs, state)
        pieces.append(out)
    whole, _ = model(batches.inputs[:, : 5 * len(batches)])
    torch.testing.assert_close(torch.cat(pieces, dim=1), whole)
    # stream b is the b-th contiguous slice; targets are the next element
    assert torch.equal(batches.inputs[1, :3], stream[25:28]) and torch.equal(batches.targets[1, :3], stream[26:29])


def test_tbptt_k2_window_carries_after_k1_and_backpropagates_k2_steps():
    torch.manual_seed(0)
    model = char_lm().eval()
    stream = torch.randint(0, 5, (200,))
    batches = StreamBatches(stream, batch_size=2, k1=3, k2=7)
    objective = StreamObjective("cross_entropy")
    full, _ = model(batches.inputs)
    state = None
    for b, window in enumerate(batches.epoch(0)):
        out = objective(model, window, state)
        state = out.state
        # the carried state is the one-pass state after the window's first k1 steps
        _, expected = model(batches.inputs[:, : (b + 1) * 3])
        torch.testing.assert_close(state, expected)
        assert out.count == 2 * 3
    # the gradient of a window's loss reaches all k2 of its input steps and nothing before
    embedded = []

    def keep(module, inputs, output):
        output.retain_grad()
        embedded.append(output)

    window = next(batches.epoch(0, start=2))
    _, carried = model(batches.inputs[:, :6])
    model.input.embedding.register_forward_hook(keep)
    objective(model, window, carried.detach()).loss.backward()
    grads = torch.cat([e.grad.abs().sum(-1) for e in embedded], dim=1)  # (B, 3 + 4) steps of the window
    assert grads.shape[1] == 7 and (grads > 0).all()


def test_stateful_training_learns_a_periodic_stream(tmp_path):
    torch.manual_seed(0)
    model = char_lm()
    stream = torch.arange(600) % 5  # next symbol is predictable from the current one and the state
    config = TrainConfig(max_epochs=3, lr=2e-2, log_every=10)
    trainer = Trainer(model, StreamObjective(), config, tmp_path / "lm", model_spec=model_spec(model), quiet=True)
    result = trainer.fit(StreamBatches(stream, batch_size=4, k1=10, k2=15),
                         StreamBatches(stream, batch_size=4, k1=10))  # fmt: skip
    assert result.last_eval["val_loss"] < 0.2 * math.log(5)
    assert result.last_eval["val_accuracy"] > 0.95


# --- the NaN guard, clipping, schedules, early stopping ------------------------------------
class FlakyObjective:
    """Mean-squared error, except a NaN loss at the listed calls."""

    def __init__(self, bad_calls):
        self.bad_calls, self.calls = set(bad_calls), 0

    def __call__(self, model, batch, state=None):
        self.calls += 1
        x, y = batch
        loss = torch.nn.functional.mse_loss(model(x).squeeze(-1), y)
        if self.calls in self.bad_calls:
            loss = loss * float("nan")
        return StepOutput(loss, len(y))


def test_nan_guard_skips_bad_steps_and_stops_after_too_many(tmp_path):
    x, y = adding_data(64)
    model = small_regressor()
    before = {n: p.detach().clone() for n, p in model.named_parameters()}
    trainer = Trainer(model, FlakyObjective({1}), TrainConfig(max_epochs=1, max_steps=1, lr=1e-2), quiet=True)
    with pytest.warns(UserWarning, match="skipped step 1: loss is nan"):
        trainer.fit(TensorBatches(x, y, batch_size=16))
    for n, p in model.named_parameters():
        assert torch.equal(p, before[n]), f"{n} changed on a skipped step"

    trainer = Trainer(small_regressor(), FlakyObjective({2, 3, 4}), TrainConfig(max_epochs=1, max_bad_steps=3), quiet=True)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        with pytest.raises(TrainingError, match="loss is nan for 3 steps in a row"):
            trainer.fit(TensorBatches(x, y, batch_size=16))


def test_gradient_clipping_by_norm_bounds_the_update():
    x, y = adding_data(16)
    for clip in (1e-3, None):
        torch.manual_seed(0)
        model = small_regressor()
        before = torch.cat([p.detach().flatten().clone() for p in model.parameters()])
        config = TrainConfig(max_epochs=1, optimizer="sgd", momentum=0.0, lr=1.0, clip_norm=clip)
        Trainer(model, SupervisedObjective("mse"), config, quiet=True).fit(TensorBatches(x, y * 100, batch_size=16))
        step = (torch.cat([p.detach().flatten() for p in model.parameters()]) - before).norm().item()
        if clip is not None:
            assert step == pytest.approx(clip, rel=1e-4)
        else:
            assert step > 10 * 1e-3


def test_schedules_follow_their_curves():
    model = torch.nn.Linear(1, 1)
    optimizer = torch.optim.SGD(model.parameters(), lr=1.0)
    cosine = LearningRateSchedule(optimizer, TrainConfig(lr=1.0, schedule="cosine", warmup_steps=4, min_lr=0.1), 104)
    lrs = []
    for _ in range(104):
        lrs.append(cosine.lr)
        cosine.step()
    assert lrs[:4] == pytest.approx([0.25, 0.5, 0.75, 1.0])
    assert lrs[54] == pytest.approx(0.55)  # half-way through the cosine
    assert cosine.lr == pytest.approx(0.1)
    step = LearningRateSchedule(optimizer, TrainConfig(lr=1.0, schedule="step", step_size=10, gamma=0.5), 100)
    for _ in range(25):
        step.step()
    assert optimizer.param_groups[0]["lr"] == pytest.approx(0.25)
    plateau = LearningRateSchedule(optimizer, TrainConfig(lr=1.0, schedule="plateau", plateau_patience=2, gamma=0.1), 1)
    for metric in (1.0, 0.9, 0.95, 0.93):
        plateau.observe(metric)
    assert optimizer.param_groups[0]["lr"] == pytest.approx(0.1)
    restored = LearningRateSchedule(optimizer, TrainConfig(lr=1.0, schedule="plateau"), 1)
    restored.load_state_dict(json.loads(json.dumps(plateau.state_dict())))
    assert restored.lr == pytest.approx(0.1)


def test_early_stopping_stops_after_patience_evaluations_without_improvement(tmp_path):
    x, y = adding_data(32)
    noise = torch.rand(32)  # unlearnable validation targets: no lasting improvement
    config = TrainConfig(max_epochs=50, lr=1e-2, patience=2)
    trainer = Trainer(small_regressor(), SupervisedObjective("mse"), config, tmp_path / "run", quiet=True)
    result = trainer.fit(TensorBatches(x, y, batch_size=16), TensorBatches(x, noise * 100, batch_size=32))
    assert result.stopped_by == "early_stopping" and result.epochs < 50


def test_max_steps_and_bad_config():
    x, y = adding_data(64)
    result = Trainer(small_regressor(), SupervisedObjective("mse"), TrainConfig(max_steps=3), quiet=True).fit(
        TensorBatches(x, y, batch_size=16)
    )
    assert result.steps == 3 and result.stopped_by == "max_steps"
    with pytest.raises(ValueError, match="lr must be a positive number, got -1"):
        TrainConfig(lr=-1)
    with pytest.raises(ValueError, match="tbptt_k2 must be >= tbptt_k1"):
        StreamBatches(torch.arange(100), batch_size=2, k1=5, k2=3)
    with pytest.raises(ValueError, match="data too short for one batch"):
        StreamBatches(torch.arange(10), batch_size=4, k1=5)
    with pytest.raises(ValueError, match="loss must be one of"):
        SupervisedObjective("hinge")


def test_bf16_autocast_trains_where_supported():
    x, y = adding_data(32)
    config = TrainConfig(max_steps=2, precision="bf16")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # "not supported" on CPUs without bf16: fp32 then
        result = Trainer(small_regressor(), SupervisedObjective("mse"), config, quiet=True).fit(
            TensorBatches(x, y, batch_size=16)
        )
    assert math.isfinite(result.train_loss)


# --- progress output ---------------------------------------------------------------------
class FakeTerminal(io.StringIO):
    def isatty(self):
        return True


def test_progress_plain_lines_when_not_a_terminal_and_silence_when_quiet():
    stream = io.StringIO()
    progress = Progress(10, log_every=5, unit="samples", stream=stream)
    for step in range(1, 11):
        progress.update(step, loss=0.5, items=8, lr=1e-3, epoch=0)
    lines = stream.getvalue().splitlines()
    assert len(lines) == 2 and lines[0].startswith("epoch 1 step 5/10  loss 0.5000") and "samples/s" in lines[0]
    assert "eta" in lines[0]
    quiet = io.StringIO()
    progress = Progress(10, quiet=True, stream=quiet)
    progress.update(5, loss=0.5, items=8, lr=1e-3, epoch=0)
    progress.message("hello")
    assert quiet.getvalue() == ""
    terminal = FakeTerminal()
    progress = Progress(10, stream=terminal)
    progress.update(3, loss=0.25, items=8, lr=1e-3, epoch=0)
    progress.close()
    assert "loss 0.2500" in terminal.getvalue() and "3/10" in terminal.getvalue()


def test_gradient_diagnostics_are_logged_at_the_interval_without_changing_training(tmp_path):
    """Every k steps the log gets dL/dh_t decay, Jacobian norms and parameter gradient norms;
    the extra measuring pass runs on a forked RNG, so the training losses stay the same."""
    plain, _ = run_adding(tmp_path / "plain", max_epochs=1)
    watched, _ = run_adding(tmp_path / "watched", max_epochs=1, gradient_diagnostics_every=2)
    assert train_losses(tmp_path / "watched") == train_losses(tmp_path / "plain")
    records = [r for r in read_metrics(tmp_path / "watched" / "metrics.jsonl") if r["split"] == "diagnostics"]
    assert [r["step"] for r in records] == [1, 3, 5]
    first = records[0]
    assert 0 < first["grad/hidden/decay_rate"] < 10
    assert any(k.startswith("jacobian/") for k in first) and first["grad/global_norm"] > 0
    assert "grad/param/encoder.weight_hh_l0" in first


def test_threads_setting_applies_during_training_only():
    x, y = adding_data(32)
    seen = []
    before = torch.get_num_threads()
    config = TrainConfig(max_steps=2, threads=1)
    Trainer(small_regressor(), SupervisedObjective("mse"), config, quiet=True,
            callbacks=[lambda trainer, step: seen.append(torch.get_num_threads())]).fit(TensorBatches(x, y, batch_size=16))
    assert seen == [1, 1] and torch.get_num_threads() == before
    with pytest.raises(ValueError, match="threads must be a positive integer, got 0"):
        TrainConfig(threads=0)


def test_progress_with_a_time_limit_shows_the_steps_that_fit(monkeypatch):
    """A run limited to 10 s that does 10 steps per second shows about 100 steps, not the planned 10,000."""
    from rnnkit.training import progress as module

    now = [100.0]
    monkeypatch.setattr(module.time, "perf_counter", lambda: now[0])
    stream = io.StringIO()
    progress = Progress(10_000, log_every=5, stream=stream, time_limit=10.0)
    for step in range(1, 11):
        now[0] += 0.1
        progress.update(step, loss=0.5, items=8, lr=1e-3, epoch=0)
    last = stream.getvalue().splitlines()[-1]
    assert "step 10/100 " in last and "eta 0m09s" in last


@pytest.mark.parametrize("name,message", [
    ("tpu", "train.device must be 'auto' or a torch device"),
    ("xpu", "train.device 'xpu' is not available"),
    pytest.param("cuda", "a CPU-only build, or no GPU", marks=pytest.mark.skipif(
        torch.cuda.is_available(), reason="a GPU is here")),
])  # fmt: skip
def test_a_device_this_torch_lacks_is_one_clear_error(name, message, tmp_path, capsys):
    from rnnkit.cli import main
    from rnnkit.training.trainer import resolve_device

    with pytest.raises(ValueError, match=message):
        resolve_device(name)
    assert resolve_device("cpu") == torch.device("cpu")
    code = main(["train", "adding", "--run-dir", str(tmp_path / "run"), "--quiet", f"--train.device={name}"])
    err = capsys.readouterr().err
    assert code == 2 and err.count("\n") == 1 and message in err, err


# --- issue 13: resume of a finished run, time-budget schedules, units, signals, summaries ----
def run_files(run_dir):
    return {p.relative_to(run_dir): p.read_bytes() for p in sorted(run_dir.rglob("*")) if p.is_file()}


@pytest.mark.parametrize("limits", [dict(max_steps=10), dict(max_epochs=2), dict(max_steps=8, max_minutes=1e-6)])
def test_resuming_a_finished_run_says_so_and_changes_nothing(tmp_path, capsys, limits):
    """No extra step, every file byte-identical (model.safetensors, checkpoints, metrics), one line said."""
    run = tmp_path / "run"
    _, first = run_adding(run, **limits)
    before = run_files(run)
    trainer, again = run_adding(run, resume=True, quiet=False, **limits)
    assert again.steps == first.steps and again.stopped_by == first.stopped_by
    assert run_files(run) == before
    err = capsys.readouterr().err
    assert f"is already complete: {first.steps} steps, stopped by {first.stopped_by}" in err
    assert err.count("\n") == 1


def test_resume_says_the_step_it_restored_and_removes_leftovers_of_a_killed_save(tmp_path, capsys):
    run = tmp_path / "run"
    with pytest.raises(TrainingInterrupted):
        run_adding(run, callbacks=[interrupt_at(7)])
    for name in (".tmp-step-00000010-4194999-0123abcd", ".tmp-old-step-00000005-4194998-89abcdef"):  # dead pids
        (run / "checkpoints" / name).mkdir()
    capsys.readouterr()
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # no warning per leftover
        run_adding(run, resume=True, quiet=False, max_steps=9)
    err = capsys.readouterr().err
    assert "removed 2 partial checkpoint(s) left by an interrupted save" in err
    assert "resumed from step 7 (epoch 2, batch 1)" in err and "step-00000007" in err
    assert not list((run / "checkpoints").glob(".tmp-*"))


def test_sigterm_saves_a_checkpoint_and_is_reported_as_sigterm(tmp_path):
    def terminate(trainer, step):
        if step == 4:
            os.kill(os.getpid(), signal.SIGTERM)

    with pytest.raises(TrainingInterrupted, match="SIGTERM at step 4: checkpoint saved") as raised:
        run_adding(tmp_path / "run", callbacks=[terminate])
    assert raised.value.signal_number == signal.SIGTERM
    assert raised.value.checkpoint.name == "step-00000004"


@pytest.mark.parametrize("signum,code", [(signal.SIGINT, 130), (signal.SIGTERM, 143)])
def test_the_command_line_exits_128_plus_the_signal(monkeypatch, capsys, signum, code):
    from rnnkit.apps import train as train_module
    from rnnkit.cli import main

    def interrupted(*args, **kwargs):
        raise TrainingInterrupted(f"interrupted by {signal.Signals(signum).name} at step 3: checkpoint saved", None,
                                  signum)  # fmt: skip

    monkeypatch.setattr(train_module, "train", interrupted)
    assert main(["train", "adding", "--quiet"]) == code
    assert signal.Signals(signum).name in capsys.readouterr().err


def test_summary_reports_the_fraction_of_an_epoch_honestly(tmp_path):
    run_adding(tmp_path / "run", max_steps=8)  # 6 batches an epoch: 1.33 epochs
    summary = (tmp_path / "run" / "summary.md").read_text()
    assert "- steps: 8 (1.33 epochs of 6 batches)" in summary
    run_adding(tmp_path / "short", max_steps=3)
    assert "- steps: 3 (0.50 of an epoch of 6 batches)" in (tmp_path / "short" / "summary.md").read_text()


class FakeClock:
    """``time.perf_counter`` that moves only when a training step ends: 0.05 s a step."""

    def __init__(self, monkeypatch):
        from rnnkit.training import trainer as module

        self.now = 1000.0
        monkeypatch.setattr(module.time, "perf_counter", lambda: self.now)

    def tick(self, trainer, step):
        self.now += 0.05


def test_cosine_under_a_time_budget_is_laid_over_the_steps_that_fit(tmp_path, monkeypatch):
    """3 s at 0.05 s a step is 60 steps: the learning rate reaches min_lr by the end of the budget,
    not over the 600 steps that max_epochs=100 would plan."""
    clock = FakeClock(monkeypatch)
    lrs = {}
    record = lambda trainer, step: lrs.__setitem__(step, trainer.optimizer.param_groups[0]["lr"])  # noqa: E731
    trainer, result = run_adding(tmp_path / "run", callbacks=[record, clock.tick], max_epochs=100, max_minutes=0.05,
                                 checkpoint_every=None)  # fmt: skip
    assert result.stopped_by == "max_minutes" and 58 <= result.steps <= 62
    assert lrs[result.steps] < 0.02 * 5e-3  # the last step's learning rate is (nearly) min_lr=0
    assert 0.4 * 5e-3 < lrs[30] < 0.6 * 5e-3  # half way through the budget, about half the rate
    assert trainer.schedule.total_steps == pytest.approx(result.steps, abs=2)


def test_a_time_budget_schedule_resumes_on_the_plan_it_was_on(tmp_path, monkeypatch):
    """The plan is stored in the checkpoint: the first step after a resume has the learning rate
    the uninterrupted run had there, not one planned over max_epochs again."""
    settings = dict(max_epochs=100, max_minutes=0.05, checkpoint_every=None)
    runs = {}
    for name, interrupt in (("full", None), ("cut", interrupt_at(30))):
        clock = FakeClock(monkeypatch)
        lrs = runs.setdefault(name, {})
        record = lambda trainer, step, lrs=lrs: lrs.__setitem__(step, trainer.schedule.lr)  # noqa: E731
        callbacks = [record, clock.tick] + ([interrupt] if interrupt else [])
        try:
            run_adding(tmp_path / name, callbacks=callbacks, **settings)
        except TrainingInterrupted as interrupted:
            saved = rnnkit.training.checkpoint.load_checkpoint(interrupted.checkpoint)
            run_adding(tmp_path / name, callbacks=[record, clock.tick], resume=True, **settings)
    full, cut = runs["full"], runs["cut"]
    assert saved.scheduler_state["total_steps"] == 62  # the plan at step 30: 30 steps in 1.45 s of 3
    assert cut[30] == full[30]
    # the resumed run's clock lacks the tick the interrupted one gave after its last step's time was
    # taken, so its next plan may differ by a step; planned over max_epochs again it would be 0.0049
    assert cut[31] == pytest.approx(full[31], rel=0.05)
    assert cut[max(cut)] < 0.02 * 5e-3  # and it still ends at min_lr


def test_throughput_counts_the_unit_the_app_names():
    """A many-to-many regression scores every step (count = B * T) but its progress counts
    sequences; each app's objective says how many of its unit a batch holds."""
    from rnnkit.apps.forecast.config import ForecastConfig
    from rnnkit.apps.forecast.model import ForecastObjective, forecast_model
    from rnnkit.apps.seq2seq.sequences import Seq2SeqObjective

    per_step = create_model("many_to_many", {"input": {"features": 1}, "encoder": {"hidden_size": 4}, "outputs": 1})
    x, y = torch.randn(5, 9, 1), torch.randn(5, 9)
    out = SupervisedObjective("mse")(per_step, (x, y))
    assert (out.count, out.examples) == (45, 5)  # detect's chunks, tag's sentences: 5, not 45

    config = ForecastConfig(horizon=4, lookback=6)
    windows = forecast_model(config, 1, {"encoder": {"hidden_size": 4}})
    out = ForecastObjective(config)(windows, (torch.randn(3, 6, 1), torch.randn(3, 4)))
    assert (out.count, out.examples) == (12, 3)

    from rnnkit.apps.seq2seq import FIRST_SYMBOL
    from rnnkit.models import EncoderConfig, EncoderDecoder, EncoderDecoderConfig, InputConfig

    seq = EncoderDecoder(EncoderDecoderConfig(
        source=InputConfig(vocab_size=9, embedding_dim=4), target_vocab_size=9, embedding_dim=4,
        encoder=EncoderConfig(cell="gru", hidden_size=4), decoder=EncoderConfig(cell="gru", hidden_size=4),
    ))  # fmt: skip
    source, target = torch.randint(FIRST_SYMBOL, 9, (2, 5)), torch.randint(FIRST_SYMBOL, 9, (2, 4))
    out = Seq2SeqObjective()(seq, (source, target))
    assert (out.count, out.examples) == (8, 2)

    seen = []

    class Recording(Progress):
        def update(self, step, *, items, **kwargs):
            seen.append(items)

    import rnnkit.training.trainer as module

    original, module.Progress = module.Progress, Recording
    try:
        Trainer(per_step, SupervisedObjective("mse"), TrainConfig(max_steps=2), quiet=True).fit(
            TensorBatches(torch.randn(8, 9, 1), torch.randn(8, 9), batch_size=4))
    finally:
        module.Progress = original
    assert seen == [4, 4]


def test_augmented_batches_are_seeded_by_epoch_and_batch_so_a_resume_sees_the_same():
    from rnnkit.training import AugmentedBatches

    class Noisy(AugmentedBatches):
        def transform(self, batch, generator):
            (x,) = batch
            return x + torch.rand(x.shape, generator=generator)

    batches = Noisy(torch.zeros(10, 2), batch_size=3, seed=4)
    full = list(batches.epoch(1))
    resumed = list(batches.epoch(1, start=2))
    assert len(full) == len(batches) == 4 and len(resumed) == 2
    for a, b in zip(full[2:], resumed):
        torch.testing.assert_close(a, b)  # the augmentation of batch 2 does not depend on batches 0-1
    assert not torch.equal(full[0], next(iter(batches.epoch(2))))  # another epoch, other noise
    half = Noisy(torch.zeros(10, 2), batch_size=4, seed=4).shard(0, 2)
    assert isinstance(half, Noisy) and len(half) == 3 and next(iter(half.epoch(1))).shape[0] == 2
