#!/usr/bin/env bash
# Warm-start benchmark (issue 12), one run, figures beside their baseline. MovieLens-100K's
# training split is cut by time at its 90% point: a model trained on the earlier part is
# warm-started on all of it (neumf_train(..., warm_start => true), defaults otherwise), beside
# a model trained from scratch on all of it (defaults). Both are scored on the leave-one-out
# test split (99 fixed negatives; users whose test item never occurs in training count as
# misses). Goal: HR@10 and NDCG@10 within 0.01 of from-scratch at ≤ 0.3× its training time.
#   bench/warm_start.sh            the benchmark
#   bench/warm_start.sh sweep      how the warm-start defaults were chosen: warm starts with
#                                  several epoch budgets and learning rates, compared on the
#                                  validation holdout only (each user's latest interaction,
#                                  kept out of the earlier model's data so it is unseen)
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
load_ml100k "$d"
cutoff=$(q "SELECT percentile_disc(0.9) WITHIN GROUP (ORDER BY ts) FROM ml_train")
q "CREATE OR REPLACE VIEW ml_train_early AS SELECT * FROM ml_train WHERE ts <= $cutoff"
echo "ML-100K cut at its 90% point (ts $cutoff): $(q "SELECT count(*) FROM ml_train_early") of $(q "SELECT count(*) FROM ml_train") interactions before it; $(q "SELECT count(DISTINCT user_id) FROM ml_train t WHERE NOT EXISTS (SELECT FROM ml_train_early e WHERE e.user_id = t.user_id)") users and $(q "SELECT count(DISTINCT item_id) FROM ml_train t WHERE NOT EXISTS (SELECT FROM ml_train_early e WHERE e.item_id = t.item_id)") items appear only after it"

test_metrics() {
  q "SELECT round((hr * users / (users + skipped))::numeric, 4) || '|' || round((ndcg * users / (users + skipped))::numeric, 4)
     FROM neumf_evaluate('$1', 'SELECT user_id, item_id, negatives FROM ml_test')"
}
# neumf_train's "train_seconds|validation_hr|validation_ndcg|epochs_run" for a call's arguments.
train() { q "SELECT round(train_seconds::numeric, 2) || '|' || round(validation_hr::numeric, 4) || '|' || round(validation_ndcg::numeric, 4) || '|' || epochs_run FROM neumf_train($1)"; }

if [ "${1:-}" = sweep ]; then
  # The warm run's validation holdout is each user's latest interaction in ml_train (by ts);
  # the earlier model never sees those rows, so its memory cannot flatter a setting.
  q "CREATE OR REPLACE VIEW ml_train_early_unseen AS
     SELECT * FROM ml_train_early e
     WHERE (e.user_id, e.ts) NOT IN (SELECT user_id, max(ts) FROM ml_train GROUP BY user_id)"
  echo "earlier model (defaults, without the validation rows): $(train "'ws_sweep_base', 'ml_train_early_unseen'")"
  base_lr=$(q "SELECT (hyperparameters->>'learning_rate')::float8 FROM neumf_models WHERE model = 'ws_sweep_base' AND active")
  echo "from scratch on everything: seconds|validation HR@10|NDCG@10|epochs = $(train "'ws_sweep_scratch', 'ml_train'")"
  for lr_factor in 1 0.3; do
    for epochs in 3 5 10 20; do
      q "SELECT neumf_activate('ws_sweep_base', 1)" >/dev/null
      echo "warm start, epochs => $epochs, learning rate × $lr_factor: $(train "'ws_sweep_base', 'ml_train', warm_start => true, epochs => $epochs, learning_rate => $base_lr * $lr_factor, activate => false")"
    done
  done
  exit 0
fi

early=$(train "'ws_bench', 'ml_train_early'")
echo "earlier model (defaults on the first 90%): ${early%%|*} s"
warm=$(train "'ws_bench', 'ml_train', warm_start => true")
warm_test=$(test_metrics ws_bench)
scratch=$(train "'ws_bench_scratch', 'ml_train'")
scratch_test=$(test_metrics ws_bench_scratch)
ws=${warm%%|*}; ss=${scratch%%|*}
printf '%-26s %10s %9s %9s %8s\n' "" "train s" "HR@10" "NDCG@10" "epochs"
printf '%-26s %10s %9s %9s %8s\n' "from scratch (baseline)" "$ss" "${scratch_test%|*}" "${scratch_test#*|}" "$(echo "$scratch" | cut -d'|' -f4)"
printf '%-26s %10s %9s %9s %8s\n' "warm start" "$ws" "${warm_test%|*}" "${warm_test#*|}" "$(echo "$warm" | cut -d'|' -f4)"
echo "warm / scratch time: $(ratio "$ws" "$ss") (goal ≤ 0.30); HR@10 difference $(awk "BEGIN { printf \"%+.4f\", ${warm_test%|*} - ${scratch_test%|*} }"), NDCG@10 difference $(awk "BEGIN { printf \"%+.4f\", ${warm_test#*|} - ${scratch_test#*|} }") (goal within ±0.01)"
