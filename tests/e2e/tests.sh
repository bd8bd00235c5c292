# The end-to-end tests, run in this order against one database. See lib.sh for helpers.

versions() { qc "SELECT count(*) || '/' || (SELECT count(*) FROM neumf_model_chunks) FROM neumf_model_versions"; }

t_create_extension_and_small_model() {
  qc "CREATE EXTENSION neumf" >/dev/null
  qc "CREATE TABLE small AS SELECT * FROM neumf_synthetic_interactions(300, 120, per_user => 15, clusters => 4)" >/dev/null
  local row
  row=$(qc "SELECT version, active, device_used, users, items, interactions = (SELECT count(DISTINCT (user_id, item_id)) FROM small), epochs_run, final_loss < 0.7
            FROM neumf_train('small', 'small', epochs => 4, learning_rate => 0.005)")
  assert_eq "$row" "1|t|cpu|300|120|t|4|t" "training summary row"
  assert_eq "$(qc "SELECT count(*) FROM neumf_models WHERE model = 'small' AND active AND size_bytes > 0")" "1" "neumf_models row"
}

t_score_rank_recommend() {
  assert_true "neumf_score('small', 1, 1) BETWEEN 0 AND 1" "score is a probability"
  assert_true "neumf_score('small', 999999, 1) IS NULL" "unknown user gives NULL"
  assert_true "neumf_score('small', 1, 999999) IS NULL" "unknown item gives NULL"
  # rank: k best of the candidates, best first; unknown, NULL and repeated candidates skipped
  local got
  got=$(qc "SELECT string_agg(rank::text, ',' ORDER BY rank) FROM neumf_rank('small', 1, ARRAY[1, 2, 3, 999999, NULL, 2, 5, 9], 4)")
  assert_eq "$got" "1,2,3,4" "rank numbering"
  assert_true "(SELECT bool_and(score >= lead_score) FROM (SELECT score, lead(score, 1, 0.0) OVER (ORDER BY rank) AS lead_score FROM neumf_rank('small', 1, ARRAY[1,2,3,5,9], 5)) s)" "scores descend with rank"
  assert_true "(SELECT count(DISTINCT item_id) = 5 FROM neumf_rank('small', 1, ARRAY[1,2,3,5,9,2,2,999999], 10))" "each known candidate once"
  assert_true "(SELECT score = neumf_score('small', 1, 5) FROM neumf_rank('small', 1, ARRAY[5], 1))" "rank score = neumf_score"
  assert_true "NOT EXISTS (SELECT 1 FROM neumf_rank('small', 999999, ARRAY[1, 2], 10))" "unknown user: empty rank"
  # recommend: whole catalogue, seen items excluded by default
  assert_eq "$(qc "SELECT count(*) FROM neumf_recommend('small', 1)")" "10" "default k"
  assert_true "NOT EXISTS (SELECT 1 FROM neumf_recommend('small', 1, 50) r JOIN small s ON s.user_id = 1 AND s.item_id = r.item_id)" "seen items excluded"
  assert_true "EXISTS (SELECT 1 FROM neumf_recommend('small', 1, 120, exclude_seen => false) r JOIN small s ON s.user_id = 1 AND s.item_id = r.item_id)" "exclude_seen => false keeps them"
  assert_true "(SELECT max(rank) = 120 FROM neumf_recommend('small', 1, 500, false))" "k beyond the catalogue returns the catalogue"
  assert_true "(SELECT bool_and(source = 'model') FROM neumf_recommend('small', 1))" "known user: source model"
  # cold start: an unknown user gets the most popular items, scored by the share of users
  assert_eq "$(qc "SELECT string_agg(source, ',') FROM neumf_recommend('small', 999999, 3)")" "popularity,popularity,popularity" "cold start flagged"
  assert_true "(SELECT score FROM neumf_recommend('small', 999999, 1)) = (SELECT count(DISTINCT user_id)::float8 / 300 FROM small GROUP BY item_id ORDER BY 1 DESC LIMIT 1)" "cold start = most popular item"
  assert_true "(SELECT bool_and(score >= lead_score) FROM (SELECT score, lead(score, 1, 0.0) OVER (ORDER BY rank) AS lead_score FROM neumf_recommend('small', 999999, 20)) s)" "cold start ordered by popularity"
}

t_learns_planted_groups() {
  # 4 planted taste groups: a trained model puts most of a user's top 10 in the user's group.
  qc "SELECT * FROM neumf_train('planted', 'small', epochs => 12, batch_size => 256, learning_rate => 0.005)" >/dev/null
  local pct
  pct=$(qc "SELECT round(avg(((r.item_id - 1) % 4 = (u - 1) % 4)::int), 2) FROM generate_series(1, 300) u, LATERAL neumf_recommend('planted', u, 10) r")
  echo "      share of top-10 in the user's planted group: $pct (random: 0.25)"
  assert_true "$pct >= 0.6" "planted groups recovered"
}

t_text_ids() {
  qc "CREATE TABLE text_events AS SELECT 'user-' || md5(user_id::text) AS user_id, md5(item_id::text)::uuid AS item_id, rating FROM small" >/dev/null
  assert_eq "$(qc "SELECT users || '|' || items FROM neumf_train('textual', 'text_events', epochs => 2)")" "300|120" "text id counts"
  local u i
  u=$(qc "SELECT 'user-' || md5('1')"); i=$(qc "SELECT md5('5')::uuid::text")
  assert_true "neumf_score('textual', '$u', '$i') BETWEEN 0 AND 1" "text score"
  assert_true "neumf_score('textual', '$u', 'nope') IS NULL" "unknown text item"
  assert_eq "$(qc "SELECT count(*) FROM neumf_rank('textual', '$u', ARRAY['$i', md5('6')::uuid::text, 'nope'], 5)")" "2" "text rank"
  assert_true "(SELECT bool_and(item_id ~ '^[0-9a-f-]{36}\$') FROM neumf_recommend('textual', '$u', 5))" "text recommend returns the stored ids"
  assert_eq "$(qc "SELECT count(*) || ':' || min(source) FROM neumf_recommend('textual', 'somebody-new', 5)")" "5:popularity" "unknown text user gets popular items"
}

t_skips_null_ids_and_low_ratings() {
  qc "CREATE TABLE with_nulls AS SELECT * FROM small UNION ALL SELECT NULL, 1, 5, now() UNION ALL SELECT 1, NULL, 5, now() UNION ALL SELECT NULL, NULL, 5, now()" >/dev/null
  assert_eq "$(qc "SELECT skipped_null_ids FROM neumf_train('nulls', 'with_nulls', epochs => 1)")" "3" "NULL ids counted"
  local low
  low=$(qc "SELECT count(*) FROM small WHERE rating < 4")
  assert_eq "$(qc "SELECT skipped_below_min_rating FROM neumf_train('liked', 'small', epochs => 1, min_rating => 4)")" "$low" "min_rating"
  assert_true "(SELECT rows_skipped->>'below_min_rating' = '$low' FROM neumf_models WHERE model = 'liked')" "skips stored with the version"
}

t_query_source_and_dedup() {
  local row
  row=$(qc "SELECT rows_read - interactions = duplicates FROM neumf_train('dups', 'SELECT user_id, item_id FROM small UNION ALL SELECT user_id, item_id FROM small', epochs => 1)")
  assert_eq "$row" "t" "duplicates collapsed and counted"
}

t_bad_input_is_a_clear_error() {
  local before; before=$(versions)
  assert_error "SELECT neumf_train('b', 'no_such_table')" 'source table "no_such_table" does not exist'
  assert_error "SELECT neumf_train('b', 'SELECT user_id FROM small')" 'source has no column "item_id"'
  assert_error "SELECT neumf_train('b', 'SELECT user_id::float8 AS user_id, item_id FROM small')" 'ids must be'
  assert_error "SELECT neumf_train('b', 'SELECT user_id, item_id, ''x''::text AS rating FROM small')" '"rating" has type text'
  assert_error "SELECT neumf_train('b', 'SELECT user_id, item_id, true AS ts FROM small')" '"ts" has type boolean'
  assert_error "SELECT neumf_train('b', 'SELECT user_id, item_id FROM small WHERE false')" 'no interactions to train on'
  assert_error "SELECT neumf_train('b', 'SELECT user_id, item_id FROM small', min_rating => 4)" 'no "rating" column'
  assert_error "SELECT neumf_train('b', 'small', factors => 0)" 'factors must be positive'
  assert_error "SELECT neumf_train('b', 'small', factors => 100000)" 'factors must be between 1 and 4096'
  assert_error "SELECT neumf_train('b', 'small', epochs => 0)" 'epochs must be positive'
  assert_error "SELECT neumf_train('b', 'small', epochs => 10000000)" 'epochs must be between'
  assert_error "SELECT neumf_train('b', 'small', layers => '{}')" 'layers must list at least two widths'
  assert_error "SELECT neumf_train('b', 'small', layers => ARRAY[63, 32])" 'must be even'
  assert_error "SELECT neumf_train('b', 'small', layers => ARRAY[64, -1])" 'every layer width must be positive'
  assert_error "SELECT neumf_train('b', 'small', learning_rate => -1)" 'learning_rate must be in (0, 10]'
  assert_error "SELECT neumf_train('b', 'small', learning_rate => 'NaN')" 'learning_rate'
  assert_error "SELECT neumf_train('b', 'small', negatives => 0)" 'negatives must be positive'
  assert_error "SELECT neumf_train('b', 'small', batch_size => 0)" 'batch_size must be positive'
  assert_error "SELECT neumf_train('b', 'small', architecture => 'bert')" 'unknown architecture "bert"'
  assert_error "SELECT neumf_train('b', 'small', device => 'tpu')" 'unknown device "tpu"'
  assert_error "SELECT neumf_train('', 'small')" 'model name is empty'
  if [ "$(qc "SELECT count(*) FROM neumf_models WHERE device LIKE 'cuda%'")" = 0 ] && ! command -v nvidia-smi >/dev/null; then
    assert_error "SELECT neumf_train('b', 'small', device => 'cuda')" 'no CUDA device is available'
  fi
  assert_error "SELECT neumf_score('nope', 1, 1)" 'neumf model "nope" does not exist'
  assert_error "SELECT * FROM neumf_rank('small', 1, ARRAY[1], 0)" 'k must be a positive number'
  assert_error "SELECT * FROM neumf_recommend('small', 1, -1)" 'k must be a positive number'
  assert_error "SELECT neumf_activate('small', 99)" 'has no version 99'
  assert_error "SELECT neumf_activate('nope', 1)" 'neumf model "nope" does not exist'
  assert_error "SELECT neumf_drop('nope')" 'neumf model "nope" does not exist'
  assert_error "SELECT neumf_train('b', 'small', sampling => 'smart')" 'unknown sampling "smart"'
  assert_error "SELECT neumf_train('b', 'small', sampling => 'popularity', popularity_exponent => 0)" 'popularity exponent must be in (0, 10]'
  assert_error "SELECT neumf_train('b', 'small', sampling => 'hard', hard_pool => 1)" 'hard_pool must be between 2 and 1000'
  assert_error "SELECT neumf_train('b', 'small', sampling => 'hard', hard_share => 0)" 'hard_share must be in (0, 1]'
  assert_error "SELECT neumf_train('b', 'small', architecture => 'gmf', pretrain => true)" "pretrain => true needs architecture => 'neumf'"
  assert_error "SELECT neumf_train('b', 'small', batch_size => 1000000)" 'batch_size 1000000 is larger than an epoch'
  assert_error "SELECT neumf_train('b', 'small', weight_decay => -0.1)" 'weight_decay must be ≥ 0'
  assert_error "SELECT neumf_train('b', 'small', dropout => 1)" 'dropout must be in [0, 1)'
  assert_error "SELECT neumf_train('b', 'small', lr_schedule => 'step')" 'unknown lr_schedule "step"'
  assert_error "SELECT neumf_train('b', 'small', recency_weight => -1)" 'recency_weight must be in [0, 1000]'
  assert_error "SELECT neumf_train('b', 'small', recency_half_life => 0)" 'recency_half_life (interactions) must be in (0, 1000000]'
  assert_error "SELECT neumf_train('b', 'small', patience => -1)" 'patience must be 0'
  assert_error "SELECT neumf_train('b', 'SELECT 1 AS user_id, 2 AS item_id', validation => true)" 'validation => true needs users with at least two interactions'
  assert_error "SELECT * FROM neumf_evaluate('small', 'no_such_table')" 'test table "no_such_table" does not exist'
  assert_error "SELECT * FROM neumf_evaluate('small', 'SELECT 1 AS user_id')" 'test source has no column "item_id"'
  assert_eq "$(qc "SELECT neumf_drop('nope', if_exists => true)")" "0" "drop if_exists"
  assert_eq "$(versions)" "$before" "failed calls stored nothing"
}

t_versions_activate_and_cross_backend_invalidation() {
  qc "CREATE EXTENSION IF NOT EXISTS dblink" >/dev/null
  local v1 v2
  v1=$(qc "SELECT neumf_score('small', 1, 5)")
  assert_eq "$(qc "SELECT version FROM neumf_train('small', 'small', epochs => 2, seed => 7)")" "2" "second version"
  v2=$(qc "SELECT neumf_score('small', 1, 5)")
  [ "$v1" != "$v2" ] || fail "new version serves new scores"
  # One session caches v2, another session activates v1: the first must see v1 at its next statement.
  local out
  out=$(psql -X -q -tA -v ON_ERROR_STOP=1 <<SQL
SELECT neumf_score('small', 1, 5);
SELECT v FROM dblink('host=127.0.0.1 port=$PGPORT user=postgres dbname=$PGDATABASE', \$\$SELECT neumf_activate('small', 1)\$\$) AS t(v int);
SELECT neumf_score('small', 1, 5);
SQL
)
  assert_eq "$(echo "$out" | tr '\n' ' ')" "$v2 1 $v1 " "cached model replaced after another backend's activation"
  assert_eq "$(qc "SELECT string_agg(version || ':' || active, ',' ORDER BY version) FROM neumf_models WHERE model = 'small'")" "1:true,2:false" "one active version"
}

t_rollback_leaves_no_trace() {
  local before; before=$(versions)
  qc "BEGIN; SELECT neumf_train('rolled_back', 'small', epochs => 1); ROLLBACK;" >/dev/null
  assert_eq "$(versions)" "$before" "rolled-back training left nothing"
  assert_error "SELECT neumf_score('rolled_back', 1, 1)" 'does not exist'
}

t_multi_chunk_storage() {
  # Small chunks force many rows per model: the same path models over 1 GB take.
  qc "SET neumf.chunk_size = 8; SELECT neumf_train('chunky', 'small', epochs => 1)" >/dev/null
  assert_true "(SELECT count(*) > 5 FROM neumf_model_chunks WHERE model = 'chunky')" "several chunks"
  assert_true "(SELECT sum(length(data)) = (SELECT size_bytes FROM neumf_model_versions WHERE model = 'chunky') FROM neumf_model_chunks WHERE model = 'chunky')" "chunks add up"
  assert_true "neumf_score('chunky', 1, 5) BETWEEN 0 AND 1" "multi-chunk model serves"
}

t_cancel_and_timeout_stop_training_fast() {
  qc "CREATE TABLE big AS SELECT * FROM neumf_synthetic_interactions(3000, 800, per_user => 20)" >/dev/null
  qc "SELECT neumf_train('long', 'big', epochs => 1)" >/dev/null
  local before; before=$(versions)
  local score_before; score_before=$(qc "SELECT neumf_score('long', 1, 5)")
  # 1. pg_cancel_backend, while a second session tries to train the same model.
  psql -X -q -c "SET application_name = 'neumf_long'" -c "SELECT neumf_train('long', 'big', epochs => 1000)" >/tmp/neumf_e2e_cancel.out 2>&1 &
  local bg=$!
  for _ in $(seq 1 100); do
    [ "$(qc "SELECT count(*) FROM pg_stat_activity WHERE application_name = 'neumf_long' AND query LIKE '%epochs => 1000%'")" = 1 ] && break
    sleep 0.1
  done
  sleep 2 # inside the epoch loop by now
  assert_error "SELECT neumf_train('long', 'big', epochs => 1)" 'neumf model "long" is already being trained by another session'
  local t0; t0=$(date +%s.%N)
  qc "SELECT pg_cancel_backend(pid) FROM pg_stat_activity WHERE application_name = 'neumf_long'" >/dev/null
  wait $bg || true
  local took; took=$(awk "BEGIN { print $(date +%s.%N) - $t0 }")
  echo "      cancel took ${took}s"
  grep -q "canceling statement due to user request" /tmp/neumf_e2e_cancel.out || fail "cancel message: $(cat /tmp/neumf_e2e_cancel.out)"
  assert_true "$took < 1.0" "cancel within a second"
  # 2. statement_timeout
  t0=$(date +%s.%N)
  assert_error "SET statement_timeout = '1500ms'; SELECT neumf_train('long', 'big', epochs => 1000)" 'canceling statement due to statement timeout'
  took=$(awk "BEGIN { print $(date +%s.%N) - $t0 }")
  echo "      statement_timeout 1.5 s: returned after ${took}s"
  assert_true "$took < 2.5" "timeout honoured within a second"
  assert_eq "$(versions)" "$before" "nothing stored by the stopped trainings"
  assert_eq "$(qc "SELECT neumf_score('long', 1, 5)")" "$score_before" "previous model untouched"
}

t_corrupt_model_is_an_error_not_a_crash() {
  qc "SELECT neumf_train('fragile', 'small', epochs => 1)" >/dev/null
  local started; started=$(qc "SELECT pg_postmaster_start_time()")
  qc "UPDATE neumf_model_chunks SET data = overlay(data PLACING '\xffffffffffffff7f'::bytea FROM 1) WHERE model = 'fragile' AND chunk_no = 0" >/dev/null
  assert_error "SELECT neumf_score('fragile', 1, 1)" 'decoding neumf model "fragile" version 1'
  qc "UPDATE neumf_model_chunks SET data = substr(data, 1, 10) WHERE model = 'fragile'" >/dev/null
  assert_error "SELECT neumf_score('fragile', 1, 1)" 'is incomplete'
  # Same session keeps working after the ERROR.
  assert_eq "$(psql -X -q -tA -c "SELECT neumf_score('fragile', 1, 1)" -c "SELECT 41 + 1" 2>/dev/null | tail -1)" "42" "session survives"
  assert_eq "$(qc "SELECT pg_postmaster_start_time()")" "$started" "no crash-restart"
  qc "SELECT neumf_drop('fragile')" >/dev/null
}

t_cache_is_bounded_and_evicts_lru() {
  # A cache of 0 keeps only the model in use: serving models in turn evicts and reloads them,
  # and the answers stay right.
  local a b
  a=$(qc "SELECT neumf_score('small', 1, 5)"); b=$(qc "SELECT neumf_score('planted', 1, 5)")
  local out
  out=$(psql -X -q -tA -v ON_ERROR_STOP=1 <<SQL
SELECT neumf_score('small', 1, 5);
SELECT neumf_score('planted', 1, 5);
SELECT string_agg(model, ',') FROM neumf_cache();
SET neumf.model_cache_size = 0;
SELECT neumf_score('small', 1, 5);
SELECT string_agg(model, ',') FROM neumf_cache();
SELECT neumf_score('planted', 1, 5);
SELECT string_agg(model || ':' || version, ',') FROM neumf_cache();
SQL
)
  assert_eq "$(echo "$out" | tr '\n' ' ')" "$a $b planted,small $a small $b planted:1 " "LRU eviction with the answers unchanged"
}

t_export_is_the_stored_blob() {
  assert_true "length(neumf_export('small')) = (SELECT size_bytes FROM neumf_models WHERE model = 'small' AND active)" "export = active blob"
  assert_true "length(neumf_export('small', 2)) = (SELECT size_bytes FROM neumf_models WHERE model = 'small' AND version = 2)" "export a version"
  assert_true "substr(neumf_export('small'), 9, 1) = '{'::bytea" "safetensors header follows the 8-byte length"
}

t_restart_keeps_models() {
  local before after
  before=$(qc "SELECT string_agg(item_id || ':' || score, ',' ORDER BY rank) FROM neumf_recommend('small', 7, 5)")
  cluster restart
  after=$(qc "SELECT string_agg(item_id || ':' || score, ',' ORDER BY rank) FROM neumf_recommend('small', 7, 5)")
  assert_eq "$after" "$before" "same recommendations after restart"
}

t_dump_and_restore() {
  local dump=/tmp/neumf_e2e.dump before after
  before=$(qc "SELECT string_agg(item_id || ':' || score, ',' ORDER BY rank) FROM neumf_recommend('small', 7, 5)")
  /usr/lib/postgresql/15/bin/pg_dump -Fc -f "$dump" "$PGDATABASE"
  psql -X -q -d postgres -c "DROP DATABASE IF EXISTS neumf_restored" -c "CREATE DATABASE neumf_restored"
  /usr/lib/postgresql/15/bin/pg_restore -d neumf_restored "$dump"
  after=$(PGDATABASE=neumf_restored qc "SELECT string_agg(item_id || ':' || score, ',' ORDER BY rank) FROM neumf_recommend('small', 7, 5)")
  assert_eq "$after" "$before" "same recommendations after pg_dump/pg_restore"
  assert_eq "$(PGDATABASE=neumf_restored qc "SELECT string_agg(version || ':' || active, ',' ORDER BY version) FROM neumf_models WHERE model = 'small'")" \
            "$(qc "SELECT string_agg(version || ':' || active, ',' ORDER BY version) FROM neumf_models WHERE model = 'small'")" "versions restored"
  psql -X -q -d postgres -c "DROP DATABASE neumf_restored"; rm -f "$dump"
}

t_drop_model_and_extension() {
  assert_true "neumf_drop('dups') = 1" "drop returns versions deleted"
  assert_true "NOT EXISTS (SELECT 1 FROM neumf_model_chunks WHERE model = 'dups')" "chunks gone"
  qc "DROP EXTENSION neumf" >/dev/null
  assert_eq "$(qc "SELECT count(*) FROM pg_class WHERE relname LIKE 'neumf%'")" "0" "no relations left"
  assert_eq "$(qc "SELECT count(*) FROM pg_proc WHERE proname LIKE 'neumf%'")" "0" "no functions left"
  qc "CREATE EXTENSION neumf" >/dev/null
  assert_eq "$(qc "SELECT count(*) FROM neumf_models")" "0" "fresh after re-create"
  assert_eq "$(qc "SELECT version FROM neumf_train('again', 'small', epochs => 1)")" "1" "trains after re-create"
  assert_true "neumf_score('again', 1, 5) BETWEEN 0 AND 1" "serves after re-create"
}

t_ml100k_quality_floor() {
  local d="$NEUMF_SHARED/data/ml-100k"
  [ -f "$d/loo.train.tsv" ] || { fail "ML-100K split not found under $d (set NEUMF_SHARED)"; return 1; }
  load_ml100k "$d"
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

t_validation_metrics_are_stored() {
  local row
  row=$(qc "SELECT validation_hr BETWEEN 0 AND 1, best_epoch BETWEEN 1 AND epochs_run FROM neumf_train('validated', 'small', epochs => 6, pretrain => false, refit => false, patience => 0)")
  assert_eq "$row" "t|t" "validation figures returned"
  assert_true "(SELECT (metrics->'validation'->>'hr')::float8 BETWEEN 0 AND 1 AND (metrics->'validation'->>'full_recall')::float8 BETWEEN 0 AND 1 FROM neumf_models WHERE model = 'validated')" "sampled and full-catalogue metrics stored"
  assert_true "(SELECT jsonb_array_length(metrics->'epochs') = 6 FROM neumf_models WHERE model = 'validated')" "per-epoch history stored"
  assert_eq "$(qc "SELECT validation_hr IS NULL FROM neumf_train('unvalidated', 'small', epochs => 2, validation => false, weight_decay => 0)")" "t" "validation => false"
  assert_eq "$(qc "SELECT (hyperparameters->>'weight_decay')::float8 || ' ' || (hyperparameters->>'optimizer') FROM neumf_models WHERE model = 'unvalidated'")" \
            "0 adam" "weight_decay => 0 is plain Adam"
  for s in popularity hard; do
    assert_true "(SELECT validation_hr > 0 FROM neumf_train('sampled_$s', 'small', epochs => 3, sampling => '$s'))" "sampling => $s trains"
  done
  assert_eq "$(qc "SELECT string_agg(DISTINCT e->>'phase', ',' ORDER BY e->>'phase') FROM neumf_models, jsonb_array_elements(metrics->'epochs') e WHERE model = 'pretrained'" )" "" "no model yet"
  qc "SELECT neumf_train('pretrained', 'small', epochs => 3, pretrain => true, refit => false)" >/dev/null
  assert_eq "$(qc "SELECT string_agg(DISTINCT e->>'phase', ',' ORDER BY e->>'phase') FROM neumf_models, jsonb_array_elements(metrics->'epochs') e WHERE model = 'pretrained'")" "gmf,mlp,neumf" "pretraining ran GMF, MLP, then NeuMF"
  # refit: epochs chosen on the holdout, then the same epochs again on all the data
  qc "SELECT neumf_train('refitted', 'small', epochs => 4, pretrain => false, refit => true, patience => 0)" >/dev/null
  assert_eq "$(qc "SELECT string_agg(e.v->>'phase', ',' ORDER BY e.n) FROM neumf_models, jsonb_array_elements(metrics->'epochs') WITH ORDINALITY AS e(v, n) WHERE model = 'refitted'")" \
            "neumf,neumf,neumf,neumf$(for _ in $(seq 1 "$(qc "SELECT (metrics->>'best_epoch')::int FROM neumf_models WHERE model = 'refitted'")"); do printf ',neumf refit'; done)" "refit runs the best epoch count on all data"
  assert_true "(SELECT (hyperparameters->>'refit')::bool FROM neumf_models WHERE model = 'refitted')" "refit recorded"
  # Mixed precision trains (bfloat16 forward pass) and is recorded; the stored model is f32 as ever.
  assert_true "(SELECT validation_hr > 0 FROM neumf_train('mixed', 'small', epochs => 3, mixed_precision => true))" "mixed_precision => true trains"
  assert_eq "$(qc "SELECT hyperparameters->>'precision' FROM neumf_models WHERE model = 'mixed'")" "bf16" "precision recorded"
  assert_true "(SELECT neumf_score('mixed', user_id, item_id) BETWEEN 0 AND 1 FROM small LIMIT 1)" "bf16-trained model serves"
}

t_ml100k_defaults_quality_floor() {
  # Nothing but a name and a source: the shipped defaults (pretraining + refit, chosen on a
  # validation split of the training data, recency weighting, weight decay with a 5-epoch
  # timescale). Measured HR@10 0.6341 / NDCG@10 0.3538 at seed 42 (0.6310 / 0.3518 and
  # 0.6278 / 0.3515 at seeds 1 and 2); deterministic on one CPU, but another CPU's kernels may
  # take another trajectory, hence the margin (one seed moves HR@10 by about ±0.015).
  local row res
  row=$(qc "SELECT round(train_seconds::numeric, 1) || ' s, validation HR@10 ' || round(validation_hr::numeric, 4) FROM neumf_train('ml_defaults', 'ml_train')")
  res=$(qc "SELECT round((hr * users / (users + skipped))::numeric, 4) || '|' || round((ndcg * users / (users + skipped))::numeric, 4) FROM neumf_evaluate('ml_defaults', 'ml_test')")
  echo "      defaults: $row; test HR@10 ${res%|*}, NDCG@10 ${res#*|} (paper recipe floor above: 0.55)"
  assert_true "${res%|*} >= 0.61 AND ${res#*|} >= 0.34" "defaults quality floor"
  # 99,057 interactions × 5 samples / 256 = 1,935 steps an epoch; 1 / (0.001 × 5 epochs × 1,935)
  assert_eq "$(qc "SELECT round((hyperparameters->>'weight_decay')::numeric, 4) || ' ' || (hyperparameters->>'optimizer') FROM neumf_models WHERE model = 'ml_defaults' AND active")" \
            "0.1034 adamw" "default weight decay: a timescale of 5 epochs on this data"
}
