#!/usr/bin/env bash
# Every test, from a fresh machine: installs what is missing (scripts/setup.sh), runs the core's
# unit and integration tests (plain cargo test, no PostgreSQL needed), builds and installs the
# extension, and runs the server layers against a real PostgreSQL 15 on loopback:
#   tests/pg_regress  golden files: SQL in, rows and errors out, one concept per file
#   tests/e2e         what needs control of the server: restart, dump/restore, cancel,
#                     concurrent sessions, upgrades from every earlier version, crashes
#   tests/quality     ML-100K quality floors
# Ends with one line 'tests: N passed, M failed'; exits non-zero if anything failed.
set -uo pipefail
cd "$(dirname "$0")/.."
. scripts/env.sh
started=$SECONDS
bash scripts/setup.sh || { echo "setup failed"; exit 1; }

passed=0 failed=0
echo "== neumf-core: cargo test (release profile, shares the build with the install below)"
core_log=$(mktemp)
cargo test --release -p neumf-core 2>&1 | tee "$core_log" | grep -E "^test |test result|panicked|error(\[|:)"
core_rc=${PIPESTATUS[0]}
p=$(grep -oE "test result: .* ([0-9]+) passed" "$core_log" | grep -oE "[0-9]+ passed" | awk '{s += $1} END {print s + 0}')
f=$(grep -oE "[0-9]+ failed" "$core_log" | awk '{s += $1} END {print s + 0}')
[ "$core_rc" -eq 0 ] || [ "$f" -gt 0 ] || f=1   # a build failure counts as a failure
passed=$((passed + p)); failed=$((failed + f)); rm -f "$core_log"

# Each server layer prints '<layer>: N passed, M failed' as its last line.
add_layer() { # log-file
  local line; line=$(grep -E "^[a-z0-9_]+: [0-9]+ passed, [0-9]+ failed" "$1" | tail -1)
  if [ -n "$line" ]; then
    passed=$((passed + $(awk '{print $2}' <<<"$line"))); failed=$((failed + $(awk '{print $4}' <<<"$line")))
  else
    failed=$((failed + 1)); echo "a test layer ended without a summary"
  fi
}

echo "== installing the extension (release)"
if bash scripts/install.sh; then
  # One fresh PostgreSQL 15 on loopback for every server layer, stopped at the end.
  export NEUMF_PGDATA
  NEUMF_PGDATA=$(mktemp -d /var/tmp/neumf-tests.XXXXXX)/data
  trap 'scripts/cluster.sh stop >/dev/null 2>&1 || true; rm -rf "$(dirname "$NEUMF_PGDATA")"' EXIT
  for layer in tests/pg_regress/run.sh tests/e2e/run.sh tests/quality/run.sh; do
    echo "== $layer"
    log=$(mktemp)
    bash "$layer" 2>&1 | tee "$log"
    add_layer "$log"; rm -f "$log"
  done
else
  echo "install failed"; failed=$((failed + 1))
fi

echo "(total time $((SECONDS - started)) s)"
echo "tests: $passed passed, $failed failed"
[ "$failed" -eq 0 ]
