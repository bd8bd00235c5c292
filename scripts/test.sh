#!/usr/bin/env bash
# Every test, from a fresh machine: installs what is missing (scripts/setup.sh), runs the core's
# unit and integration tests (plain cargo test, no PostgreSQL needed), builds and installs the
# extension, and runs the end-to-end tests against a real PostgreSQL 15 on loopback.
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

echo "== installing the extension (release)"
if bash scripts/install.sh; then
  echo "== end-to-end tests against PostgreSQL 15"
  e2e_log=$(mktemp)
  tests/e2e/run.sh 2>&1 | tee "$e2e_log"
  line=$(grep -E "^e2e: [0-9]+ passed, [0-9]+ failed" "$e2e_log" | tail -1)
  if [ -n "$line" ]; then
    passed=$((passed + $(echo "$line" | awk '{print $2}'))); failed=$((failed + $(echo "$line" | awk '{print $4}')))
  else
    failed=$((failed + 1)); echo "end-to-end run ended without a summary"
  fi
  rm -f "$e2e_log"
else
  echo "install failed"; failed=$((failed + 1))
fi

echo "(total time $((SECONDS - started)) s)"
echo "tests: $passed passed, $failed failed"
[ "$failed" -eq 0 ]
