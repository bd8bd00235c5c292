# Helpers for the end-to-end tests: a private cluster on loopback, psql wrappers, assertions.
# Each test is a function named t_*; run.sh runs them in file order and counts results.

E2E_FAILURES=()
E2E_PASSED=0

q() { psql -X -q -tA -v ON_ERROR_STOP=1 "$@" 2>&1; }           # one value/row set, unaligned
qc() { q -c "$1"; }

# Every failed assertion leaves a mark, so a test fails even when later commands succeed
# (bash ignores `set -e` inside an `if` condition, which is where tests run).
E2E_FAIL_MARK=$(mktemp)
fail() { echo "    FAIL: $*"; echo "$*" >>"$E2E_FAIL_MARK"; return 1; }

assert_eq() { # actual expected what
  [ "$1" == "$2" ] || fail "$3: got '$1', expected '$2'"
}

assert_true() { # sql-boolean-expression what
  local got; got=$(qc "SELECT ($1)::bool")
  [ "$got" == "t" ] || fail "$2: ($1) is '$got'"
}

# Runs SQL that must fail with an ERROR containing $2, as one line, leaving the backend alive.
assert_error() { # sql expected-substring
  local out
  if out=$(psql -X -q -tA -v ON_ERROR_STOP=1 -c "$1" 2>&1); then
    fail "expected ERROR containing '$2' from: $1 (it succeeded: $out)"; return 1
  fi
  local first; first=$(printf '%s\n' "$out" | grep -m1 '^ERROR:' || true)
  [[ "$first" == *"$2"* ]] || { fail "expected ERROR containing '$2' from: $1; got: $out"; return 1; }
  if printf '%s\n' "$out" | grep -qE '^ +[0-9]+: '; then fail "ERROR carries a backtrace: $out"; return 1; fi
  echo "      ok: ${first:0:150}"
}

run_tests() {
  local names; names=$(grep -oE '^t_[a-z0-9_]+' "$1")
  for t in $names; do
    # The tests share one database; the first creates the extension and the 'small' model.
    if [ -n "${E2E_ONLY:-}" ] && [[ "$t" != *"$E2E_ONLY"* ]] && [ "$t" != t_create_extension_and_small_model ]; then continue; fi
    echo "  - $t"
    local started=$SECONDS
    : >"$E2E_FAIL_MARK"
    if ( set -e; "$t" ) && [ ! -s "$E2E_FAIL_MARK" ]; then
      E2E_PASSED=$((E2E_PASSED + 1)); echo "    passed ($((SECONDS - started)) s)"
    else
      E2E_FAILURES+=("$t"); echo "    FAILED ($((SECONDS - started)) s)"
    fi
  done
}
