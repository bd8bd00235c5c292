# Background training jobs (neumf_train_async): what needs several sessions, signals or a
# restart. The SQL-visible behaviour of one session is in tests/pg_regress/sql/jobs.sql.

job_table() { # name: big enough that a job trains for minutes unless stopped
  must "CREATE TABLE IF NOT EXISTS $1 AS SELECT * FROM neumf_synthetic_interactions(3000, 800, per_user => 20)"
}
# Submits a job that trains until it is stopped; prints its id.
long_job() { # model table
  qc "SELECT neumf_train_async('$1', '$2', epochs => 100000, validation => false, pretrain => false)"
}
job_field() { qc "SELECT $2 FROM neumf_jobs WHERE job_id = $1"; }
# Waits until job $1 is in its training loop (an epoch done).
wait_training() { # job
  wait_until "(SELECT status = 'running' AND epoch >= 1 FROM neumf_jobs WHERE job_id = $1)" 120 >/dev/null \
    || { fail "job $1 did not start training: $(qc "SELECT status || ' ' || coalesce(phase, '') || ' ' || coalesce(error, '') FROM neumf_jobs WHERE job_id = $1")"; return 1; }
}
wait_server() {
  local i; for i in $(seq 1 120); do qc "SELECT 1" >/dev/null 2>&1 && return 0; sleep 0.5; done
  fail "the server did not accept connections again"; return 1
}
versions_and_chunks() { qc "SELECT count(*) || '/' || (SELECT count(*) FROM neumf_model_chunks) FROM neumf_model_versions"; }

t_job_trains_without_a_snapshot_so_vacuum_proceeds() {
  job_table jx_big
  must "CREATE TABLE jx_churn AS SELECT generate_series(1, 10000) AS id" || return 1
  local job; job=$(long_job jx_model jx_big)
  wait_training "$job" || return 1
  local pid; pid=$(job_field "$job" pid)
  assert_true "(SELECT backend_xmin IS NULL AND backend_xid IS NULL FROM pg_stat_activity WHERE pid = $pid)" \
    "the job's worker holds no snapshot and no transaction while it trains"
  must "DELETE FROM jx_churn" || return 1
  local out; out=$(psql -X -q -c "VACUUM (VERBOSE) jx_churn" 2>&1)
  [[ "$out" == *"tuples: 10000 removed, 0 remain, 0 are dead but not yet removable"* ]] \
    || fail "VACUUM could not remove rows deleted while the job trains: $out"
  must "SELECT neumf_cancel($job)"
  # The same check catches a training that does hold a snapshot: a synchronous neumf_train.
  must "INSERT INTO jx_churn SELECT generate_series(1, 10000)" || return 1
  psql -X -q -c "SET application_name = 'neumf_jx'" -c "SELECT neumf_train('jx_sync', 'jx_big', epochs => 100000)" >/dev/null 2>&1 &
  local bg=$!
  wait_until "EXISTS (SELECT FROM neumf_jobs WHERE model = 'jx_sync' AND synchronous AND status = 'running' AND epoch >= 1)" 120 >/dev/null \
    || fail "the synchronous training did not show in neumf_jobs"
  assert_true "(SELECT job_id IS NULL AND pid IS NOT NULL FROM neumf_jobs WHERE model = 'jx_sync')" "a synchronous training shows with its pid and no job id"
  must "DELETE FROM jx_churn"
  out=$(psql -X -q -c "VACUUM (VERBOSE) jx_churn" 2>&1)
  [[ "$out" == *"10000 are dead but not yet removable"* ]] || fail "a synchronous training should hold VACUUM back: $out"
  qc "SELECT pg_cancel_backend(pid) FROM pg_stat_activity WHERE application_name = 'neumf_jx'" >/dev/null
  wait $bg || true
  assert_eq "$(qc "SELECT count(*) FROM neumf_jobs WHERE model = 'jx_sync'")" "0" "a cancelled synchronous training leaves no job row"
  wait_until "(SELECT status = 'cancelled' FROM neumf_jobs WHERE job_id = $job)" 30 >/dev/null || fail "job $job not cancelled"
}

