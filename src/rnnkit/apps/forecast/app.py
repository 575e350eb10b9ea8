"""``rnnkit train forecast`` (the app: prepare, calibrate, backtest, report) and ``rnnkit forecast RUN_DIR``."""

from __future__ import annotations

import argparse
import json
import sys
import warnings
from dataclasses import replace
from pathlib import Path
from typing import Any

import numpy as np
from torch import Tensor, nn

from ..._io import atomic_write_text, read_json, run_file
from ...config import to_dict
from ...training import TensorBatches
from ..base import App, Prepared, Run
from ..commands import Command, check_output_path
from . import many
from .backtest import backtest, format_scores
from .calibration import Calibration, calibrate
from .config import ForecastConfig, interval_label
from .data import configured_series, fit_scaler, resolve, training_windows
from .forecaster import CALIBRATION_FILE, FORECAST_FILE, PLOT_FILE, SCALER_FILE, ForecastRun, load_run
from .model import ForecastObjective, fit_model, forecast_model
from .plots import backtest_figure


class ForecastApp(App):
    name = "forecast"
    help = "time-series forecasting with intervals, rolling-origin backtest and baselines (needs rnnkit[timeseries])"
    example = "rnnkit train forecast --data sales.csv --time-column date --target sales --horizon 12"
    config_class = ForecastConfig
    model_name = "many_to_one"
    default_model = {"encoder": {"cell": "lstm", "hidden_size": 64}}
    default_train = {"lr": 3e-3, "max_epochs": 150, "clip_norm": 1.0, "log_every": 50}
    arguments = {"--data": "task.data", "--time-column": "task.time_column", "--target": "task.target",
                 "--covariates": "task.covariates", "--horizon": "task.horizon",
                 "--id-column": "task.id_column"}  # fmt: skip

    def prepare(self, config: ForecastConfig, model_settings: dict[str, Any], seed: int) -> Prepared:
        if config.id_column is not None:  # many series, one global model
            return self._prepare_many(config, model_settings, seed)
        frame, source, season = configured_series(config)
        setup = resolve(frame, config, source, default_season=season)
        target = frame.iloc[: setup.train_end, 0].to_numpy(dtype=float)
        if len(target) and np.nanmax(target) == np.nanmin(target):  # checked before training, not after
            warnings.warn(f"{source}: the target {frame.columns[0]!r} is constant ({target[0]:g}) over the"
                          f" {setup.train_end} training rows: forecasts can only repeat it, and MASE is"
                          " undefined", stacklevel=2)  # fmt: skip
        scaler = fit_scaler(setup, setup.train_end)
        inputs, targets = training_windows(setup, scaler, setup.train_end)
        model = forecast_model(setup.config, frame.shape[1], model_settings)
        artifacts = {
            FORECAST_FILE: json.dumps({"config": to_dict(setup.config), "columns": setup.columns,
                                       "time_column": frame.index.name, "source": source,
                                       "train_rows": setup.train_end}, indent=1),  # fmt: skip
            SCALER_FILE: scaler.to_json(),
        }
        train = TensorBatches(inputs, targets, batch_size=config.batch_size, seed=seed)
        context = {"setup": setup, "scaler": scaler}
        return Prepared(model, ForecastObjective(setup.config), train, None, "windows", artifacts, context)

    def _prepare_many(self, config: ForecastConfig, model_settings: dict[str, Any], seed: int) -> Prepared:
        setup = many.resolve_panel(many.read_panel(config), config)
        model = forecast_model(setup.config, 1 + len(setup.categories), model_settings)
        artifacts = {FORECAST_FILE: many.panel_artifact(setup, str(config.data))}
        return Prepared(model, ForecastObjective(setup.config), many.batches(setup, seed), None, "windows", artifacts,
                        {"panel": setup})  # fmt: skip

    def finalize(self, run: Run) -> None:
        """``calibration.json``: a second model, trained as the run's own, calibrates the interval
        on the end of the training part (skipped under ``calibrate=false``, or when it is there
        and no training ran since)."""
        if "panel" in run.context:  # many series: the head's own interval, no conformal step
            return
        setup, scaler = run.context["setup"], run.context["scaler"]
        if not setup.config.calibrate or ((run.run_dir / CALIBRATION_FILE).is_file() and not run.trained):
            return

        def fit(inputs: Tensor, targets: Tensor) -> nn.Module:  # the calibration model, trained as the run's
            if not run.quiet:  # as long as the run's own training: say what it is, and show its progress
                print(f"calibration: training a second model on {len(inputs)} windows of the training rows, as the"
                      " run's own (task.calibrate=false skips it)", file=sys.stderr, flush=True)  # fmt: skip
            return fit_model(setup.config, inputs, targets, run.model_settings, run.train_config, quiet=run.quiet)

        calibration = calibrate(setup, scaler, setup.train_end, fit)
        atomic_write_text(run.run_dir / CALIBRATION_FILE, calibration.to_json())

    def evaluate(self, run: Run) -> dict[str, Any]:
        if "panel" in run.context:
            setup = run.context["panel"]
            c = setup.config
            return {"source": setup.panel.source, "many": True, "lookback": c.lookback, "season": c.season,
                    "horizon": c.horizon, "interval": interval_label(c),
                    **many.evaluate_panel(run.model(), setup, baselines=c.baselines)}  # fmt: skip
        setup, scaler = run.context["setup"], run.context["scaler"]
        c = setup.config
        calibration = None
        if c.calibrate:
            calibration = Calibration.from_dict(read_json(run_file(run.run_dir, CALIBRATION_FILE)))
        bt = backtest(run.model(), setup, scaler, baselines=c.baselines, calibration=calibration,
                      progress=None if run.quiet else _say)  # fmt: skip
        run.cache["backtest"] = bt
        return {
            "source": setup.source, "rows": len(setup.frame), "columns": setup.columns, "train_rows": setup.train_end,
            "lookback": c.lookback, "season": c.season, "test_size": c.test_size, "log_target": scaler.log[0],
            "origins": len(bt.origins), "interval": interval_label(c),
            "calibration": None if calibration is None else {"rows": list(calibration.rows),
                                                             "origins": calibration.origins, "q": list(calibration.q)},
            "scores": bt.scores,
        }  # fmt: skip

    def figures(self, run: Run, results: dict[str, Any]) -> dict[str, Any]:
        if results.get("many"):
            return {}
        if "backtest" not in run.cache:
            self.evaluate(run)
        return {"backtest.png": backtest_figure(run.context["setup"], run.cache["backtest"])}

    def report(self, run: Run, results: dict[str, Any]) -> str:
        if results.get("many"):
            r, c = results, run.config
            lines = [f"forecast: {r['source']}, {r['series']} series, one global model; horizon {r['horizon']},"
                     f" lookback up to {r['lookback']} (at least {c.min_lookback}), season {r['season']}",
                     f"held out: the last {r['horizon']} rows of every series; mean over series of sMAPE, MASE"
                     f" (in-sample seasonal naive scale) and coverage of the {r['interval']} (the head's own)"]
            if r["fallback"]:
                lines.append(f"{len(r['fallback'])} series too short for the model, forecast by the naive fallback:"
                             f" {', '.join(r['fallback'][:10])}")  # fmt: skip
            lines.append(many.format_panel_scores(r["scores"], r["series"]))
            return "\n".join(lines)
        c, r, columns = run.config, results, results["columns"]
        lines = [
            f"forecast: {r['source']}, {r['rows']} rows, target {columns[0]!r}"
            + (f", covariates {', '.join(columns[1:])}" if len(columns) > 1 else ""),
            f"horizon {c.horizon} ({c.strategy}), lookback {r['lookback']}, season {r['season']}, head {c.head},"
            f" scaling fitted on the first {r['train_rows']} rows ({'log, ' if r['log_target'] else ''}standardized)",
            f"rolling-origin backtest on the last {r['test_size']} rows: {r['origins']} origins x {c.horizon} steps;"
            f" MASE scaled by the in-sample seasonal naive MAE (m={r['season']}); coverage of the {r['interval']}",
        ]
        if r["calibration"] is not None:
            (start, end), origins, q = r["calibration"]["rows"], r["calibration"]["origins"], r["calibration"]["q"]
            lines.append(f"conformal calibration (CQR) on training rows {start}-{end - 1}: {origins} origins per step;"
                         f" bounds moved out by {q[0]:.3f} (step 1) to {q[-1]:.3f} (step {len(q)}) scaled units")
        lines.append(format_scores(r["scores"]))
        return "\n".join(lines)

    def load(self, run_dir: str | Path) -> ForecastRun:
        return load_run(run_dir)

    def evaluate_file(self, run: Run, path) -> dict[str, Any]:
        """The trained forecaster's rolling-origin backtest on the last ``test_size`` rows of another
        series (the run's columns), beside the baselines refit at every origin."""
        trained = load_run(run.run_dir)
        if isinstance(trained, many.PanelRun):
            setup = many.resolve_panel(many.load_panel(path, trained.config), trained.config,
                                       categories=list(trained.saved["categories"]))  # fmt: skip
            return {"source": str(path), **many.evaluate_panel(trained.model, setup, baselines=trained.config.baselines)}
        c = trained.config
        config = replace(c, data=str(path), time_column=c.time_column or trained.saved.get("time_column"),
                         target=c.target or trained.saved["columns"][0], dataset=None)  # fmt: skip
        frame, source, _ = configured_series(config)
        setup = resolve(frame, config, source)
        bt = backtest(trained.model, setup, trained.scaler, baselines=c.baselines,
                      calibration=trained.saved["calibration"], progress=_say)  # fmt: skip
        return {"source": source, "rows": len(frame), "origins": len(bt.origins), "horizon": c.horizon,
                "scores": bt.scores}  # fmt: skip

    def commands(self) -> dict[str, Command]:
        return {"forecast": FORECAST}


