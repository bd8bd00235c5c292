# The server-control tests (see run.sh). Each creates what it needs in neumf_e2e or in a
# database of its own.

# "item:score,…" of a model's top 5 for user 7, to compare before and after.
top5() { qc "SELECT string_agg(item_id || ':' || score, ',' ORDER BY rank) FROM neumf_recommend('$1', 7, 5)"; }

small_table() { # name
  must "CREATE TABLE IF NOT EXISTS $1 AS SELECT * FROM neumf_synthetic_interactions(300, 120, per_user => 15, clusters => 4)"
}

t_restart_keeps_models() {
  small_table rs_small
  must "SELECT neumf_train('rs_model', 'rs_small', epochs => 2)" || return 1
  local before; before=$(top5 rs_model)
  [[ "$before" == *:* ]] || fail "no recommendations before the restart: $before"
  cluster restart
  assert_eq "$(top5 rs_model)" "$before" "same recommendations after restart"
}

t_dump_and_restore() {
  small_table dr_small
  must "SELECT neumf_train('dr_model', 'dr_small', epochs => 1)" || return 1
  must "SELECT neumf_train('dr_model', 'dr_small', epochs => 1, seed => 3, activate => false)" || return 1
  local dump before
  dump=$(mktemp /tmp/neumf_e2e.XXXXXX.dump); chmod 644 "$dump"
  before=$(top5 dr_model)
  [[ "$before" == *:* ]] || fail "no recommendations before the dump: $before"
  "$PG_BIN/pg_dump" -Fc -f "$dump" "$PGDATABASE" || fail "pg_dump failed"
  fresh_database neumf_restored
  "$PG_BIN/pg_restore" -d neumf_restored "$dump" || fail "pg_restore reported errors"
  assert_eq "$(PGDATABASE=neumf_restored top5 dr_model)" "$before" "same recommendations after pg_dump/pg_restore"
  local versions="SELECT string_agg(version || ':' || active, ',' ORDER BY version) FROM neumf_models WHERE model = 'dr_model'"
  assert_eq "$(PGDATABASE=neumf_restored qc "$versions")" "1:true,2:false" "versions restored"
  assert_eq "$(PGDATABASE=neumf_restored qc "SELECT count(*) FROM neumf_model_chunks")" "$(qc "SELECT count(*) FROM neumf_model_chunks")" "chunks restored"
  psql -X -q -d postgres -c "DROP DATABASE neumf_restored" >/dev/null; rm -f "$dump"
}

t_cancel_and_timeout_stop_training() {
  must "CREATE TABLE ct_big AS SELECT * FROM neumf_synthetic_interactions(3000, 800, per_user => 20)" || return 1
  must "SELECT neumf_train('ct_model', 'ct_big', epochs => 1)" || return 1
  local before score_before
  before=$(qc "SELECT count(*) || '/' || (SELECT count(*) FROM neumf_model_chunks) FROM neumf_model_versions")
  score_before=$(qc "SELECT neumf_score('ct_model', 1, 5)")
  # 1. pg_cancel_backend, while a second session tries to train the same model.
  local out; out=$(mktemp)
  psql -X -q -c "SET application_name = 'neumf_ct'" -c "SELECT neumf_train('ct_model', 'ct_big', epochs => 1000)" >"$out" 2>&1 &
  local bg=$!
  # Training has started once the source is read: the training NOTICE is not visible from
  # here, but the lock is, and the query runs.
  wait_until "EXISTS (SELECT 1 FROM pg_stat_activity a JOIN pg_locks l ON l.pid = a.pid AND l.locktype = 'advisory'
                      WHERE a.application_name = 'neumf_ct' AND a.state = 'active')" 30 >/dev/null || fail "training did not start"
  assert_error "SELECT neumf_train('ct_model', 'ct_big', epochs => 1)" 55006 'neumf model "ct_model" is already being trained by another session'
  qc "SELECT pg_cancel_backend(pid) FROM pg_stat_activity WHERE application_name = 'neumf_ct'" >/dev/null
  local took
  took=$(wait_until "NOT EXISTS (SELECT 1 FROM pg_stat_activity WHERE application_name = 'neumf_ct' AND state = 'active')" 60) \
    || fail "the cancelled training did not stop within 60 s"
  echo "      cancel: the backend was idle again after ${took} s"
  wait $bg || true
  grep -q "57014\|canceling statement due to user request" "$out" || fail "cancel message: $(cat "$out")"
  rm -f "$out"
  # 2. statement_timeout
  assert_error "SET statement_timeout = '1500ms'; SELECT neumf_train('ct_model', 'ct_big', epochs => 1000)" 57014 'canceling statement due to statement timeout'
  assert_eq "$(qc "SELECT count(*) || '/' || (SELECT count(*) FROM neumf_model_chunks) FROM neumf_model_versions")" "$before" "nothing stored by the stopped trainings"
  assert_eq "$(qc "SELECT neumf_score('ct_model', 1, 5)")" "$score_before" "previous model untouched"
}

t_cuda_requested_without_a_gpu() {
  if command -v nvidia-smi >/dev/null && nvidia-smi -L >/dev/null 2>&1; then echo "      (this machine has a GPU: nothing to check)"; return 0; fi
  small_table cu_small
  assert_error "SELECT neumf_train('cu_model', 'cu_small', device => 'cuda', epochs => 1)" 55000 'no CUDA device is available'
}

t_drop_and_recreate_extension() {
  fresh_database neumf_e2e_drop
  export PGDATABASE=neumf_e2e_drop
  must "CREATE EXTENSION neumf" || return 1
  small_table dx_small
  must "SELECT neumf_train('dx_model', 'dx_small', epochs => 1)" || return 1
  must "DROP EXTENSION neumf" || return 1
  assert_eq "$(qc "SELECT count(*) FROM pg_class WHERE relname LIKE 'neumf%'")" "0" "no relations left"
  assert_eq "$(qc "SELECT count(*) FROM pg_proc WHERE proname LIKE 'neumf%'")" "0" "no functions left"
  must "CREATE EXTENSION neumf" || return 1
  assert_eq "$(qc "SELECT count(*) FROM neumf_models")" "0" "fresh after re-create"
  assert_eq "$(qc "SELECT version FROM neumf_train('dx_again', 'dx_small', epochs => 1)")" "1" "trains after re-create"
  assert_true "neumf_score('dx_again', 1, 5) BETWEEN 0 AND 1" "serves after re-create"
  psql -X -q -d postgres -c "DROP DATABASE neumf_e2e_drop WITH (FORCE)" >/dev/null
}
