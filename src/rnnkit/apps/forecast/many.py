"""One global forecaster over many series (``task.id_column``): a long file in, every series out.

As DeepAR (Salinas et al. 2020) and the M4 winner's recurrent part (Smyl 2020) do, one network
learns from the windows of every series:

1. Each series is scaled on its own training rows (standardized, of logs where the series is
   positive under ``transform="auto"``), and every window is taken relative to its last value, so
   series of any magnitude look alike to the network.
2. The lookback adapts to short series: a window holds up to ``lookback`` values, fewer at the
   start of a series (``min_lookback`` at least); windows are bucketed by length
   (:class:`~rnnkit.data.panel.BucketBatches`), and the network reads each to its own length.
3. A static category (``task.static``, e.g. M3's MICRO/INDUSTRY/...) is a one-hot input at every step.
4. A series too short for one window (fewer than ``min_lookback + 1`` training rows) is forecast by
   the fallback (naive: its last value) and named in a warning; none is dropped.

The held-out part is the last ``horizon`` rows of every series (the M3/M4 protocol); scores are the
mean over series of sMAPE, MASE and interval coverage, beside the classical methods of
:data:`~rnnkit.apps.forecast.baselines.PANEL_BASELINES` on the same series.
"""

from __future__ import annotations

import json
import math
import warnings
from dataclasses import dataclass
from pathlib import Path
from typing import Any, NamedTuple

import numpy as np
import torch
from torch import nn

from ...data.panel import BucketBatches, Panel, adaptive_windows, read_long_csv, validate_long
from ...data.series import Scaler, future_index, require
from ...metrics.forecasting import coverage, mase, seasonal_naive_scale, smape
from .baselines import PANEL_BASELINES, seasonal_indices
from .config import ForecastConfig, point_column
from .model import point_and_interval, split_outputs

FALLBACK = "naive"


@dataclass
class PanelSetup:
    panel: Panel
    config: ForecastConfig  # season and lookback filled in
    categories: list[str]  # the static column's categories, in one-hot order ([] without one)
    holdout: int  # rows held out at the end of every series (the horizon, or 0)

    def train_rows(self, key: str) -> int:
        return len(self.panel.values[key]) - self.holdout

    def short(self) -> list[str]:
        """The series with too few training rows for one window: the fallback forecasts them."""
        return [k for k in self.panel.ids if self.train_rows(k) < self.config.min_lookback + 1]


def read_panel(config: ForecastConfig) -> Panel:
    if config.data is None:
        raise ValueError("many series (id_column) need --data LONG.csv")
    return read_long_csv(config.data, id_column=config.id_column, time_column=config.time_column,
                         target=config.target, static=config.static)  # fmt: skip


def resolve_panel(panel: Panel, config: ForecastConfig, *, holdout: bool = True,
                  categories: list[str] | None = None) -> PanelSetup:  # fmt: skip
    """Season (inferred from the time frequency), lookback (``max(2 * season, 2 * horizon)``) filled in."""
    from dataclasses import replace

    season = config.season or panel.season
    lookback = config.lookback or max(2 * season, 2 * config.horizon)
    if lookback < config.min_lookback:
        raise ValueError(f"lookback={lookback} must be at least min_lookback={config.min_lookback}")
    config = replace(config, season=season, lookback=lookback, test_size=config.horizon)
    if categories is None:
        categories = sorted({panel.static[k] for k in panel.ids}) if config.static else []
    if holdout:
        too_short = [k for k in panel.ids if len(panel.values[k]) <= config.horizon]
        if len(too_short) == len(panel.ids):
            raise ValueError(f"{panel.source}: every series has at most horizon={config.horizon} rows: nothing is left"
                             " to train on before the held-out part")  # fmt: skip
        if too_short:
            warnings.warn(f"{panel.source}: {len(too_short)} series have at most horizon={config.horizon} rows"
                          f" ({', '.join(map(repr, too_short[:5]))}{', ...' if len(too_short) > 5 else ''}): they are"
                          " left out of training and the held-out scores; 'rnnkit forecast' forecasts them by the"
                          f" {FALLBACK} fallback", stacklevel=2)  # fmt: skip
            panel = panel.subset([k for k in panel.ids if k not in set(too_short)])
    setup = PanelSetup(panel, config, categories, config.horizon if holdout else 0)
    short = setup.short()
    if len(short) == len(panel.ids):
        raise ValueError(f"{panel.source}: every series is shorter than min_lookback={config.min_lookback} + 1 training"
                         " rows; no window to train on")  # fmt: skip
    if short:
        warnings.warn(f"{panel.source}: {len(short)} series shorter than min_lookback + 1 = {config.min_lookback + 1}"
                      f" training rows ({', '.join(map(repr, short[:5]))}{', ...' if len(short) > 5 else ''}) are"
                      f" forecast by the {FALLBACK} fallback", stacklevel=2)  # fmt: skip
    return setup


