# Sourced by the benchmarks. Helpers shared by them; ensure_current_extension needs
# scripts/env.sh and the PG* connection variables, the others nothing.

# ratio A B [decimals, default 2]: A / B.
ratio() { awk "BEGIN { printf \"%.${3:-2}f\", $1 / $2 }"; }

# field JSON KEY: one field of a one-line JSON object (what reference_neumf.py and loo print).
field() { python3 -c "import json, sys; print(json.loads(sys.argv[1])[sys.argv[2]])" "$1" "$2"; }

# The bench database keeps its tables and trained models between runs, but its neumf SQL
# definitions must match the installed library: a rebuild that changed a function's arguments
# (without a new extension version) would otherwise fail with "unboxing … argument failed".
# When the installed extension script differs from the one this database was created from, the
# extension is recreated: this database holds nothing but what the benchmarks make.
ensure_current_extension() {
  local ext_dir version script_md5 recorded
  ext_dir="$("$PG_CONFIG" --sharedir)/extension"
  version=$(sed -n "s/^default_version *= *'\(.*\)'/\1/p" "$ext_dir/neumf.control")
  script_md5=$(md5sum <"$ext_dir/neumf--$version.sql" | cut -c1-32)
  psql -X -q -v ON_ERROR_STOP=1 -c "CREATE TABLE IF NOT EXISTS bench_extension_script (md5 text)"
  recorded=$(psql -X -q -tA -c "SELECT md5 FROM bench_extension_script")
  if [ "$recorded" != "$script_md5" ]; then
    [ -z "$recorded" ] || echo "   the installed neumf SQL changed since this database was set up: recreating the extension"
    psql -X -q -v ON_ERROR_STOP=1 -c "DROP EXTENSION IF EXISTS neumf CASCADE" -c "CREATE EXTENSION neumf" \
      -c "DELETE FROM bench_extension_script" -c "INSERT INTO bench_extension_script VALUES ('$script_md5')"
  fi
}