t_job_cancel_queued_and_running_keeps_the_served_version() {
  small_table jc_small
  must "SELECT neumf_train('jc_model', 'jc_small', epochs => 1)" || return 1
  local before score; before=$(versions_and_chunks); score=$(qc "SELECT neumf_score('jc_model', 1, 5)")
  local running queued1 queued2
  running=$(long_job jc_model jc_small)
  queued1=$(qc "SELECT neumf_train_async('jc_other', 'jc_small', epochs => 1)")
  queued2=$(qc "SELECT neumf_train_async('jc_third', 'jc_small', epochs => 1)")
  wait_training "$running" || return 1
  assert_eq "$(job_field "$queued1" status)" "queued" "neumf.max_jobs = 1: the second job waits"
  assert_eq "$(qc "SELECT neumf_cancel($queued1)")" "t" "cancel a queued job"
  assert_eq "$(job_field "$queued1" status)" "cancelled" "the queued job is cancelled at once"
  local t0 took; t0=$(date +%s.%N)
  assert_eq "$(qc "SELECT neumf_cancel($running)")" "t" "cancel the running job"
  assert_eq "$(qc "SELECT status FROM neumf_wait($running, '10 s')")" "cancelled" "the running job ends cancelled"
  took=$(awk "BEGIN { printf \"%.2f\", $(date +%s.%N) - $t0 }")
  echo "      a running job was cancelled ${took} s after neumf_cancel"
  assert_eq "$(qc "SELECT neumf_cancel($running)")" "f" "cancelling an ended job changes nothing"
  assert_eq "$(versions_and_chunks)" "$before" "nothing stored by the cancelled job"
  assert_eq "$(qc "SELECT neumf_score('jc_model', 1, 5)")" "$score" "the active version still serves the same scores"
  assert_eq "$(qc "SELECT status FROM neumf_wait($queued2, '120 s')")" "succeeded" "the next queued job runs after the cancel"
}

t_job_max_jobs_runs_that_many_at_once_in_order() {
  job_table jm_big
  must "ALTER SYSTEM SET neumf.max_jobs = 2" && must "SELECT pg_reload_conf()" || return 1
  local a b c
  a=$(long_job jm_a jm_big); b=$(long_job jm_b jm_big); c=$(long_job jm_c jm_big)
  wait_until "(SELECT count(*) = 2 FROM neumf_jobs WHERE job_id IN ($a, $b, $c) AND status = 'running')" 120 >/dev/null \
    || fail "two jobs should run at once: $(qc "SELECT string_agg(job_id || ':' || status, ' ') FROM neumf_jobs WHERE job_id IN ($a, $b, $c)")"
  assert_eq "$(qc "SELECT string_agg(status, ',' ORDER BY job_id) FROM neumf_jobs WHERE job_id IN ($a, $b, $c)")" \
    "running,running,queued" "the oldest two run, the third waits"
  must "SELECT neumf_cancel($a)"
  wait_until "(SELECT status = 'running' FROM neumf_jobs WHERE job_id = $c)" 60 >/dev/null || fail "the third job did not start when a slot freed"
  must "SELECT neumf_cancel(job_id) FROM neumf_jobs WHERE job_id IN ($b, $c)"
  must "ALTER SYSTEM RESET neumf.max_jobs" && must "SELECT pg_reload_conf()"
  for j in $b $c; do assert_eq "$(qc "SELECT status FROM neumf_wait($j, '30 s')")" "cancelled" "job $j cancelled"; done
}

t_job_worker_killed_is_marked_failed() {
  small_table jk_small
  must "SELECT neumf_train('jk_model', 'jk_small', epochs => 1)" || return 1
  local before score; before=$(versions_and_chunks); score=$(qc "SELECT neumf_score('jk_model', 1, 5)")
  local job; job=$(long_job jk_model jk_small)
  wait_training "$job" || return 1
  local pid; pid=$(job_field "$job" pid)
  kill -9 "$pid" || { fail "could not kill -9 the job's worker $pid"; return 1; }
  sleep 1; wait_server || return 1
  assert_eq "$(job_field "$job" status)" "failed" "neumf_jobs shows the killed job as failed at once"
  assert_true "(SELECT error LIKE '%worker exited before finishing%' FROM neumf_jobs WHERE job_id = $job)" "with the reason"
  assert_eq "$(qc "SELECT status FROM neumf_wait($job, '0 s')")" "failed" "neumf_wait returns it failed"
  assert_eq "$(qc "SELECT status FROM neumf_job_runs WHERE job_id = $job")" "failed" "and the job's row is marked failed"
  assert_eq "$(versions_and_chunks)" "$before" "nothing half-written"
  assert_eq "$(qc "SELECT neumf_score('jk_model', 1, 5)")" "$score" "the previous version serves the same scores"
}

