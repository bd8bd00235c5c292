# Helpers for the bash test layers (tests/e2e, tests/quality): the shared cluster, psql
# wrappers, assertions. Each test is a function named t_*; run_tests runs them in file order
# and counts results. Tests create what they need, so E2E_ONLY can pick any one of them.

tests_dir=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
repo=$(cd "$tests_dir/.." && pwd)
export NEUMF_PGDATA=${NEUMF_PGDATA:-/var/tmp/neumf-tests/data}
export NEUMF_PGPORT=${NEUMF_PGPORT:-5498}
export PGHOST=127.0.0.1 PGPORT=$NEUMF_PGPORT PGUSER=postgres
# NOTICEs (training progress) would mix into the values the tests compare.
export PGOPTIONS='-c client_min_messages=warning'
export NEUMF_SHARED=${NEUMF_SHARED:-$repo/../shared}
PG_BIN=/usr/lib/postgresql/15/bin
cluster() { "$repo/scripts/cluster.sh" "$@"; }

# A fresh database named $1 (dropped first if it exists).
fresh_database() {
  psql -X -q -d postgres -c "DROP DATABASE IF EXISTS $1 WITH (FORCE)" -c "CREATE DATABASE $1" >/dev/null
}

TEST_FAILURES=()
TEST_PASSED=0

q() { psql -X -q -tA -v ON_ERROR_STOP=1 "$@" 2>&1; }           # one value/row set, unaligned
qc() { q -c "$1"; }
# A setup step that must succeed: its failure fails the test (instead of leaving the same
# error text on both sides of a later comparison).
must() { local out; out=$(qc "$1") || { fail "setup step failed: $1: $out"; return 1; }; }

# Every failed assertion leaves a mark, so a test fails even when later commands succeed
# (bash ignores `set -e` inside an `if` condition, which is where tests run).
TEST_FAIL_MARK=$(mktemp)
fail() { echo "    FAIL: $*"; echo "$*" >>"$TEST_FAIL_MARK"; return 1; }

assert_eq() { # actual expected what
  [ "$1" == "$2" ] || fail "$3: got '$1', expected '$2'"
}

assert_true() { # sql-boolean-expression what
  local got; got=$(qc "SELECT ($1)::bool")
  [ "$got" == "t" ] || fail "$2: ($1) is '$got'"
}

# Runs SQL that must fail with SQLSTATE $2 and an ERROR line containing $3, leaving the
# backend alive.
assert_error() { # sql sqlstate expected-substring
  local out
  if out=$(psql -X -q -tA -v ON_ERROR_STOP=1 -v VERBOSITY=verbose -c "$1" 2>&1); then
    fail "expected ERROR $2 from: $1 (it succeeded: $out)"; return 1
  fi
  local first; first=$(printf '%s\n' "$out" | grep -m1 '^ERROR:' || true)
  [[ "$first" == "ERROR:  $2: "*"$3"* ]] || { fail "expected ERROR $2 containing '$3' from: $1; got: $out"; return 1; }
  if printf '%s\n' "$out" | grep -qE '^ +[0-9]+: '; then fail "ERROR carries a backtrace: $out"; return 1; fi
  echo "      ok: ${first:0:150}"
}

# Polls `sql` (a boolean query) every 50 ms until it is true or `limit` seconds have passed;
# prints the seconds it took, or returns 1 at the limit.
wait_until() { # sql limit
  local t0; t0=$(date +%s.%N)
  while :; do
    [ "$(qc "SELECT ($1)::bool")" = t ] && { awk "BEGIN { printf \"%.2f\", $(date +%s.%N) - $t0 }"; return 0; }
    awk "BEGIN { exit !($(date +%s.%N) - $t0 > $2) }" && return 1
    sleep 0.05
  done
}

run_tests() { # files with t_* functions (already sourced)
  local names; names=$(grep -ohE '^t_[a-z0-9_]+' "$@")
  for t in $names; do
    if [ -n "${E2E_ONLY:-}" ] && [[ "$t" != *"$E2E_ONLY"* ]]; then continue; fi
    echo "  - $t"
    local started=$SECONDS
    : >"$TEST_FAIL_MARK"
    if ( set -e; "$t" ) && [ ! -s "$TEST_FAIL_MARK" ]; then
      TEST_PASSED=$((TEST_PASSED + 1)); echo "    passed ($((SECONDS - started)) s)"
    else
      TEST_FAILURES+=("$t"); echo "    FAILED ($((SECONDS - started)) s)"
    fi
  done
}

# Starts the cluster unless it runs; a layer that cannot have its server fails as a whole.
start_cluster_or_fail() { # layer
  cluster start || { echo "$1: could not start PostgreSQL on port $NEUMF_PGPORT (another server there?)"; echo "$1: 0 passed, 1 failed"; exit 1; }
}

# Prints '<layer>: N passed, M failed' and returns non-zero on failure.
summary() { # layer
  echo
  [ ${#TEST_FAILURES[@]} -eq 0 ] || echo "failed: ${TEST_FAILURES[*]}"
  echo "$1: $TEST_PASSED passed, ${#TEST_FAILURES[@]} failed"
  [ ${#TEST_FAILURES[@]} -eq 0 ]
}
