#!/usr/bin/env bash
# The sentiment bar (docs/sentiment.md): a bidirectional LSTM with max pooling on the Rotten
# Tomatoes snippets, 20% of the movies held out (all of a movie's snippets on one side), no
# pretrained vectors, at most 10 minutes on the 2-core reference machine. Usage:
#   bash benchmarks/sentiment_rotten_tomatoes.sh [RUN_DIR] [--section.name=value ...]
# Needs ../shared/data (the project's shared datasets) next to the repository.
set -euo pipefail
run_dir=${1:-runs/sentiment-rt}
data=${DATA:-../shared/data/rotten-tomatoes/reviews.csv}
# One intra-op thread: on this 2-core machine a second thread gains little and, beside other
# work, OpenMP's spin-waiting slows training several times over (docs/text.md).
export OMP_NUM_THREADS=${OMP_NUM_THREADS:-1}
exec rnnkit train classify --data "$data" --text-column text --label-column label --group-column movie \
  --run-dir "$run_dir" \
  --task.test_fraction=0.2 --task.val_fraction=0.1 --task.split_seed=0 \
  --task.tokenizer=word --task.min_count=2 --task.token_dropout=0.3 --task.batch_size=32 \
  --model.input.embedding_dim=128 --model.encoder.cell=lstm --model.encoder.hidden_size=128 \
  --model.encoder.bidirectional=true --model.pooling=max --model.head_dropout=0.5 \
  --train.lr=2e-3 --train.max_epochs=20 --train.patience=3 --train.clip_norm=1.0 \
  --train.max_minutes=9 --train.seed=0 --train.log_every=50 "${@:2}"  # later settings win