t_job_restart_fails_the_running_job_and_resumes_the_queue() {
  small_table jr_small
  local running queued
  running=$(long_job jr_model jr_small)
  queued=$(qc "SELECT neumf_train_async('jr_next', 'jr_small', epochs => 1)")
  wait_training "$running" || return 1
  cluster restart
  assert_eq "$(job_field "$running" status)" "failed" "the job running at shutdown is failed"
  # neumf is preloaded here, so its launcher resumes the queue at startup, with no call to a
  # job function (without preloading, the next neumf_train_async or neumf_wait does).
  wait_until "(SELECT status = 'succeeded' FROM neumf_job_runs WHERE job_id = $queued)" 120 >/dev/null \
    || fail "the queued job did not run after the restart: $(qc "SELECT status FROM neumf_job_runs WHERE job_id = $queued")"
  assert_eq "$(qc "SELECT status FROM neumf_job_runs WHERE job_id = $running")" "failed" "and the failed job's row says so"
  assert_eq "$(qc "SELECT status FROM neumf_wait($queued, '0 s')")" "succeeded" "neumf_wait returns the finished job"
  assert_eq "$(qc "SELECT count(*) FROM neumf_models WHERE model = 'jr_next' AND active")" "1" "the queued job's version is active"
}

t_job_queue_resumes_without_preloading() {
  small_table jp_small
  cluster stop
  NEUMF_PG_OPTIONS="-c shared_preload_libraries=''" cluster start
  [ -z "$(qc "SHOW shared_preload_libraries")" ] || { fail "could not start without preloading"; cluster restart; return 1; }
  local job; job=$(qc "SELECT neumf_train_async('jp_model', 'jp_small', epochs => 1)")
  assert_eq "$(qc "SELECT status FROM neumf_wait($job, '120 s')")" "succeeded" "a job runs without shared_preload_libraries"
  # A job queued while no runner could start (here: written straight into the queue, as if
  # every worker slot had been busy) is started by neumf_wait.
  local stranded; stranded=$(qc "INSERT INTO neumf_job_runs (model, source, options, status) VALUES ('jp_model', 'jp_small', '{\"epochs\": 1, \"threads\": 1}', 'queued') RETURNING job_id")
  assert_eq "$(qc "SELECT status FROM neumf_wait($stranded, '120 s')")" "succeeded" "neumf_wait starts a runner for a stranded queue"
  cluster restart
}

t_pg_cron_schedules_a_retrain() {
  if [ ! -f "$("$PG_BIN/pg_config" --pkglibdir)/pg_cron.so" ]; then
    fail "pg_cron is not installed (scripts/setup.sh installs postgresql-15-cron)"; return 1
  fi
  [[ "$(qc "SHOW shared_preload_libraries")" == *pg_cron* ]] \
    || { fail "this cluster was created without pg_cron preloaded (scripts/cluster.sh adds it to new clusters)"; return 1; }
  must "CREATE EXTENSION IF NOT EXISTS pg_cron" || return 1
  small_table cr_small
  must "SELECT cron.schedule('neumf-retrain-cr', '* * * * *', \$\$SELECT neumf_train_async('cr_model', 'cr_small', epochs => 1)\$\$)" || return 1
  local took
  took=$(wait_until "EXISTS (SELECT FROM neumf_jobs WHERE model = 'cr_model' AND status = 'succeeded')" 150) \
    || fail "no scheduled job succeeded within 150 s: $(qc "SELECT string_agg(status || ' ' || coalesce(return_message, ''), '; ') FROM cron.job_run_details")"
  echo "      the scheduled retrain succeeded after ${took} s"
  must "SELECT cron.unschedule('neumf-retrain-cr')"
  assert_eq "$(qc "SELECT count(*) FROM neumf_models WHERE model = 'cr_model' AND active")" "1" "the scheduled job's version is active"
}
