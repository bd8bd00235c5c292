#!/usr/bin/env bash
# Training benchmark (issue 3), one run, figures beside their baselines:
#   1. the reference's hyper-parameters (paper recipe) at the same thread count: HR@10 / NDCG@10
#      and samples/s of neumf_train vs ../shared/bench/reference_neumf.py
#   2. time-to-quality: neumf_train's wall time to reach the reference's 20-epoch HR@10
#   3. the shipped defaults (neumf_train with nothing but a name and a source)
#   4. GPU figures when this machine has a CUDA device (else says so)
# Test metrics use ../shared/data/ml-100k/loo.test.negative (fixed 99 negatives per user), with
# users whose test item never occurs in training counted as misses, as the reference counts them.
# Usage: bench/training.sh [threads, default 2 = the reference's default]
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd); repo=$(cd "$here/.." && pwd)
. "$repo/scripts/env.sh"
. "$repo/scripts/ml100k.sh"
. "$here/common.sh"
THREADS=${1:-2}
shared=${NEUMF_SHARED:-$repo/../shared}; d="$shared/data/ml-100k"
[ -f "$d/loo.train.tsv" ] || { echo "ML-100K not found under $d" >&2; exit 1; }
export NEUMF_PGDATA=${NEUMF_BENCH_PGDATA:-/var/tmp/neumf-bench/data} NEUMF_PGPORT=${NEUMF_BENCH_PGPORT:-5496}
export PGHOST=127.0.0.1 PGPORT=$NEUMF_PGPORT PGUSER=postgres PGDATABASE=neumf_bench
export PGOPTIONS="-c client_min_messages=warning -c neumf.train_threads=$THREADS"
q() { psql -X -q -tA -v ON_ERROR_STOP=1 -c "$1"; }
"$repo/scripts/cluster.sh" start
psql -X -q -d postgres -tAc "SELECT 1 FROM pg_database WHERE datname = 'neumf_bench'" | grep -q 1 || psql -X -q -d postgres -c "CREATE DATABASE neumf_bench"
ensure_current_extension
load_ml100k "$d"
# HR and NDCG over all 943 test users (skipped ones are misses), as "hr|ndcg".
test_metrics() {
  q "SELECT round((hr * users / (users + skipped))::numeric, 4) || '|' || round((ndcg * users / (users + skipped))::numeric, 4)
     FROM neumf_evaluate('$1', 'SELECT user_id, item_id, negatives FROM ml_test')"
}
train() { # model, extra named arguments → "train_seconds|samples_per_second|epochs_run|best_epoch|device"
  q "SELECT round(train_seconds::numeric, 2) || '|' || round(samples_per_second) || '|' || epochs_run || '|' || best_epoch || '|' || device_used
     FROM neumf_train('$1', 'ml_train'${2:+, $2})"
}

echo "== 1. paper recipe, $THREADS thread(s): reference_neumf.py vs neumf_train"
ref=$("$NEUMF_VENV/bin/python" "$shared/bench/reference_neumf.py" "$d/loo" --threads "$THREADS")
ref_hr=$(field "$ref" hr10); ref_ndcg=$(field "$ref" ndcg10)
ref_s=$(field "$ref" train_s); ref_sps=$(field "$ref" samples_per_s)
PAPER="architecture => 'neumf', factors => 8, layers => ARRAY[64,32,16,8], negatives => 4, batch_size => 256, learning_rate => 0.001, epochs => 20, validation => false, pretrain => false, recency_weight => 0, weight_decay => 0, device => 'cpu'"
IFS='|' read -r p_s p_sps _ _ _ <<<"$(train bench_paper "$PAPER")"
IFS='|' read -r p_hr p_ndcg <<<"$(test_metrics bench_paper)"

