#!/usr/bin/env bash
# End-to-end tests of the installed extension against a real PostgreSQL 15 started here on
# loopback (never a mock). Prints 'e2e: N passed, M failed' and exits non-zero on failure.
#   E2E_ONLY=substring   run only the tests whose name contains it
#   NEUMF_SHARED=path    where ../shared is (ML-100K quality floor)
set -uo pipefail
here=$(cd "$(dirname "$0")" && pwd)
repo=$(cd "$here/../.." && pwd)
. "$here/lib.sh"
. "$here/../../scripts/ml100k.sh"

export NEUMF_PGDATA=${NEUMF_E2E_PGDATA:-$(mktemp -d /var/tmp/neumf-e2e.XXXXXX)/data}
export NEUMF_PGPORT=${NEUMF_E2E_PGPORT:-5498}
export PGHOST=127.0.0.1 PGPORT=$NEUMF_PGPORT PGUSER=postgres PGDATABASE=neumf_e2e
# NOTICEs (training progress) would mix into the values the tests compare.
export PGOPTIONS='-c client_min_messages=warning'
export NEUMF_SHARED=${NEUMF_SHARED:-$repo/../shared}
cluster() { "$repo/scripts/cluster.sh" "$@"; }
trap 'cluster stop >/dev/null 2>&1 || true' EXIT

echo "e2e: starting PostgreSQL on 127.0.0.1:$NEUMF_PGPORT ($NEUMF_PGDATA)"
cluster start
psql -X -q -d postgres -c "DROP DATABASE IF EXISTS neumf_e2e" -c "CREATE DATABASE neumf_e2e"

. "$here/tests.sh"
run_tests "$here/tests.sh"

if grep -q "terminated by signal" "$NEUMF_PGDATA/server.log"; then
  echo "  - server log: a backend crashed"; grep "terminated by signal" "$NEUMF_PGDATA/server.log"
  E2E_FAILURES+=("no_backend_crash")
else
  E2E_PASSED=$((E2E_PASSED + 1)); echo "  - no backend crashed during the run: passed"
fi
echo
[ ${#E2E_FAILURES[@]} -eq 0 ] || echo "failed: ${E2E_FAILURES[*]}"
echo "e2e: $E2E_PASSED passed, ${#E2E_FAILURES[@]} failed"
[ ${#E2E_FAILURES[@]} -eq 0 ]
