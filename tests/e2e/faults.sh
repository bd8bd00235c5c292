# Faults and load (issue 13): a backend killed mid-training and mid-store, the whole server
# stopped immediately mid-store, and serving under pgbench while the model is retrained.
# After each fault the previous active version serves the same scores and no version or
# chunk of the interrupted training exists.

# The store is made slow (a sleep per chunk, in sessions named neumf_fault*) so that a fault
# can land inside it: a test-only trigger on the chunk table, dropped again by the test.
slow_store_on() {
  must "CREATE OR REPLACE FUNCTION fault_slow_chunk() RETURNS trigger LANGUAGE plpgsql AS
        \$\$BEGIN PERFORM pg_sleep(0.3); RETURN NEW; END\$\$" || return 1
  must "DROP TRIGGER IF EXISTS fault_slow_store ON neumf_model_chunks" || return 1
  must "CREATE TRIGGER fault_slow_store BEFORE INSERT ON neumf_model_chunks FOR EACH ROW
        WHEN (current_setting('application_name') LIKE 'neumf_fault%') EXECUTE FUNCTION fault_slow_chunk()"
}
slow_store_off() { qc "DROP TRIGGER IF EXISTS fault_slow_store ON neumf_model_chunks" >/dev/null; }

# Starts a training in a background session named $1 (1 kB chunks, so the store writes many);
# the caller waits for the moment to strike, and for the session ($!) to end.
train_in_background() { # application_name model table epochs
  PGAPPNAME=$1 psql -X -q -c "SET neumf.chunk_size = 1" \
    -c "SELECT neumf_train('$2', '$3', epochs => $4, validation => false, pretrain => false)" >/dev/null 2>&1 &
}
session_pid() { qc "SELECT pid FROM pg_stat_activity WHERE application_name = '$1' AND state = 'active'"; }
# The interrupted training left nothing: same versions and chunks, no chunk without its version,
# and the previous active version serves the same score.
assert_untouched() { # model versions/chunks-before score-before
  assert_eq "$(versions_and_chunks)" "$2" "no version or chunk of the interrupted training exists"
  assert_eq "$(qc "SELECT count(*) FROM neumf_model_chunks c WHERE NOT EXISTS
                   (SELECT FROM neumf_model_versions v WHERE v.model = c.model AND v.version = c.version)")" "0" "no orphaned chunks"
  assert_eq "$(qc "SELECT version FROM neumf_models WHERE model = '$1' AND active")" "1" "version 1 is still the active one"
  assert_eq "$(qc "SELECT neumf_score('$1', 1, 5)")" "$3" "and serves the same scores"
}

t_fault_kill9_mid_training() {
  job_table fk_table
  must "SELECT neumf_train('fk_model', 'fk_table', epochs => 1, validation => false, pretrain => false)" || return 1
  local before score; before=$(versions_and_chunks); score=$(qc "SELECT neumf_score('fk_model', 1, 5)")
  train_in_background neumf_fault_train fk_model fk_table 100000
  local bg=$!
  wait_until "EXISTS (SELECT FROM neumf_jobs WHERE model = 'fk_model' AND synchronous AND epoch >= 1)" 120 >/dev/null \
    || { fail "the training did not reach its first epoch"; return 1; }
  local pid; pid=$(session_pid neumf_fault_train)
  kill -9 "$pid" || { fail "could not kill -9 backend '$pid'"; return 1; }
  wait $bg; sleep 1; wait_server || return 1
  assert_untouched fk_model "$before" "$score"
  must "SELECT neumf_train('fk_model', 'fk_table', epochs => 1, validation => false, pretrain => false)" || return 1
  assert_eq "$(qc "SELECT version FROM neumf_models WHERE model = 'fk_model' AND active")" "2" "the next training stores version 2"
}