echo "== 2. time to the reference's HR@10 ($ref_hr)"
# neumf's own fast settings, fixed in advance: NeuMF f16, batch 1024, lr 0.003, no validation
# (and no weight decay, as when they were fixed).
# Runs of E epochs are independent (constant learning rate, same seed): the first E reaching
# the target gives the wall time.
FAST="architecture => 'neumf', factors => 16, batch_size => 1024, learning_rate => 0.003, validation => false, pretrain => false, weight_decay => 0, device => 'cpu'"
ttq_s=""; ttq_e=""
for e in $(seq 1 20); do
  IFS='|' read -r s _ _ _ _ <<<"$(train bench_fast "$FAST, epochs => $e")"
  IFS='|' read -r hr nd <<<"$(test_metrics bench_fast)"
  echo "   $e epochs: HR@10 $hr NDCG@10 $nd in $s s"
  if awk "BEGIN { exit !($hr >= $ref_hr) }"; then ttq_s=$s; ttq_e=$e; break; fi
done

# One training is one draw: on ML-100K a seed moves HR@10 by about ±0.015, so the defaults are
# judged on the mean over seeds fixed in advance (BENCH_SEEDS), each printed.
SEEDS=${BENCH_SEEDS:-42 1 2}
echo "== 3. shipped defaults: neumf_train('bench_defaults', 'ml_train', seed => s) for s in $SEEDS"
d_runs=""; d_hr_sum=0; d_ndcg_sum=0; n_seeds=0
for seed in $SEEDS; do
  IFS='|' read -r d_s d_sps d_epochs d_best d_dev <<<"$(train bench_defaults "device => 'cpu', seed => $seed")"
  IFS='|' read -r d_hr d_ndcg <<<"$(test_metrics bench_defaults)"
  echo "   seed $seed: HR@10 $d_hr NDCG@10 $d_ndcg in $d_s s ($d_epochs epochs run, best $d_best, $d_sps samples/s)"
  d_runs="$d_runs     seed $seed: HR@10 $d_hr  NDCG@10 $d_ndcg  ($d_s s, $d_epochs epochs run, best $d_best)"$'\n'
  d_hr_sum=$(awk "BEGIN { print $d_hr_sum + $d_hr }"); d_ndcg_sum=$(awk "BEGIN { print $d_ndcg_sum + $d_ndcg }")
  n_seeds=$((n_seeds + 1))
done
d_hr_mean=$(awk "BEGIN { printf \"%.4f\", $d_hr_sum / $n_seeds }"); d_ndcg_mean=$(awk "BEGIN { printf \"%.4f\", $d_ndcg_sum / $n_seeds }")
d_cfg=$(q "SELECT hyperparameters - 'seed' FROM neumf_models WHERE model = 'bench_defaults' AND active")

echo "== 4. GPU"
gpu=$(q "SELECT device_used FROM neumf_train('bench_gpu_probe', 'SELECT * FROM ml_train LIMIT 5000', epochs => 1, device => 'auto', validation => false)")

cat <<REPORT

=== training benchmark (ML-100K leave-one-out, $(nproc) cores, neumf.train_threads = $THREADS) ===
1. paper recipe (f8, 64-32-16-8, 4 neg, batch 256, Adam 1e-3, 20 epochs), $THREADS thread(s):
     reference_neumf.py  HR@10 $ref_hr  NDCG@10 $ref_ndcg  $ref_sps samples/s  ($ref_s s)
     neumf_train         HR@10 $p_hr  NDCG@10 $p_ndcg  $p_sps samples/s  ($p_s s)
     HR gap $(awk "BEGIN { printf \"%+.4f\", $p_hr - $ref_hr }") (goal within ±0.015), speed $(ratio "$p_sps" "$ref_sps")× (goal >= 1.5×)
2. time to the reference's HR@10 $ref_hr: neumf_train ${ttq_s:-not reached} s ($ttq_e epochs, NeuMF f16 batch 1024 lr 0.003)
     vs reference $ref_s s for 20 epochs: $( [ -n "$ttq_s" ] && ratio "$ttq_s" "$ref_s" || echo n/a)× (goal <= 0.25×)
3. shipped defaults, mean of $n_seeds seeds: HR@10 $d_hr_mean  NDCG@10 $d_ndcg_mean  (goal >= 0.62 / 0.34; reference's grid best ≈ 0.589 / 0.325)
${d_runs}     settings: $d_cfg
4. GPU: $( [ "${gpu#cuda}" != "$gpu" ] && echo "device $gpu (run bench/gpu.sh for the figures)" || echo "no CUDA device on this machine (device_used = $gpu); the CUDA path is built and linked (ldd shows libtorch_cuda.so)")
REPORT
