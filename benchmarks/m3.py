"""M3 (Makridakis & Hibon 2000): rnnkit's global RNN against Naive2, Theta, ETS and ARIMA on the same series.

The official protocol: each series' h test values (yearly 6, quarterly 8, monthly 18, other 8) are
forecast from its training rows alone; sMAPE (200 |y - f| / (|y| + |f|)), MASE (in-sample seasonal
naive scale) and OWA (the mean of sMAPE and MASE relative to Naive2's, M4's definition) are averaged
per frequency and over every series. Tuning uses the training rows only: the network is trained on
each series' training rows minus their last h, the epoch with the best sMAPE on those last h is kept,
and it forecasts the test rows from the whole training part. The classical methods are
rnnkit.apps.forecast.baselines (statsmodels), run here on the same series.

    PYTHONPATH=src OMP_NUM_THREADS=1 python benchmarks/m3.py --subset 100 --seeds 1
    PYTHONPATH=src OMP_NUM_THREADS=1 python benchmarks/m3.py            # the whole of M3

The data are read from ../shared/data/forecasting/m3 (``--data-dir``); nothing is copied.
"""

from __future__ import annotations

import argparse
import copy
import json
import math
import time
from pathlib import Path

import numpy as np
import pandas as pd
import torch

from rnnkit.apps.forecast import ForecastConfig
from rnnkit.apps.forecast.many import (
    PanelSetup,
    baseline_forecasts,
    batches,
    mase_scale,
    predict_panel,
    resolve_panel,
)
from rnnkit.apps.forecast.model import ForecastObjective, forecast_model
from rnnkit.data.panel import validate_long
from rnnkit.metrics.forecasting import smape

SEASON = {"yearly": 1, "quarterly": 4, "monthly": 12, "other": 1}
# published sMAPE (competition figures as reproduced in Oreshkin et al. 2020, table 14; the data README)
PUBLISHED = {
    "Naive2": {"yearly": 17.88, "quarterly": 9.95, "monthly": 16.91, "other": 6.30, "all": 15.47},
    "ARIMA": {"yearly": 17.73, "quarterly": 10.26, "monthly": 14.81, "other": 5.06, "all": 14.01},
    "Theta": {"yearly": 16.90, "quarterly": 8.96, "monthly": 13.85, "other": 4.41, "all": 13.01},
    "ForecastPro": {"yearly": 17.14, "quarterly": 9.77, "monthly": 13.86, "other": 4.60, "all": 13.19},
    "N-BEATS": {"all": 12.37},
}
QUANTILES = (0.025, 0.1, 0.5, 0.9, 0.975)


def load(data_dir: Path, frequency: str, subset: int | None, seed: int):
    train = pd.read_csv(data_dir / f"m3_{frequency}.csv", dtype={"series_id": str})
    test = pd.read_csv(data_dir / f"m3_{frequency}_test.csv", dtype={"series_id": str})
    ids = list(dict.fromkeys(train["series_id"]))
    if subset is not None and subset < len(ids):
        ids = sorted(np.random.default_rng(seed).choice(ids, subset, replace=False).tolist())
        train, test = train[train["series_id"].isin(ids)], test[test["series_id"].isin(ids)]
    panel = validate_long(train, id_column="series_id", time_column="period", target="value", static="category",
                          source=f"M3 {frequency}")  # fmt: skip
    actual = {k: g["value"].to_numpy(float) for k, g in test.groupby("series_id")}
    return panel, actual


def train_rnn(setup: PanelSetup, args, seed: int):
    """One network: trained on the training rows minus the last h of each series, the epoch with the best
    sMAPE on those h kept (tuning on training rows only)."""
    c = setup.config
    torch.manual_seed(seed)
    model = forecast_model(c, 1 + len(setup.categories), {"encoder": {"cell": args.cell, "hidden_size": args.hidden,
                                                                      "num_layers": args.layers}})  # fmt: skip
    objective = ForecastObjective(c)
    optimizer = torch.optim.Adam(model.parameters(), lr=args.lr)
    train = batches(setup, seed, cut=c.horizon)
    val_histories = {k: v[: len(v) - c.horizon] for k, v in setup.panel.values.items() if len(v) > c.horizon}
    best, best_state = math.inf, None
    for epoch in range(args.epochs):
        model.train()
        for batch in train.epoch(epoch):
            optimizer.zero_grad()
            loss = objective(model, batch).loss
            loss.backward()
            torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
            optimizer.step()
        forecasts = predict_panel(model, setup, val_histories)
        score = np.mean([smape(setup.panel.values[k][-c.horizon :], f["point"]) for k, f in forecasts.items()])
        if score < best:
            best, best_state, best_epoch = score, copy.deepcopy(model.state_dict()), epoch + 1
    model.load_state_dict(best_state)
    return model.eval(), best, best_epoch


