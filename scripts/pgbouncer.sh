#!/usr/bin/env bash
# A throwaway PgBouncer in transaction pooling in front of a local PostgreSQL, for the pooler
# test and the serving benchmark.
#   scripts/pgbouncer.sh start DIR LISTEN_PORT SERVER_PORT [POOL_SIZE]   (waits until it answers)
#   scripts/pgbouncer.sh stop DIR
# Trust authentication on 127.0.0.1 for the role postgres, as the test clusters use. As root,
# it runs as postgres: PgBouncer refuses to run as root.
set -euo pipefail
PGBOUNCER=${PGBOUNCER:-/usr/sbin/pgbouncer}
cmd=${1:?start|stop}; dir=${2:?directory}
case $cmd in
  start)
    listen=${3:?listen port}; server=${4:?server port}; pool=${5:-4}
    [ -x "$PGBOUNCER" ] || { echo "pgbouncer is not installed at $PGBOUNCER (scripts/setup.sh installs it)" >&2; exit 1; }
    mkdir -p "$dir"
    cat >"$dir/pgbouncer.ini" <<INI
[databases]
* = host=127.0.0.1 port=$server
[pgbouncer]
listen_addr = 127.0.0.1
listen_port = $listen
unix_socket_dir =
auth_type = trust
auth_file = $dir/users.txt
pool_mode = transaction
default_pool_size = $pool
max_client_conn = 200
logfile = $dir/pgbouncer.log
pidfile = $dir/pgbouncer.pid
ignore_startup_parameters = extra_float_digits,options
INI
    echo '"postgres" ""' >"$dir/users.txt"
    if [ "$(id -u)" = 0 ]; then
      chown -R postgres "$dir"
      runuser -u postgres -- "$PGBOUNCER" -d "$dir/pgbouncer.ini" >/dev/null
    else
      "$PGBOUNCER" -d "$dir/pgbouncer.ini" >/dev/null
    fi
    for _ in $(seq 1 50); do
      psql -X -q -h 127.0.0.1 -p "$listen" -U postgres -d postgres -tAc "SELECT 1" >/dev/null 2>&1 && exit 0
      sleep 0.1
    done
    echo "pgbouncer did not answer on port $listen: $(tail -3 "$dir/pgbouncer.log" 2>/dev/null)" >&2; exit 1 ;;
  stop)
    if [ -f "$dir/pgbouncer.pid" ]; then kill "$(cat "$dir/pgbouncer.pid")" 2>/dev/null || true; sleep 0.3; fi
    rm -rf "$dir" ;;
  *) echo "usage: $0 start DIR LISTEN_PORT SERVER_PORT [POOL_SIZE] | stop DIR" >&2; exit 2 ;;
esac
