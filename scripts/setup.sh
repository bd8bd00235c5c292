#!/usr/bin/env bash
# Installs everything neumf needs to build and test, skipping what is already there.
# Idempotent: safe to run on every CI run and on a developer's machine.
#
#   apt: PostgreSQL 15 server + headers, clang (bindgen), sudo
#   cargo-pgrx 0.18.0, initialised against the system PostgreSQL 15
#   a Python venv with torch==2.11.0 (libtorch for tch; CUDA-capable wheel)
#
# Environment knobs:
#   NEUMF_VENV   where the torch venv lives (default /opt/neumf/venv). It must be readable
#                by the postgres user, because the installed extension links to its libtorch.
set -euo pipefail

PG_MAJOR=15
PG_CONFIG=/usr/lib/postgresql/$PG_MAJOR/bin/pg_config
PGRX_VERSION=0.18.0
TORCH_VERSION=2.11.0
NEUMF_VENV=${NEUMF_VENV:-/opt/neumf/venv}

log() { printf '\033[1m[setup]\033[0m %s\n' "$*"; }
as_root() { if [ "$(id -u)" = 0 ]; then "$@"; else sudo "$@"; fi; }

# --- system packages -------------------------------------------------------------------------
need_pkgs=()
# postgresql-15-cron: the scheduling test (neumf_train_async from pg_cron); the client package
# brings pg_basebackup (the replica test), the server package pgbench (the load test);
# pgbouncer: the connection-pooler test (transaction pooling).
for p in postgresql-$PG_MAJOR postgresql-client-$PG_MAJOR postgresql-server-dev-$PG_MAJOR postgresql-contrib postgresql-$PG_MAJOR-cron pgbouncer libclang-dev clang sudo pkg-config; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q 'install ok installed' || need_pkgs+=("$p")
done
if [ ${#need_pkgs[@]} -gt 0 ]; then
  log "apt-get install ${need_pkgs[*]}"
  as_root apt-get update -qq
  as_root env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${need_pkgs[@]}" >/dev/null
else
  log "system packages present"
fi

# --- cargo-pgrx ------------------------------------------------------------------------------
if ! cargo pgrx --version 2>/dev/null | grep -q " $PGRX_VERSION\$"; then
  log "cargo install cargo-pgrx $PGRX_VERSION (takes a few minutes)"
  cargo install cargo-pgrx --version "$PGRX_VERSION" --locked --quiet
else
  log "cargo-pgrx $PGRX_VERSION present"
fi
PGRX_HOME=${PGRX_HOME:-$HOME/.pgrx}
if ! grep -qs "^pg$PG_MAJOR = \"$PG_CONFIG\"" "$PGRX_HOME/config.toml"; then
  log "cargo pgrx init --pg$PG_MAJOR $PG_CONFIG"
  cargo pgrx init --pg$PG_MAJOR "$PG_CONFIG" >/dev/null
else
  log "cargo-pgrx initialised for pg$PG_MAJOR"
fi

# --- libtorch (via the PyPI torch wheel) ------------------------------------------------------
# numpy too: bench/synthetic.py needs it, and a venv made before it was added lacks it.
if ! "$NEUMF_VENV/bin/python" -c "import numpy, torch, sys; sys.exit(torch.__version__.split('+')[0] != '$TORCH_VERSION')" 2>/dev/null; then
  log "creating $NEUMF_VENV with torch==$TORCH_VERSION (≈2 min, ≈4.6 GB)"
  as_root mkdir -p "$NEUMF_VENV"
  as_root chown "$(id -u):$(id -g)" "$NEUMF_VENV"
  python3 -m venv "$NEUMF_VENV"
  "$NEUMF_VENV/bin/pip" install -q --disable-pip-version-check "torch==$TORCH_VERSION" numpy
else
  log "torch $TORCH_VERSION present in $NEUMF_VENV"
fi
# The postgres user must be able to read libtorch (the extension's rpath points here).
as_root chmod -R a+rX "$(dirname "$NEUMF_VENV")"
log "done"