def _say(text: str) -> None:
    print(text, file=sys.stderr, flush=True)


# -----------------------------------------------------------------------------
# `rnnkit forecast RUN_DIR`


def _forecast_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("run_dir", metavar="RUN_DIR", help="a run directory of 'rnnkit train forecast'")
    parser.add_argument("--data", metavar="FILE", help="a CSV with the run's columns (default: the training series);"
                        " for a many-series run, a long CSV: every series in it is forecast")
    parser.add_argument("--plot", metavar="PNG", help="where the plot goes (default: RUN_DIR/forecast.png)")


def _forecast(args: argparse.Namespace) -> int:
    from .forecaster import forecast_run

    check_output_path(args.plot, "--plot")
    plot = args.plot or str(Path(args.run_dir) / PLOT_FILE)
    result = forecast_run(args.run_dir, args.data, plot=plot)
    sys.stdout.write(result.to_csv(float_format="%.4f", index=not {"fallback"} <= set(result.columns)))
    print(f"plot: {plot}", file=sys.stderr)
    return 0


FORECAST = Command(
    help="forecast the steps after a series with a trained forecaster; prints CSV with intervals, writes a PNG",
    example="rnnkit forecast runs/forecast-20261122-101500 --data sales.csv",
    add_arguments=_forecast_arguments,
    run=_forecast,
)