def series_scaler(values: np.ndarray, config: ForecastConfig) -> Scaler:
    """The per-series scaler, fitted on ``values`` (the rows a forecast reads)."""
    positive = bool((values > 0).all())
    if config.transform == "log" and not positive:
        raise ValueError(f"transform='log' needs positive series; one has {values.min():g}")
    return Scaler.fit(values[:, None], ["y"], [config.transform == "log" or (config.transform == "auto" and positive)])


def seasonality(values: np.ndarray, config: ForecastConfig) -> np.ndarray:
    """The per-series multiplicative seasonal indices ``(m,)`` that normalise the network's inputs (ones
    without ``deseasonalize``, a season, or a seasonal positive series); index i is for time ``t % m == i``."""
    if not config.deseasonalize or config.season <= 1:
        return np.ones(1)
    return seasonal_indices(values, config.season)


def adjusted(values: np.ndarray, indices: np.ndarray) -> np.ndarray:
    return values / indices[np.arange(len(values)) % len(indices)]


def one_hot(setup: PanelSetup, key: str) -> np.ndarray:
    label = setup.panel.static.get(key, "")
    return np.array([float(label == c) for c in setup.categories], dtype=np.float32)


def panel_windows(setup: PanelSetup, cut: int = 0):
    """Training windows of every series over its first ``train_rows - cut`` rows: inputs, targets, lengths."""
    c = setup.config
    parts = []
    for key in setup.panel.ids:
        rows = setup.train_rows(key) - cut
        if rows < c.min_lookback + 1:
            continue
        values = setup.panel.values[key][:rows]
        values = adjusted(values, seasonality(values, c))
        scaled = series_scaler(values, c).transform(values[:, None])[:, 0]
        origins = list(range(c.min_lookback, rows))
        if c.windows_per_series is not None:
            origins = origins[-c.windows_per_series :]
        parts.append(adaptive_windows(scaled, origins, c.lookback, c.horizon, one_hot(setup, key))[:3])
    if not parts:
        raise ValueError(f"no training window: every series has fewer than min_lookback + 1 = {c.min_lookback + 1} rows")
    return tuple(torch.cat(tensors) for tensors in zip(*parts))


def validation_windows(setup: PanelSetup):
    """The window of every long enough series whose targets are its last ``horizon`` training rows."""
    c = setup.config
    parts = []
    for key in setup.panel.ids:
        rows = setup.train_rows(key)
        origin = rows - c.horizon
        if origin < c.min_lookback + 1:
            continue
        values = setup.panel.values[key][:rows]
        values = adjusted(values, seasonality(values[:origin], c))
        scaled = series_scaler(values[:origin], c).transform(values[:, None])[:, 0]
        parts.append(adaptive_windows(scaled, [origin], c.lookback, c.horizon, one_hot(setup, key))[:3])
    return tuple(torch.cat(t) for t in zip(*parts)) if parts else None


def batches(setup: PanelSetup, seed: int, cut: int = 0) -> BucketBatches:
    inputs, targets, lengths = panel_windows(setup, cut)
    return BucketBatches(inputs, targets, lengths, batch_size=setup.config.batch_size, seed=seed)


