#!/usr/bin/env bash
# The forecasting bar (docs/forecasting.md): on airline passengers (last 24 months held out,
# horizon 12) and yearly sunspots (last 24 years held out, horizon 12), rolling-origin backtests
# of the LSTM forecaster beside naive, seasonal naive, ETS and ARIMA, for seeds 0 1 2.
# Usage:  bash benchmarks/forecast.sh [OUT_DIR]     (needs: pip install 'rnnkit[timeseries]')
#   EXTRA="--task.strategy=autoregressive" bash benchmarks/forecast.sh runs/forecast-ar
#   EXTRA="--task.head=quantile" SEEDS=0 bash benchmarks/forecast.sh runs/forecast-quantile
# Intervals are conformally calibrated by default (task.calibrate); each table shows the calibrated
# `coverage` and `width` beside the head's own (`raw coverage`, `raw width`), same model, same run.
#   EXTRA="--task.calibrate=false" bash benchmarks/forecast.sh runs/forecast-raw   # no calibration model
# Each run prints its table; OUT_DIR/DATASET-seedN/ holds the run, plots/backtest.png among it.
set -euo pipefail
out=${1:-runs/forecast-bench}
seeds=${SEEDS:-"0 1 2"}
read -r -a extra <<< "${EXTRA:-}"  # more settings for every run
# One intra-op thread: on the 2-core reference machine a second thread gains little (docs/text.md).
export OMP_NUM_THREADS=${OMP_NUM_THREADS:-1}
for dataset in airline sunspots; do
  for seed in $seeds; do
    echo "== $dataset, seed $seed"
    rnnkit train forecast --task.dataset="$dataset" --horizon 12 --task.test_size=24 \
      --model.encoder.cell=lstm --model.encoder.hidden_size=64 \
      --train.lr=3e-3 --train.max_epochs=150 --train.seed="$seed" \
      --run-dir "$out/$dataset-seed$seed" --quiet "${extra[@]}"
  done
done
