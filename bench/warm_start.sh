#!/usr/bin/env bash
# Warm-start benchmark (issue 12), one run, figures beside their baseline. MovieLens-100K's
# training split is cut by time at its 90% point: a model trained on the earlier part is
# warm-started on all of it (neumf_train(..., warm_start => true), defaults otherwise), beside
# a model trained from scratch on all of it (defaults). Both are scored on the leave-one-out
# test split (99 fixed negatives; users whose test item never occurs in training count as
# misses). Goal: HR@10 and NDCG@10 within 0.01 of from-scratch at ≤ 0.3× its training time.
#   bench/warm_start.sh            the benchmark
#   bench/warm_start.sh sweep      how the warm-start defaults were chosen: warm starts with
#                                  several epoch budgets and learning rates, early-stopped and
#                                  compared on the validation holdout only (each user's latest
#                                  interaction, kept out of the earlier model's data so it is
#                                  unseen); the default epochs are the best epoch found there
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd); repo=$(cd "$here/.." && pwd)
. "$repo/scripts/env.sh"
. "$repo/scripts/ml100k.sh"
. "$here/common.sh"
shared=${NEUMF_SHARED:-$repo/../shared}; d="$shared/data/ml-100k"
[ -f "$d/loo.train.tsv" ] || { echo "ML-100K not found under $d" >&2; exit 1; }
export NEUMF_PGDATA=${NEUMF_BENCH_PGDATA:-/var/tmp/neumf-bench/data} NEUMF_PGPORT=${NEUMF_BENCH_PGPORT:-5496}
export PGHOST=127.0.0.1 PGPORT=$NEUMF_PGPORT PGUSER=postgres PGDATABASE=neumf_bench
export PGOPTIONS="-c client_min_messages=warning"
q() { psql -X -q -tA -v ON_ERROR_STOP=1 -c "$1"; }
"$repo/scripts/cluster.sh" start
psql -X -q -d postgres -tAc "SELECT 1 FROM pg_database WHERE datname = 'neumf_bench'" | grep -q 1 || psql -X -q -d postgres -c "CREATE DATABASE neumf_bench"
ensure_current_extension
q "DROP VIEW IF EXISTS ml_train_early_unseen, ml_train_early"
load_ml100k "$d"
cutoff=$(q "SELECT percentile_disc(0.9) WITHIN GROUP (ORDER BY ts) FROM ml_train")
q "CREATE OR REPLACE VIEW ml_train_early AS SELECT * FROM ml_train WHERE ts <= $cutoff"
echo "ML-100K cut at its 90% point (ts $cutoff): $(q "SELECT count(*) FROM ml_train_early") of $(q "SELECT count(*) FROM ml_train") interactions before it; $(q "SELECT count(DISTINCT user_id) FROM ml_train t WHERE NOT EXISTS (SELECT FROM ml_train_early e WHERE e.user_id = t.user_id)") users and $(q "SELECT count(DISTINCT item_id) FROM ml_train t WHERE NOT EXISTS (SELECT FROM ml_train_early e WHERE e.item_id = t.item_id)") items appear only after it"

test_metrics() {
  q "SELECT round((hr * users / (users + skipped))::numeric, 4) || '|' || round((ndcg * users / (users + skipped))::numeric, 4)
     FROM neumf_evaluate('$1', 'SELECT user_id, item_id, negatives FROM ml_test')"
}
# neumf_train's "train_seconds|validation_hr|validation_ndcg|epochs_run" for a call's arguments.
train() { q "SELECT round(train_seconds::numeric, 2) || '|' || coalesce(round(validation_hr::numeric, 4)::text, '-') || '|' || coalesce(round(validation_ndcg::numeric, 4)::text, '-') || '|' || epochs_run FROM neumf_train($1)"; }

if [ "${1:-}" = sweep ]; then
  # The warm run's validation holdout is each user's latest interaction in ml_train (by ts);
  # the earlier model never sees those rows, so its memory cannot flatter a setting. Every
  # warm start here validates (early stopping on that holdout, then a refit on everything).
  q "CREATE OR REPLACE VIEW ml_train_early_unseen AS
     SELECT * FROM ml_train_early e
     WHERE (e.user_id, e.ts) NOT IN (SELECT user_id, max(ts) FROM ml_train GROUP BY user_id)"
  echo "seconds|validation HR@10|NDCG@10|epochs of the final phase"
  for seed in ${WARM_START_SEEDS:-42 1}; do
    echo "seed $seed: earlier model (defaults, without the validation rows): $(train "'ws_sweep_$seed', 'ml_train_early_unseen', seed => $seed")"
    base_lr=$(q "SELECT (hyperparameters->>'learning_rate')::float8 FROM neumf_models WHERE model = 'ws_sweep_$seed' AND active")
    echo "seed $seed: from scratch on everything: $(train "'ws_sweep_scratch_$seed', 'ml_train', seed => $seed")"
    for lr_factor in 0.3 1; do
      for decay in default 0; do
        extra=""; [ "$decay" = default ] || extra=", weight_decay => $decay"
        echo "seed $seed: warm start, learning rate × $lr_factor, weight decay $decay: $(train "'ws_sweep_$seed', 'ml_train', warm_start => true, seed => $seed, epochs => 20, learning_rate => $base_lr * $lr_factor, validation => true, activate => false$extra")"
      done
    done
  done
  exit 0
fi

# Per seed: the earlier model, its warm start on everything, and from scratch on everything.
# One seed moves ML-100K's HR@10 by about ±0.015 (bench/README.md), more than the goal's
# ±0.01, so the comparison is over several seeds.
seeds=${WARM_START_SEEDS:-42 1 2}
printf '%-6s %-14s %9s %9s %9s\n' seed "" "train s" "HR@10" "NDCG@10"
rows=()
for seed in $seeds; do
  train "'ws_bench_$seed', 'ml_train_early', seed => $seed" >/dev/null
  warm=$(train "'ws_bench_$seed', 'ml_train', warm_start => true, seed => $seed")
  warm_test=$(test_metrics "ws_bench_$seed")
  scratch=$(train "'ws_scratch_$seed', 'ml_train', seed => $seed")
  scratch_test=$(test_metrics "ws_scratch_$seed")
  printf '%-6s %-14s %9s %9s %9s\n' "$seed" "from scratch" "${scratch%%|*}" "${scratch_test%|*}" "${scratch_test#*|}"
  printf '%-6s %-14s %9s %9s %9s\n' "$seed" "warm start" "${warm%%|*}" "${warm_test%|*}" "${warm_test#*|}"
  rows+=("${scratch%%|*} ${scratch_test%|*} ${scratch_test#*|} ${warm%%|*} ${warm_test%|*} ${warm_test#*|}")
done
printf '%s\n' "${rows[@]}" | awk '{ st += $1; sh += $2; sn += $3; wt += $4; wh += $5; wn += $6 } END {
  n = NR; printf "mean   from scratch   %9.2f %9.4f %9.4f\n", st / n, sh / n, sn / n
  printf "mean   warm start     %9.2f %9.4f %9.4f\n", wt / n, wh / n, wn / n
  printf "warm / scratch time %.2f (goal <= 0.30); HR@10 %+.4f, NDCG@10 %+.4f (goal within +-0.01), means over %d seeds\n", wt / st, (wh - sh) / n, (wn - sn) / n, n }'
