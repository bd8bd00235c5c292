#!/usr/bin/env bash
# Tests that must control the server from outside: restart, dump/restore, cancel and
# statement_timeout, concurrent sessions, extension upgrades, crashes. Against a real
# PostgreSQL 15 on loopback (started if it is not running). Prints 'e2e: N passed, M failed'.
#   E2E_ONLY=substring   run only the tests whose name contains it
set -uo pipefail
here=$(cd "$(dirname "$0")" && pwd)
. "$here/../lib.sh"
export PGDATABASE=neumf_e2e
cluster start
fresh_database neumf_e2e
qc "CREATE EXTENSION neumf" >/dev/null

. "$here/tests.sh"
. "$here/upgrade.sh"
run_tests "$here/tests.sh" "$here/upgrade.sh"

# Checked after everything else: no test may have crashed a backend.
if grep -q "terminated by signal" "$NEUMF_PGDATA/server.log"; then
  echo "  - server log: a backend crashed"; grep "terminated by signal" "$NEUMF_PGDATA/server.log"
  TEST_FAILURES+=("no_backend_crash")
else
  TEST_PASSED=$((TEST_PASSED + 1)); echo "  - no backend crashed during the run: passed"
fi
summary e2e
