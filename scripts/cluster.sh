#!/usr/bin/env bash
# A throwaway PostgreSQL 15 cluster on loopback, for the demo and the end-to-end tests.
#   scripts/cluster.sh start|stop|stop-immediate|restart|status|psql [args]
# Environment: NEUMF_PGDATA (data directory), NEUMF_PGPORT (port), NEUMF_PG_OPTIONS (extra
# server options for this start, e.g. "-c shared_preload_libraries=''"). The server listens on
# 127.0.0.1 only. As root, the server runs as the `postgres` user (initdb refuses root).
set -euo pipefail
PG_BIN=/usr/lib/postgresql/15/bin
PGDATA=${NEUMF_PGDATA:-/var/tmp/neumf/cluster}
PORT=${NEUMF_PGPORT:-5499}

# The server gets no RUST_BACKTRACE from the caller's shell: with it, pgrx appends a
# backtrace to every ERROR, and clients should see one clear line.
as_pg() {
  if [ "$(id -u)" = 0 ]; then runuser -u postgres -- env -u RUST_BACKTRACE "$@"; else env -u RUST_BACKTRACE "$@"; fi
}

start() {
  if [ ! -s "$PGDATA/PG_VERSION" ]; then
    mkdir -p "$PGDATA"
    [ "$(id -u)" = 0 ] && chown postgres:postgres "$PGDATA" "$(dirname "$PGDATA")"
    chmod 700 "$PGDATA"
    as_pg "$PG_BIN/initdb" -D "$PGDATA" -U postgres --auth=trust --encoding=UTF8 --locale=C.UTF-8 >/dev/null
    cat >>"$PGDATA/postgresql.conf" <<CONF
listen_addresses = '127.0.0.1'
port = $PORT
unix_socket_directories = '$PGDATA'
max_connections = 50
shared_buffers = 256MB
fsync = off
synchronous_commit = off
full_page_writes = off
# Loads neumf.so (serving and storage, no libtorch) once in the postmaster, so a new
# connection's first call skips the library load. Only GUCs are registered at load time;
# libtorch and CUDA are loaded by neumf_train, in the backend that trains.
shared_preload_libraries = 'neumf'
# Training jobs (neumf_train_async) each take a background worker.
max_worker_processes = 16
CONF
    # pg_cron (scripts/setup.sh installs it) schedules retraining in the e2e test; its jobs
    # run as background workers, so no password or socket setup is needed.
    if [ -f "$("$PG_BIN/pg_config" --pkglibdir)/pg_cron.so" ]; then
      cat >>"$PGDATA/postgresql.conf" <<CONF
shared_preload_libraries = 'neumf,pg_cron'
cron.database_name = '${NEUMF_CRON_DATABASE:-neumf_e2e}'
cron.use_background_workers = on
CONF
    fi
  fi
  if ! as_pg "$PG_BIN/pg_ctl" -D "$PGDATA" status >/dev/null 2>&1; then
    as_pg "$PG_BIN/pg_ctl" -D "$PGDATA" -l "$PGDATA/server.log" -w -t 60 ${NEUMF_PG_OPTIONS:+-o "$NEUMF_PG_OPTIONS"} start >/dev/null
  fi
}

stop() {
  if [ -s "$PGDATA/PG_VERSION" ] && as_pg "$PG_BIN/pg_ctl" -D "$PGDATA" status >/dev/null 2>&1; then
    as_pg "$PG_BIN/pg_ctl" -D "$PGDATA" -m fast -w stop >/dev/null
  fi
}

# A crash of the whole server, for fault tests: no shutdown checkpoint, recovery at next start.
stop_immediate() {
  if [ -s "$PGDATA/PG_VERSION" ] && as_pg "$PG_BIN/pg_ctl" -D "$PGDATA" status >/dev/null 2>&1; then
    as_pg "$PG_BIN/pg_ctl" -D "$PGDATA" -m immediate -w stop >/dev/null
  fi
}

case "${1:-}" in
  start) start ;;
  stop) stop ;;
  stop-immediate) stop_immediate ;;
  restart) stop; start ;;
  status) as_pg "$PG_BIN/pg_ctl" -D "$PGDATA" status ;;
  psql) shift; exec psql -h 127.0.0.1 -p "$PORT" -U postgres -v ON_ERROR_STOP=1 -X "$@" ;;
  *) echo "usage: $0 start|stop|stop-immediate|restart|status|psql [args]" >&2; exit 2 ;;
esac