@torch.no_grad()
def predict_panel(models: nn.Module | list[nn.Module], setup: PanelSetup, histories: dict[str, np.ndarray]
                  ) -> dict[str, dict[str, np.ndarray]]:  # fmt: skip
    """The next ``horizon`` steps after each history: ``{id: {"point", "lower", "upper"}}`` in data
    units. Several ``models`` are an ensemble: the median of their forecasts (in scaled units)."""
    c = setup.config
    models = models if isinstance(models, list) else [models]
    keys = [k for k, v in histories.items() if len(v) >= c.min_lookback]
    out: dict[str, dict[str, np.ndarray]] = {}
    for key, values in histories.items():  # the fallback: naive, no interval
        if key not in keys:
            out[key] = {"point": np.full(c.horizon, values[-1]), "lower": np.full(c.horizon, np.nan),
                        "upper": np.full(c.horizon, np.nan), "fallback": True}  # fmt: skip
    if not keys:
        return out
    indices = {k: seasonality(histories[k], c) for k in keys}
    history = {k: adjusted(histories[k], indices[k]) for k in keys}
    scalers = {k: series_scaler(history[k], c) for k in keys}
    inputs, lengths, levels = [], [], []
    for key in keys:
        scaled = scalers[key].transform(history[key][:, None])[:, 0]
        x, _, length, level = adaptive_windows(scaled, [len(scaled)], c.lookback, c.horizon, one_hot(setup, key))
        inputs.append(x), lengths.append(length), levels.append(level)
    x, length, level = torch.cat(inputs), torch.cat(lengths), torch.cat(levels)
    draws = []
    for model in models:
        model.eval()
        parts = [split_outputs(model(x[i : i + 2048], lengths=length[i : i + 2048]), c)
                 for i in range(0, len(x), 2048)]  # fmt: skip
        out_ = torch.cat(parts)  # (M, H, K)
        extra = [out_.sort(dim=-1).values.permute(2, 0, 1)] if c.head == "quantile" else []  # (K, M, H)
        draws.append(torch.cat([torch.stack(point_and_interval(out_, c)), *extra]))  # (3 [+ K], M, H)
    every = (torch.stack(draws).median(0).values + level[None, :, None]).numpy()
    for row, key in enumerate(keys):
        s, m = scalers[key], indices[key]
        season = m[np.arange(len(histories[key]), len(histories[key]) + c.horizon) % len(m)]  # (H,)
        out[key] = {"point": s.inverse(every[0, row]) * season, "lower": s.inverse(every[1, row]) * season,
                    "upper": s.inverse(every[2, row]) * season, "fallback": False}  # fmt: skip
        if c.head == "quantile":  # every quantile, in config.quantiles order
            out[key]["quantiles"] = s.inverse(every[3:, row]) * season
    return out


def histories(setup: PanelSetup) -> dict[str, np.ndarray]:
    return {k: setup.panel.values[k][: setup.train_rows(k)] for k in setup.panel.ids}


def mase_scale(insample: np.ndarray, season: int) -> float:
    """MASE's denominator: the seasonal naive in-sample MAE, the naive one where a season does not fit."""
    m = season if len(insample) > season else 1
    return seasonal_naive_scale(insample, m) if len(insample) > m else math.nan


def score_panel(setup: PanelSetup, forecasts: dict[str, dict[str, np.ndarray]]) -> dict[str, list[float]]:
    """Per-series sMAPE, MASE and coverage of ``forecasts`` of the held-out rows, in ``panel.ids`` order."""
    c, scores = setup.config, {"smape": [], "mase": [], "coverage": []}
    for key in setup.panel.ids:
        values, rows = setup.panel.values[key], setup.train_rows(key)
        actual, f = values[rows:], forecasts[key]
        scale = mase_scale(values[:rows], c.season)
        scores["smape"].append(smape(actual, f["point"]))
        scores["mase"].append(float(np.mean(np.abs(actual - f["point"])) / scale) if scale > 0 else math.nan)
        lower = f.get("lower")
        scores["coverage"].append(math.nan if lower is None or np.isnan(lower).any()
                                  else coverage(actual, lower, f["upper"]))  # fmt: skip
    return scores


def baseline_forecasts(setup: PanelSetup, name: str) -> dict[str, dict[str, np.ndarray]]:
    """The classical method ``name`` fitted on each series' training rows (naive where it fails)."""
    method, c, out = PANEL_BASELINES[name], setup.config, {}
    for key, history in histories(setup).items():
        try:
            point = np.asarray(method(history, c.horizon, c.season if len(history) > c.season else 1), float)
            if not np.isfinite(point).all():
                raise ValueError("non-finite forecast")
        except Exception:  # noqa: BLE001 - a classical fit that fails on one series falls back, as in M3 practice
            point = np.full(c.horizon, history[-1])
        out[key] = {"point": point}
    return out


def summarise(scores: dict[str, list[float]]) -> dict[str, float]:
    return {name: float(np.nanmean(values)) if np.isfinite(values).any() else math.nan
            for name, values in scores.items()}  # fmt: skip


def evaluate_panel(model, setup: PanelSetup, *, baselines: bool = True,
                   methods: tuple[str, ...] = ("naive", "seasonal naive", "Naive2", "Theta", "ETS")) -> dict[str, Any]:  # fmt: skip
    """The model's and (``baselines``) each classical method's mean scores over the held-out rows of every series."""
    forecasts = predict_panel(model, setup, histories(setup))
    per_series = {"RNN": score_panel(setup, forecasts)}
    if baselines:
        for name in methods:
            per_series[name] = score_panel(setup, baseline_forecasts(setup, name))
    table = {name: summarise(s) for name, s in per_series.items()}
    smapes = {name: np.asarray(s["smape"]) for name, s in per_series.items()}
    for name in table:
        if name != "RNN":
            table[name]["rnn_wins"] = int((smapes["RNN"] < smapes[name]).sum())
    return {"series": len(setup.panel.ids), "fallback": [k for k, f in forecasts.items() if f["fallback"]],
            "scores": table}  # fmt: skip


