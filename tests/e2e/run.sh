#!/usr/bin/env bash
# Tests that must control the server from outside: restart, dump/restore, cancel and
# statement_timeout, concurrent sessions, extension upgrades, crashes. Against a real
# PostgreSQL 15 on loopback (started if it is not running). Prints 'e2e: N passed, M failed'.
#   E2E_ONLY=substring   run only the tests whose name contains it
set -uo pipefail
here=$(cd "$(dirname "$0")" && pwd)
. "$here/../lib.sh"
export PGDATABASE=neumf_e2e
start_cluster_or_fail e2e
fresh_database neumf_e2e
out=$(qc "CREATE EXTENSION neumf") || { echo "CREATE EXTENSION neumf failed: $out"; echo "e2e: 0 passed, 1 failed"; exit 1; }

. "$here/tests.sh"
. "$here/upgrade.sh"
. "$here/jobs.sh"
. "$here/faults.sh"
. "$here/replica.sh"
. "$here/images.sh"
. "$here/pgbouncer.sh"
run_tests "$here/tests.sh" "$here/upgrade.sh" "$here/jobs.sh" "$here/faults.sh" "$here/replica.sh" "$here/images.sh" "$here/pgbouncer.sh"

# Checked after everything else: no test may have crashed a backend.
if [ ! -f "$NEUMF_PGDATA/server.log" ]; then
  echo "  - no server log at $NEUMF_PGDATA/server.log: cannot tell whether a backend crashed"
  TEST_FAILURES+=("no_backend_crash")
elif grep "terminated by signal" "$NEUMF_PGDATA/server.log" | grep -qv "signal 9: Killed"; then
  # (signal 9 is the kill -9 the job and fault tests send on purpose)
  echo "  - server log: a backend crashed"; grep "terminated by signal" "$NEUMF_PGDATA/server.log"
  TEST_FAILURES+=("no_backend_crash")
else
  TEST_PASSED=$((TEST_PASSED + 1)); echo "  - no backend crashed during the run: passed"
fi
summary e2e
