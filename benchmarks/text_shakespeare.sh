#!/usr/bin/env bash
# The text-generation bar (docs/text.md): a character LSTM on tiny-shakespeare, last 10% held
# out, at most 20 minutes on the 2-core reference machine. Usage:
#   bash benchmarks/text_shakespeare.sh [RUN_DIR]
# Needs ../shared/data (the project's shared datasets) next to the repository.
set -euo pipefail
run_dir=${1:-runs/shakespeare}
data=${DATA:-../shared/data/tinyshakespeare/input.txt}
# One intra-op thread: on this 2-core machine a second thread gains little and, beside any other
# work, OpenMP's spin-waiting made training ~4x slower (docs/text.md).
export OMP_NUM_THREADS=${OMP_NUM_THREADS:-1}
exec rnnkit train text --data "$data" --run-dir "$run_dir" \
  --model.encoder.cell=lstm --model.encoder.hidden_size=384 --model.encoder.num_layers=2 \
  --model.encoder.dropout=0.2 --model.head_dropout=0.2 --model.input.embedding_dim=64 \
  --task.batch_size=32 --task.bptt=128 --task.sample_length=600 --task.sample_prime="ROMEO:" \
  --train.lr=2e-3 --train.schedule=cosine --train.warmup_steps=100 --train.min_lr=1e-4 \
  --train.max_steps=1800 --train.max_minutes=20 --train.eval_every=300 --train.log_every=50
