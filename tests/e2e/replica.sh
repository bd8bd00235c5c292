# A hot standby (issue 11, point 3): weights are rows, so they replicate. A streaming standby
# made with pg_basebackup serves the primary's scores, an activation on the primary reaches a
# standby session that is already connected (its model cache hears the replayed invalidation),
# and nothing on the standby writes.

STANDBY_DATA=${NEUMF_STANDBY_PGDATA:-$(dirname "$NEUMF_PGDATA")/standby}
STANDBY_PORT=$((NEUMF_PGPORT - 1))
standby() { NEUMF_PGDATA=$STANDBY_DATA NEUMF_PGPORT=$STANDBY_PORT cluster "$@"; }
sq() { PGPORT=$STANDBY_PORT qc "$1"; }
standby_stop() { standby stop; rm -rf "$STANDBY_DATA"; }
# Waits until the standby has replayed everything the primary has written so far. The insert
# position, not pg_current_wal_lsn(): with synchronous_commit = off (scripts/cluster.sh) a
# commit record may not have been written out yet when this asks.
wait_replayed() {
  local lsn; lsn=$(qc "SELECT pg_current_wal_insert_lsn()")
  local i; for i in $(seq 1 600); do
    [ "$(sq "SELECT pg_last_wal_replay_lsn() >= '$lsn'::pg_lsn")" = t ] && return 0; sleep 0.1
  done
  fail "the standby did not replay up to $lsn"; return 1
}

t_replica_serves_and_follows_activations() {
  small_table rp_small
  must "SELECT neumf_train('rp_model', 'rp_small', epochs => 2, seed => 1)" || return 1
  must "SELECT neumf_train('rp_model', 'rp_small', epochs => 2, seed => 2, activate => false)" || return 1
  standby_stop
  mkdir -p "$STANDBY_DATA"; [ "$(id -u)" = 0 ] && chown postgres:postgres "$STANDBY_DATA"; chmod 700 "$STANDBY_DATA"
  local as_postgres=(); [ "$(id -u)" = 0 ] && as_postgres=(runuser -u postgres --)
  local copied
  copied=$("${as_postgres[@]}" "$PG_BIN/pg_basebackup" -h 127.0.0.1 -p "$NEUMF_PGPORT" -U postgres -D "$STANDBY_DATA" -R -X stream -c fast 2>&1) \
    || { fail "pg_basebackup failed: $copied"; return 1; }
  # The copy has the primary's log and settings: a fresh log, and its own port and socket.
  rm -f "$STANDBY_DATA/server.log"
  printf "port = %s\nunix_socket_directories = '%s'\n" "$STANDBY_PORT" "$STANDBY_DATA" >>"$STANDBY_DATA/postgresql.auto.conf"
  standby start || { fail "the standby did not start: $(tail -5 "$STANDBY_DATA/server.log")"; return 1; }
  assert_eq "$(sq "SELECT pg_is_in_recovery()")" "t" "the standby is in recovery (streaming)"
  assert_eq "$(sq "SELECT count(*) FROM neumf_images()")" "0" "pg_basebackup copied no serving image (derived data)"
  wait_replayed || { standby_stop; return 1; }
  local ranking="SELECT string_agg(item_id || ':' || round(score::numeric, 6), ',' ORDER BY rank) FROM neumf_rank('rp_model', 7, ARRAY(SELECT generate_series(1, 60))::bigint[], 10)"
  local v1; v1=$(qc "$ranking")
  assert_eq "$(sq "$ranking")" "$v1" "the standby ranks exactly as the primary"
  assert_eq "$(sq "SELECT neumf_score('rp_model', 1, 5)")" "$(qc "SELECT neumf_score('rp_model', 1, 5)")" "and scores the same"
  # A standby session that has the model loaded, kept open across the activation.
  local fifo; fifo=$(mktemp -u); mkfifo "$fifo"
  PGPORT=$STANDBY_PORT psql -X -q -tA <"$fifo" >"$fifo.out" 2>&1 &
  local session=$!
  exec {to_session}>"$fifo"
  echo "SELECT 'before:' || ($ranking);" >&"$to_session"
  local i; for i in $(seq 1 100); do grep -q '^before:' "$fifo.out" && break; sleep 0.1; done
  must "SELECT neumf_activate('rp_model', 2)" || return 1
  local v2; v2=$(qc "$ranking")
  [ "$v2" != "$v1" ] || fail "versions 1 and 2 rank alike, so the check cannot tell them apart"
  wait_replayed || return 1
  echo "SELECT 'after:' || ($ranking);" >&"$to_session"
  for i in $(seq 1 100); do grep -q '^after:' "$fifo.out" && break; sleep 0.1; done
  exec {to_session}>&-
  wait "$session"
  assert_eq "$(sed -n 's/^before://p' "$fifo.out")" "$v1" "the connected standby session served version 1"
  assert_eq "$(sed -n 's/^after://p' "$fifo.out")" "$v2" "and, after replay, the newly activated version 2 in the same session"
  rm -f "$fifo" "$fifo.out"
  # The standby serves from its own serving image, built there from the replicated rows.
  assert_eq "$(sq "SELECT model || ':' || version || ':' || verified FROM neumf_images() WHERE model = 'rp_model'")" \
    "rp_model:2:true" "the standby serves version 2 from a verified image of its own"
  assert_eq "$(sq "SELECT neumf_score('rp_model', 1, 5); SELECT shared FROM neumf_cache() WHERE model = 'rp_model'" | tail -1)" \
    "t" "a standby session maps it"
  # Nothing on the standby writes: training is refused as in any read-only transaction, with
  # one clear ERROR.
  local out; out=$(PGPORT=$STANDBY_PORT psql -X -q -tA -v ON_ERROR_STOP=1 -v VERBOSITY=verbose -c "SELECT neumf_train('rp_model', 'rp_small', epochs => 1)" 2>&1) \
    && fail "training on the standby succeeded: $out"
  [[ "$out" == *25006* ]] || fail "training on the standby: expected SQLSTATE 25006, got: $out"
  grep -E "PANIC|terminated by signal" "$STANDBY_DATA/server.log" && fail "the standby's log shows a crash"
  standby_stop
}
