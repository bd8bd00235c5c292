#!/usr/bin/env bash
# Golden-file tests: each sql/NAME.sql runs alone in psql (PostgreSQL's pg_regress, against
# the running test cluster), and what psql prints must equal expected/NAME.out.
#   REGRESS_ONLY="a b"   run only these files
#   REGRESS_ACCEPT=1     copy the outputs over expected/ (review the git diff before committing)
# Prints 'pg_regress: N passed, M failed'.
set -uo pipefail
here=$(cd "$(dirname "$0")" && pwd)
. "$here/../lib.sh"
start_cluster_or_fail pg_regress
pg_regress="$("$PG_BIN/pg_config" --pkglibdir)/pgxs/src/test/regress/pg_regress"
[ -x "$pg_regress" ] || { echo "pg_regress not found at $pg_regress (postgresql-server-dev-15)"; echo "pg_regress: 0 passed, 1 failed"; exit 1; }
if [ -n "${REGRESS_ONLY:-}" ]; then
  read -ra tests <<<"$REGRESS_ONLY"
else
  mapfile -t tests < <(cd "$here/sql" && ls ./*.sql | sed 's|^\./||; s/\.sql$//')
fi
out=$(mktemp -d /tmp/neumf-regress.XXXXXX)
# pg_regress stops at a missing expected file; a new test being accepted starts from an empty one.
if [ "${REGRESS_ACCEPT:-0}" = 1 ]; then
  for t in "${tests[@]}"; do [ -f "$here/expected/$t.out" ] || : >"$here/expected/$t.out"; done
fi
fresh_database neumf_regress
# pg_regress runs psql in this directory, so `\i common/setup.sql` resolves.
cd "$here"
"$pg_regress" --use-existing --bindir="$PG_BIN" --host="$PGHOST" --port="$PGPORT" --user=postgres \
  --dbname=neumf_regress --inputdir="$here" --outputdir="$out" "${tests[@]}" | tee "$out/summary.txt"
# A file whose psql exited with an error failed, whatever its output.
passed=$(grep -E '\.\.\. ok' "$out/summary.txt" | grep -cv 'exited with exit code' || true)
failed=$(grep -cE '\.\.\. FAILED|exited with exit code' "$out/summary.txt" || true)
if [ "$failed" -gt 0 ] && [ -f "$out/regression.diffs" ]; then
  echo "--- differences (full file: $out/regression.diffs)"; head -150 "$out/regression.diffs"
fi
if [ "${REGRESS_ACCEPT:-0}" = 1 ]; then
  for t in "${tests[@]}"; do [ -f "$out/results/$t.out" ] && cp "$out/results/$t.out" "$here/expected/$t.out"; done
  echo "accepted ${#tests[@]} outputs into $here/expected"
fi
[ $((passed + failed)) -eq ${#tests[@]} ] || { echo "pg_regress ran $((passed + failed)) of ${#tests[@]} files"; failed=$((failed + ${#tests[@]} - passed - failed)); }
echo "pg_regress: $passed passed, $failed failed"
[ "$failed" -eq 0 ]
