#!/usr/bin/env bash
# Builds neumf in release mode and installs it into the system PostgreSQL 15:
#   neumf.so          the extension (serving, storage, SQL); no libtorch in it
#   neumf_trainer.so  training (libtorch), dlopen'ed by neumf_train only
# then checks that both resolve every library by themselves (rpath, no LD_LIBRARY_PATH) and
# that the trainer keeps libtorch's CUDA library linked.
set -euo pipefail
cd "$(dirname "$0")/.."
. scripts/env.sh
as_root() { if [ "$(id -u)" = 0 ]; then "$@"; else sudo "$@"; fi; }
target=${CARGO_TARGET_DIR:-target}
package="$target/release/neumf-pg15"
build_log=$(mktemp)
if ! cargo pgrx package --pg-config "$PG_CONFIG" --out-dir "$package" >"$build_log" 2>&1 \
   || ! cargo build --release -p neumf-trainer >>"$build_log" 2>&1; then
  cat "$build_log" >&2; exit 1
fi
sed 's/\x1b\[[0-9;]*m//g' "$build_log" | grep -E "^ *Finished " || true
rm -f "$build_log"
libdir=$("$PG_CONFIG" --pkglibdir)
# install(1) replaces each file with a new one instead of writing over it: backends of a
# running server keep the library they mapped (writing over a mapped library can crash them),
# and new ones load the new build.
as_root install -m 755 "$package$libdir/neumf.so" "$libdir/neumf.so"
as_root install -m 644 "$package$("$PG_CONFIG" --sharedir)/extension/"neumf* "$("$PG_CONFIG" --sharedir)/extension/"
# The SQL of earlier versions (frozen in sql/install) and the upgrade steps between versions, so
# that CREATE EXTENSION neumf VERSION '<old>' and ALTER EXTENSION neumf UPDATE work. The
# current version's script is the one cargo pgrx just generated.
extdir="$("$PG_CONFIG" --sharedir)/extension"
current=$(sed -n "s/^default_version *= *'\(.*\)'/\1/p" "$extdir/neumf.control")
for script in sql/install/neumf--*.sql sql/upgrade/neumf--*--*.sql; do
  [ "$script" = "sql/install/neumf--$current.sql" ] && continue
  as_root install -m 644 "$script" "$extdir/"
done
as_root install -m 755 "$target/release/libneumf_trainer.so" "$libdir/neumf_trainer.so"
# ldd's output is captured first: under pipefail, `ldd | grep -q` fails at random when grep
# exits on its first match and ldd dies of SIGPIPE.
for lib in "$libdir/neumf.so" "$libdir/neumf_trainer.so"; do
  deps=$(ldd "$lib")
  if grep -q "not found" <<<"$deps"; then
    echo "installed $lib has unresolved libraries:" >&2; grep "not found" <<<"$deps" >&2; exit 1
  fi
done
if grep -q libtorch <<<"$(ldd "$libdir/neumf.so")"; then
  echo "neumf.so links libtorch; it must not (serving backends would map it)" >&2; exit 1
fi
grep -q libtorch_cuda.so <<<"$(ldd "$libdir/neumf_trainer.so")" || { echo "neumf_trainer.so lost libtorch_cuda.so (--as-needed?)" >&2; exit 1; }
echo "    Installed $libdir/neumf.so and $libdir/neumf_trainer.so"