def format_panel_scores(scores: dict[str, dict[str, float]], series: int) -> str:
    lines = [f"{'method':<16}{'sMAPE':>9}{'MASE':>9}{'coverage':>10}  RNN better on"]
    for name, s in scores.items():
        wins = "" if name == "RNN" else f"  {s['rnn_wins']} of {series}"
        cov = "" if math.isnan(s["coverage"]) else f"{s['coverage']:.3f}"
        lines.append(f"{name:<16}{s['smape']:>9.3f}{s['mase']:>9.3f}{cov:>10}{wins}")
    return "\n".join(lines)


# --- a trained many-series run --------------------------------------------------------------------------


class PanelRun(NamedTuple):
    """A ``rnnkit train forecast --id-column ...`` run: its model, settings, and ``forecast.json``."""

    model: nn.Module
    config: ForecastConfig
    saved: dict[str, Any]

    def setup(self, panel: Panel) -> PanelSetup:
        return PanelSetup(panel, self.config, list(self.saved["categories"]), 0)

    def predict(self, data=None):
        """The next ``horizon`` steps of every series of ``data`` (a long CSV or DataFrame with the run's
        columns; default: the series it trained on) as a long DataFrame: id, time, point, lower, upper."""
        return self._forecast(data)[0]

    def _forecast(self, data):
        from ..._io import check_file_record

        c = self.config
        if data is None:
            record = self.saved.get("data_file")
            if record is None:
                raise ValueError("this run directory records no training file to forecast from: give --data LONG.csv")
            data = check_file_record(record, "the training data")
        panel = load_panel(data, c)
        unseen = sorted({panel.static[k] for k in panel.ids} - set(self.saved["categories"])) if c.static else []
        if unseen:
            warnings.warn(f"{panel.source}: {c.static} categories the model never saw ({', '.join(map(repr, unseen[:5]))})"
                          " get no category input", stacklevel=2)  # fmt: skip
        setup = self.setup(panel)
        short = [k for k in panel.ids if len(panel.values[k]) < c.min_lookback]
        if short:
            warnings.warn(f"{panel.source}: {len(short)} series shorter than min_lookback={c.min_lookback}"
                          f" ({', '.join(map(repr, short[:5]))}) are forecast by the {FALLBACK} fallback",
                          stacklevel=2)  # fmt: skip
        forecasts = predict_panel(self.model, setup, {k: panel.values[k] for k in panel.ids})
        return long_frame(panel, forecasts, c), panel


def load_panel(data, config: ForecastConfig) -> Panel:
    pd = require("pandas")
    kwargs = {"id_column": config.id_column, "time_column": config.time_column, "target": config.target,
              "static": config.static}  # fmt: skip
    if isinstance(data, pd.DataFrame):
        return validate_long(data, **kwargs)
    return read_long_csv(data, **kwargs)


def long_frame(panel: Panel, forecasts: dict[str, dict[str, np.ndarray]], config: ForecastConfig):
    """Forecasts as a long DataFrame: id, time, the point forecast, lower, upper, and whether the fallback made it."""
    pd = require("pandas")
    frequency = panel.frequency
    rows = []
    for key in panel.ids:
        times = panel.times[key]
        if frequency is not None and len(times) < 3:  # too short to infer its own: the file's frequency
            times = pd.date_range(times[-1], periods=config.horizon + 1, freq=frequency, name=times.name)[1:]
        else:
            times = future_index(times, config.horizon)
        f = forecasts[key]
        rows.append(pd.DataFrame({config.id_column: key, config.time_column: times, point_column(config): f["point"],
                                  "lower": f["lower"], "upper": f["upper"], "fallback": f["fallback"]}))  # fmt: skip
    return pd.concat(rows, ignore_index=True)


def panel_artifact(setup: PanelSetup, source: str) -> str:
    from ...config import to_dict

    return json.dumps({"config": to_dict(setup.config), "id_column": setup.config.id_column,
                       "categories": setup.categories, "source": source, "series": len(setup.panel.ids),
                       "time_column": setup.config.time_column, "columns": [setup.config.target]}, indent=1)  # fmt: skip


def load_panel_run(run_dir: str | Path, saved: dict[str, Any]) -> PanelRun:
    from ..._io import read_json, run_file
    from ...config import from_dict
    from ...training import load

    config = from_dict(ForecastConfig, saved["config"], where="task")
    saved["data_file"] = read_json(run_file(Path(run_dir), "config.json")).get("data_files", {}).get("data")
    return PanelRun(load(run_dir), config, saved)
