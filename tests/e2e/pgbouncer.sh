# Serving behind PgBouncer in transaction pooling (issue 11): every transaction may run on a
# different server connection, each attaching the shared serving image; answers equal a direct
# connection's, an activation reaches every pooled connection, and nothing fails under load.

BOUNCER_PORT=$((NEUMF_PGPORT + 5))

t_pgbouncer_transaction_pooling() {
  images_model pb_model || return 1
  local direct; direct=$(qc "SELECT string_agg(item_id || ':' || round(score::numeric, 6), ',' ORDER BY rank) FROM neumf_rank('pb_model', 3, ARRAY[1,2,3,4,5,6,7,8,9,10,11,12], 5)")
  local dir; dir=$(mktemp -d /tmp/neumf-pgbouncer.XXXXXX)
  local started; started=$("$repo/scripts/pgbouncer.sh" start "$dir" "$BOUNCER_PORT" "$NEUMF_PGPORT" 4 2>&1) \
    || { fail "pgbouncer did not start: $started"; "$repo/scripts/pgbouncer.sh" stop "$dir"; return 1; }
  local bq="psql -X -q -tA -p $BOUNCER_PORT"
  assert_eq "$($bq -c "SELECT string_agg(item_id || ':' || round(score::numeric, 6), ',' ORDER BY rank) FROM neumf_rank('pb_model', 3, ARRAY[1,2,3,4,5,6,7,8,9,10,11,12], 5)")" \
    "$direct" "through PgBouncer, the same ranking"
  # Load: 8 clients over 4 server connections, each transaction wherever the pooler puts it.
  local script; script=$(mktemp)
  printf '%s\n' '\set u random(1, 300)' \
    "SELECT count(*) FROM neumf_rank('pb_model', :u, ARRAY[1,2,3,4,5,6,7,8,9,10,11,12,13,14,15,16,17,18,19,20], 10);" >"$script"
  local out; out=$("$PG_BIN/pgbench" -n -M simple -p "$BOUNCER_PORT" -c 8 -j 2 -T 5 -f "$script" 2>&1)
  local failed; failed=$(sed -n 's/^number of failed transactions: \([0-9]*\).*/\1/p' <<<"$out")
  local done_tx; done_tx=$(sed -n 's/^number of transactions actually processed: \([0-9]*\).*/\1/p' <<<"$out")
  assert_eq "${failed:-0}" "0" "no transaction failed under load"
  assert_true "${done_tx:-0} > 1000" "pgbench ran ($done_tx transactions)"
  echo "      $done_tx transactions through PgBouncer in 5 s, ${failed:-0} failed"
  # A new version activated directly reaches every pooled server connection.
  must "SELECT neumf_train('pb_model', 'pb_model_data', epochs => 1, seed => 11, validation => false, pretrain => false)" || { "$repo/scripts/pgbouncer.sh" stop "$dir"; return 1; }
  local v2; v2=$(qc "SELECT neumf_score('pb_model', 3, 4)")
  local answers; answers=$(for _ in $(seq 1 24); do $bq -c "SELECT neumf_score('pb_model', 3, 4)"; done | sort -u)
  assert_eq "$answers" "$v2" "every pooled connection serves version 2"
  assert_true "(SELECT count(*) FROM pg_stat_activity WHERE datname = current_database() AND backend_type = 'client backend') >= 3" \
    "the pooler spread the load over several server connections"
  "$repo/scripts/pgbouncer.sh" stop "$dir"; rm -f "$script"
}
