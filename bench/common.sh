# Sourced by the benchmarks. Helpers shared by them; ensure_current_extension and
# first_statement need scripts/env.sh and the PG* connection variables, the others nothing.

# ratio A B [decimals, default 2]: A / B.
ratio() { awk "BEGIN { printf \"%.${3:-2}f\", $1 / $2 }"; }

# field JSON KEY: one field of a one-line JSON object (what reference_neumf.py and loo print).
field() { python3 -c "import json, sys; print(json.loads(sys.argv[1])[sys.argv[2]])" "$1" "$2"; }

# The bench database keeps its tables and trained models between runs: the extension is
# created once and brought to the installed version with ALTER EXTENSION … UPDATE, like any
# user's database, never dropped.
ensure_current_extension() {
  psql -X -q -v ON_ERROR_STOP=1 -c "CREATE EXTENSION IF NOT EXISTS neumf" -c "ALTER EXTENSION neumf UPDATE"
  # A bench database made by an unreleased development build can hold SQL that no release had;
  # an upgrade then leaves a second neumf_train beside the new one.
  if [ "$(psql -X -q -tA -c "SELECT count(*) FROM pg_proc WHERE proname = 'neumf_train'")" != 1 ]; then
    echo "the bench database $PGDATABASE holds neumf SQL from a development build: drop it (dropdb $PGDATABASE) and run again" >&2
    return 1
  fi
}

# p50 and p95 ms of one statement as the first of `count` fresh connections (connection setup
# excluded: psql's \timing measures the statement alone); extra server options in $3.
first_statement() { # sql count [options]
  for _ in $(seq 1 "$2"); do
    PGOPTIONS="${3:-} -c client_min_messages=warning" psql -X -q -c '\timing on' -c "$1" 2>&1 | sed -n 's/^Time: \([0-9.]*\) ms.*/\1/p' | head -1
  done | sort -n | awk '{a[NR]=$1} END {p = int(NR*0.95+0.5); if (p < 1) p = 1; printf "%.2f %.2f\n", a[int((NR+1)/2)], a[p]}'
}