# Trains model $1 once, then again with a slow store, and strikes with $2 (kill9 | stop) while
# the second training writes its chunks; afterwards the first version must be untouched.
strike_mid_store() { # model fault
  local model=$1 fault=$2 app=neumf_fault_$2
  small_table "${model}_data"
  must "SELECT neumf_train('$model', '${model}_data', epochs => 1)" || return 1
  local before score; before=$(versions_and_chunks); score=$(qc "SELECT neumf_score('$model', 1, 5)")
  slow_store_on || return 1
  train_in_background "$app" "$model" "${model}_data" 1
  local bg=$!
  # Inside the store: the session sleeps in the trigger on a chunk insert.
  wait_until "EXISTS (SELECT FROM pg_stat_activity WHERE application_name = '$app' AND wait_event = 'PgSleep')" 120 >/dev/null \
    || { fail "the training did not reach its store"; slow_store_off; return 1; }
  local phase; phase=$(qc "SELECT phase FROM neumf_jobs WHERE model = '$model' AND synchronous AND status = 'running'")
  case $fault in
    kill9) kill -9 "$(session_pid "$app")" || { fail "could not kill -9 the storing backend"; slow_store_off; return 1; }
           wait $bg; sleep 1 ;;
    stop) cluster stop-immediate; wait $bg; cluster start ;;
  esac
  wait_server || return 1
  slow_store_off
  echo "      struck ($fault) while its phase was: $phase"
  assert_untouched "$model" "$before" "$score"
}

t_fault_kill9_mid_store() { strike_mid_store fs_model kill9; }

t_fault_immediate_stop_mid_store() { strike_mid_store fi_model stop; }

# pgbench: 8 clients rank the same candidates for 60 s while the model is retrained and
# activated twice. Every answer must be one complete version's ranking (compared with each
# version's own answer afterwards), and no transaction may fail.
t_load_rank_while_retraining() {
  small_table ld_small
  must "SELECT neumf_train('ld_model', 'ld_small', epochs => 2, seed => 1)" || return 1
  must "DROP TABLE IF EXISTS ld_answers; CREATE UNLOGGED TABLE ld_answers (answer text NOT NULL)" || return 1
  local script out; script=$(mktemp); out=$(mktemp)
  local ranking="SELECT string_agg(item_id || ':' || round(score::numeric, 6), ',' ORDER BY rank)
                 FROM neumf_rank('ld_model', 7, ARRAY(SELECT generate_series(1, 40))::bigint[], 10)"
  echo "INSERT INTO ld_answers $ranking;" | tr '\n' ' ' >"$script"; echo >>"$script"
  "$PG_BIN/pgbench" -n -c 8 -j 2 -T 60 -f "$script" >"$out" 2>&1 &
  local bench=$!
  sleep 12
  must "SELECT neumf_train('ld_model', 'ld_small', epochs => 2, seed => 2)" || return 1
  sleep 12
  must "SELECT neumf_train('ld_model', 'ld_small', epochs => 2, seed => 3)" || return 1
  local rc=0; wait $bench || rc=$?
  local done failed
  done=$(sed -n 's/^number of transactions actually processed: \([0-9]*\).*/\1/p' "$out")
  failed=$(sed -n 's/^number of failed transactions: \([0-9]*\).*/\1/p' "$out")
  echo "      pgbench: ${done:-?} transactions, ${failed:-?} failed, exit status $rc, while versions 2 and 3 were trained and activated"
  assert_eq "$rc/${failed:-?}" "0/0" "pgbench ran without errors"
  grep -q "aborted" "$out" && fail "a pgbench client aborted: $(grep aborted "$out" | head -3)"
  [ "${done:-0}" -gt 0 ] || fail "pgbench processed no transaction: $(tail -5 "$out")"
  # Each version's own answer, then the answers that match none of them.
  local v expected=()
  for v in 1 2 3; do
    must "SELECT neumf_activate('ld_model', $v)" || return 1
    expected+=("$(qc "$ranking")")
  done
  local per_version
  per_version=$(q -v a1="${expected[0]}" -v a2="${expected[1]}" -v a3="${expected[2]}" <<'SQL'
SELECT string_agg(format('v%s: %s', v, n), ', ' ORDER BY v) FROM (
  SELECT CASE answer WHEN :'a1' THEN '1' WHEN :'a2' THEN '2' WHEN :'a3' THEN '3' ELSE 'none' END AS v, count(*) AS n
  FROM ld_answers GROUP BY 1) t;
SQL
)
  echo "      answers by version: $per_version"
  [[ "$per_version" != *none* ]] || fail "some answers match no complete version: $per_version"
  [[ "$per_version" == *v1:*v2:*v3:* ]] || fail "the answers did not move through the three versions: $per_version"
  [ "${expected[0]}" != "${expected[1]}" ] && [ "${expected[1]}" != "${expected[2]}" ] \
    || fail "two versions rank alike, so the check cannot tell them apart: ${expected[*]}"
  rm -f "$script" "$out"
}
