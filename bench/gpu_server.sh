#!/usr/bin/env bash
# neumf_train(device => 'cuda') through a real PostgreSQL server on a GPU machine that has no
# PostgreSQL and no network (the lent GPU machines): the build is carried there as a bundle.
#
#   bench/gpu_server.sh bundle OUT_DIR   here, after scripts/install.sh: packs the system
#       PostgreSQL 15 server (postgres, initdb, pg_ctl, psql; its share dir; the libraries it
#       and neumf need beyond glibc and libstdc++), neumf.so, neumf_trainer.so and neumf's SQL
#       into OUT_DIR/pg15-neumf.tar.xz (relocatable: PostgreSQL finds share/ and lib/ relative
#       to its binaries)
#   bench/gpu_server.sh run BUNDLE       there, as root: unpacks it, starts a server on
#       loopback as an unprivileged user, with libtorch from the machine's python, and runs
#       bench/gpu_server.sql (synchronous f32 and bf16 trainings and one background job on
#       CUDA, then serving checks), printing its output
# env (run): GPU_SERVER_USERS / _ITEMS / _PER_USER (138000 / 27000 / 40: ≈5.5M interactions),
#            GPU_SERVER_EPOCHS (3), GPU_SERVER_DEVICE (cuda; cpu = dry run), GPU_SERVER_PORT (5497)
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
mode=${1:?usage: gpu_server.sh bundle OUT_DIR | run BUNDLE}

bundle() {
  local out=$1 stage pgbin=/usr/lib/postgresql/15/bin pglib=/usr/lib/postgresql/15/lib
  stage=$(mktemp -d); trap 'rm -rf "$stage"' RETURN
  mkdir -p "$stage/usr/lib/postgresql/15/bin" "$stage/usr/lib/postgresql/15/lib" "$stage/usr/share/postgresql" "$stage/deps"
  cp -a "$pgbin"/{postgres,initdb,pg_ctl,psql} "$stage/usr/lib/postgresql/15/bin/"
  # Procedural language, text search and encoding conversions (initdb sets them up), neumf;
  # not llvmjit (the server runs with jit = off) or other contrib modules.
  local libs=("$pglib"/{plpgsql,dict_snowball,neumf,neumf_trainer}.so "$pglib"/*_and_*.so)
  cp -a "${libs[@]}" "$stage/usr/lib/postgresql/15/lib/"
  cp -a /usr/share/postgresql/15 "$stage/usr/share/postgresql/"
  rm -rf "$stage/usr/share/postgresql/15/man"
  # Libraries beyond glibc's own and the C++ runtime (the GPU machine's newer ones serve
  # libtorch); the run step uses a carried one only where the machine lacks that soname.
  for f in "$pgbin"/{postgres,initdb,pg_ctl,psql} "${libs[@]}"; do ldd "$f"; done \
    | awk '/=> \// {print $3}' | sort -u \
    | grep -vE '/(libc|libm|libpthread|libdl|librt|libresolv|libutil|ld-linux[^/]*|libstdc\+\+|libgcc_s)\.so' \
    | grep -vE '/(libtorch|libc10|libcu|libnv|libnccl|libgomp|libcupti)' \
    | while read -r dep; do cp -L "$dep" "$stage/deps/"; done
  mkdir -p "$out"
  tar -C "$stage" -cJf "$out/pg15-neumf.tar.xz" .
  echo "bundle: $out/pg15-neumf.tar.xz ($(du -h "$out/pg15-neumf.tar.xz" | cut -f1))"
}

run() {
  local tarball=$1 root=/opt/neumf-gpu data=/opt/neumf-gpu/data port=${GPU_SERVER_PORT:-5497} py torch_lib site
  rm -rf "$root"; mkdir -p "$root/fallback"
  tar -C "$root" -xJf "$tarball"
  for dep in "$root"/deps/*; do
    ldconfig -p | grep -q " $(basename "$dep") " || ln -s "$dep" "$root/fallback/"
  done
  py=python3; [ -x /opt/neumf/venv/bin/python ] && py=/opt/neumf/venv/bin/python
  torch_lib=$("$py" -c 'import os, torch; print(os.path.join(os.path.dirname(torch.__file__), "lib"))')
  # neumf_trainer.so's RUNPATH names the build machine's venv; point that path at this
  # machine's site-packages so libtorch's own $ORIGIN-relative paths (the CUDA libs) resolve too.
  site=$(dirname "$(dirname "$torch_lib")")
  mkdir -p /opt/neumf/venv/lib/python3.11
  [ -e /opt/neumf/venv/lib/python3.11/site-packages ] || ln -s "$site" /opt/neumf/venv/lib/python3.11/site-packages
  id neumfpg >/dev/null 2>&1 || useradd -r -M -d "$root" neumfpg
  chown -R neumfpg "$root"
  local bin="$root/usr/lib/postgresql/15/bin"
  as_pg() { runuser -u neumfpg -- env LD_LIBRARY_PATH="$root/fallback:$torch_lib" PATH="$bin:$PATH" "$@"; }
  as_pg initdb -A trust -U postgres -D "$data" >/dev/null
  cat >>"$data/postgresql.conf" <<CONF
listen_addresses = '127.0.0.1'
port = $port
unix_socket_directories = '/tmp'
jit = off
shared_buffers = '2GB'
max_wal_size = '8GB'
max_worker_processes = 16
neumf.train_threads = 8
CONF
  as_pg pg_ctl -D "$data" -l "$root/server.log" -w start >/dev/null
  trap 'as_pg pg_ctl -D "$data" -m fast stop >/dev/null || true' RETURN
  local ok=0
  as_pg psql -h 127.0.0.1 -p "$port" -U postgres -d postgres -v ON_ERROR_STOP=1 -X \
    -v users="${GPU_SERVER_USERS:-138000}" -v items="${GPU_SERVER_ITEMS:-27000}" \
    -v per_user="${GPU_SERVER_PER_USER:-40}" -v epochs="${GPU_SERVER_EPOCHS:-3}" \
    -v device="${GPU_SERVER_DEVICE:-cuda}" \
    -f "$here/gpu_server.sql" || ok=$?
  echo "== processes holding the GPU 2 s after the trainings' sessions closed (none expected):"
  sleep 2
  nvidia-smi --query-compute-apps=pid,process_name,used_memory --format=csv,noheader || true
  echo "== server log (errors, crashes):"
  grep -E "ERROR|FATAL|PANIC|terminated by signal" "$root/server.log" || echo "(none)"
  return $ok
}

case $mode in
  bundle) bundle "${2:?OUT_DIR}" ;;
  run) run "${2:?BUNDLE}" ;;
  *) echo "unknown mode $mode" >&2; exit 2 ;;
esac