def scores(setup: PanelSetup, actual: dict, forecasts: dict, naive2: dict | None) -> dict:
    c, s, m, cov80, cov95 = setup.config, [], [], [], []
    for key in setup.panel.ids:
        y, f = actual[key], forecasts[key]
        s.append(smape(y, f["point"]))
        scale = mase_scale(setup.panel.values[key], c.season)
        m.append(np.mean(np.abs(y - f["point"])) / scale if scale > 0 else np.nan)
        if "quantiles" in f:
            q = f["quantiles"]
            cov80.append(np.mean((y >= q[1]) & (y <= q[3]))), cov95.append(np.mean((y >= q[0]) & (y <= q[4])))
    out = {"smape": float(np.mean(s)), "mase": float(np.nanmean(m)), "per_series_smape": s, "per_series_mase": m}
    if cov80:
        out["coverage80"], out["coverage95"] = float(np.mean(cov80)), float(np.mean(cov95))
    return out


def owa(result: dict, naive2: dict) -> float:
    return 0.5 * (result["smape"] / naive2["smape"] + result["mase"] / naive2["mase"])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data-dir", type=Path, default=Path(__file__).resolve().parents[2] / "shared/data/forecasting/m3")
    parser.add_argument("--frequencies", default="yearly,quarterly,monthly,other")
    parser.add_argument("--subset", type=int, default=None, help="a seeded sample of this many series per frequency")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--seeds", type=int, default=3, help="networks per frequency, ensembled by the median")
    parser.add_argument("--epochs", type=int, default=30)
    parser.add_argument("--hidden", type=int, default=64)
    parser.add_argument("--layers", type=int, default=1)
    parser.add_argument("--cell", default="lstm")
    parser.add_argument("--lr", type=float, default=3e-3)
    parser.add_argument("--batch-size", type=int, default=256)
    parser.add_argument("--min-lookback", type=int, default=3)
    parser.add_argument("--windows-per-series", type=int, default=None)
    parser.add_argument("--methods", default="Naive2,Theta,ETS,ARIMA")
    parser.add_argument("--json", type=Path, default=None, help="write every figure here")
    args = parser.parse_args()
    torch.set_num_threads(1)
    results, series_counts = {}, {}
    for frequency in args.frequencies.split(","):
        panel, actual = load(args.data_dir, frequency, args.subset, args.seed)
        h = len(next(iter(actual.values())))
        config = ForecastConfig(horizon=h, season=SEASON[frequency], head="quantile", quantiles=QUANTILES,
                                batch_size=args.batch_size, data="m3", time_column="period", target="value",
                                id_column="series_id", static="category", calibrate=False,
                                lookback=max(2 * SEASON[frequency], 2 * h) if frequency != "yearly" else 2 * h,
                                windows_per_series=args.windows_per_series, min_lookback=args.min_lookback)  # fmt: skip
        setup = resolve_panel(panel, config, holdout=False)
        row, series_counts[frequency] = {}, len(panel.ids)
        start = time.time()
        models, vals = [], []
        for k in range(args.seeds):
            model, val, epoch = train_rnn(setup, args, args.seed + k)
            models.append(model), vals.append((round(val, 3), epoch))
        forecasts = predict_panel(models, setup, dict(setup.panel.values))
        row["RNN"] = {**scores(setup, actual, forecasts, None), "seconds": time.time() - start, "validation": vals}
        for name in args.methods.split(","):
            start = time.time()
            row[name] = {**scores(setup, actual, baseline_forecasts(setup, name), None), "seconds": time.time() - start}
        results[frequency] = row
        print(f"{frequency} ({len(panel.ids)} series, h={h}): " + ", ".join(
            f"{n} {r['smape']:.2f}/{r['mase']:.3f} ({r['seconds']:.0f}s)" for n, r in row.items()), flush=True)
    overall = {}
    for name in results[next(iter(results))]:
        s = np.concatenate([results[f][name]["per_series_smape"] for f in results])
        m = np.concatenate([results[f][name]["per_series_mase"] for f in results])
        overall[name] = {"smape": float(np.mean(s)), "mase": float(np.nanmean(m))}
    results["all"] = overall
    print(f"\n{'method':<10}" + "".join(f"{f:>22}" for f in results))
    for name in overall:
        cells = []
        for f in results:
            r = results[f][name]
            w = f" {owa(r, results[f]['Naive2']):.3f}" if "Naive2" in results[f] else ""
            cells.append(f"{r['smape']:>8.2f} {r['mase']:>6.3f}{w}")
        print(f"{name:<10}" + "".join(f"{c:>22}" for c in cells))
    for name, row in PUBLISHED.items():
        print(f"{name + '*':<10}" + "".join(f"{row.get(f, float('nan')):>8.2f}{'':>14}" for f in results))
    for f in results:
        if "coverage80" in results[f].get("RNN", {}):
            print(f"RNN coverage {f}: 80% {results[f]['RNN']['coverage80']:.3f}, 95% {results[f]['RNN']['coverage95']:.3f}")
    print("(* published sMAPE; the cells are sMAPE, MASE, OWA)")
    if args.json:
        for f in results:
            for r in results[f].values():
                r.pop("per_series_smape", None), r.pop("per_series_mase", None)
        args.json.write_text(json.dumps({"args": {k: str(v) for k, v in vars(args).items()}, "series": series_counts,
                                         "results": results}, indent=1))  # fmt: skip


if __name__ == "__main__":
    main()
