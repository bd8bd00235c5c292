#!/usr/bin/env bash
# Builds neumf in release mode and installs it into the system PostgreSQL 15, then shows that
# the installed library finds libtorch by itself (rpath, no LD_LIBRARY_PATH).
set -euo pipefail
cd "$(dirname "$0")/.."
. scripts/env.sh
sudo_flag=()
[ "$(id -u)" = 0 ] || sudo_flag=(--sudo)
build_log=$(mktemp)
if ! cargo pgrx install --release --pg-config "$PG_CONFIG" "${sudo_flag[@]}" >"$build_log" 2>&1; then
  cat "$build_log" >&2; exit 1
fi
sed 's/\x1b\[[0-9;]*m//g' "$build_log" | grep -E "^ *(Installing|Finished) " || true
rm -f "$build_log"
lib="$("$PG_CONFIG" --pkglibdir)/neumf.so"
[ -f "$lib" ] || { echo "install failed: $lib missing" >&2; exit 1; }
if ldd "$lib" | grep -q "not found"; then
  echo "installed $lib has unresolved libraries:" >&2; ldd "$lib" | grep "not found" >&2; exit 1
fi
