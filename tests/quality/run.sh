#!/usr/bin/env bash
# Quality floors on MovieLens-100K (../shared/data/ml-100k, never copied into the repo): the
# paper's recipe and the shipped defaults, scored on the leave-one-out test split with its 99
# fixed negatives. Prints 'quality: N passed, M failed'.
set -uo pipefail
here=$(cd "$(dirname "$0")" && pwd)
. "$here/../lib.sh"
. "$repo/scripts/ml100k.sh"
export PGDATABASE=neumf_quality
start_cluster_or_fail quality
fresh_database neumf_quality
out=$(qc "CREATE EXTENSION neumf") || { echo "CREATE EXTENSION neumf failed: $out"; echo "quality: 0 passed, 1 failed"; exit 1; }
# Loads the split into ml_train / ml_test unless it is there.
ensure_ml100k() {
  [ "$(qc "SELECT to_regclass('ml_test') IS NOT NULL")" = t ] && return 0
  local d="$NEUMF_SHARED/data/ml-100k"
  [ -f "$d/loo.train.tsv" ] || { fail "ML-100K split not found under $d (set NEUMF_SHARED)"; return 1; }
  load_ml100k "$d"
}

t_ml100k_quality_floor() {
  ensure_ml100k || return 1
  # The paper's recipe exactly, spelled out: no validation split, no early stopping, no
  # pretraining, no recency weighting, no weight decay.
  # One seed's HR@10 varies by about ±0.01 (seeds
  # 42, 1, 2, 3 gave 0.576, 0.558, 0.578, 0.559), so the floor holds for the mean of three fixed seeds.
  local res hrs=() ndcgs=()
  for seed in 42 1 2; do
    qc "SELECT train_seconds FROM neumf_train('ml100k_s$seed', 'ml_train', architecture => 'neumf', factors => 8, layers => ARRAY[64,32,16,8],
          negatives => 4, batch_size => 256, learning_rate => 0.001, epochs => 20, validation => false, pretrain => false, recency_weight => 0, weight_decay => 0, seed => $seed)" \
      | sed "s/^/      seed $seed train seconds: /"
    res=$(qc "WITH r AS (SELECT t.item_id AS test_item, x.item_id, x.rank FROM ml_test t, LATERAL neumf_rank('ml100k_s$seed', t.user_id, t.item_id || t.negatives, 10) x)
              SELECT round(count(*) FILTER (WHERE item_id = test_item)::numeric / (SELECT count(*) FROM ml_test), 4) || '|' ||
                     round((sum(CASE WHEN item_id = test_item THEN 1 / log(2, rank + 1) ELSE 0 END) / (SELECT count(*) FROM ml_test))::numeric, 4) FROM r")
    hrs+=("${res%|*}"); ndcgs+=("${res#*|}")
  done
  local mean_hr mean_ndcg
  mean_hr=$(printf '%s\n' "${hrs[@]}" | awk '{s += $1} END {printf "%.4f", s / NR}')
  mean_ndcg=$(printf '%s\n' "${ndcgs[@]}" | awk '{s += $1} END {printf "%.4f", s / NR}')
  echo "      ML-100K leave-one-out, 99 fixed negatives, through neumf_rank: HR@10 ${hrs[*]} (mean $mean_hr), NDCG@10 ${ndcgs[*]} (mean $mean_ndcg); reference ≈ 0.57 / 0.31"
  assert_true "$mean_hr >= 0.55" "HR@10 floor (mean of 3 seeds)"
  res="${hrs[0]}|${ndcgs[0]}"
  # neumf_evaluate computes the same sampled figures, and full-catalogue ones beside them.
  local ev
  # (It skips users whose held-out item the model never saw; ranking through neumf_rank
  # counts them as misses, so compare hit counts.)
  ev=$(qc "SELECT round(hr * users) || '|' || users + skipped || '|' || (full_recall BETWEEN 0 AND hr) || '|' || round(hr::numeric, 4) || '|' || round(ndcg::numeric, 4) || '|' || round(full_recall::numeric, 4) || '|' || round(full_ndcg::numeric, 4)
            FROM neumf_evaluate('ml100k_s42', 'ml_test')")
  echo "      neumf_evaluate: hits|users|full<=sampled|HR|NDCG|full Recall@10|full NDCG@10 = $ev"
  local hits; hits=$(qc "SELECT round(${res%|*} * 943)")
  assert_eq "$(echo "$ev" | cut -d'|' -f1-3)" "$hits|943|true" "neumf_evaluate agrees with ranking through neumf_rank"
}

t_ml100k_defaults_quality_floor() {
  # Nothing but a name and a source: the shipped defaults (pretraining + refit, chosen on a
  # validation split of the training data, recency weighting, weight decay with a 5-epoch
  # timescale). Measured HR@10 0.6341 / NDCG@10 0.3538 at seed 42 (0.6310 / 0.3518 and
  # 0.6278 / 0.3515 at seeds 1 and 2); deterministic on one CPU, but another CPU's kernels may
  # take another trajectory (0.6182 / 0.3475 at seed 42 on an AMD EPYC, with the same build),
  # hence the margin (one seed moves HR@10 by about ±0.015).
  ensure_ml100k || return 1
  local row res
  row=$(qc "SELECT round(train_seconds::numeric, 1) || ' s, validation HR@10 ' || round(validation_hr::numeric, 4) FROM neumf_train('ml_defaults', 'ml_train')")
  res=$(qc "SELECT round((hr * users / (users + skipped))::numeric, 4) || '|' || round((ndcg * users / (users + skipped))::numeric, 4) FROM neumf_evaluate('ml_defaults', 'ml_test')")
  echo "      defaults: $row; test HR@10 ${res%|*}, NDCG@10 ${res#*|} (paper recipe floor above: 0.55)"
  assert_true "${res%|*} >= 0.61 AND ${res#*|} >= 0.34" "defaults quality floor"
  # 99,057 interactions × 5 samples / 256 = 1,935 steps an epoch; 1 / (0.001 × 5 epochs × 1,935)
  assert_eq "$(qc "SELECT round((hyperparameters->>'weight_decay')::numeric, 4) FROM neumf_models WHERE model = 'ml_defaults' AND active")" \
            "0.1034" "default weight decay: a timescale of 5 epochs on this data"
}

run_tests "$here/run.sh"
summary quality
