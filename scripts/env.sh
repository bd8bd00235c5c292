# Sourced by the other scripts (and by developers: `. scripts/env.sh`) so that cargo finds
# libtorch in the torch venv that scripts/setup.sh creates.
export NEUMF_VENV=${NEUMF_VENV:-/opt/neumf/venv}
export LIBTORCH_USE_PYTORCH=1
case ":$PATH:" in *":$NEUMF_VENV/bin:"*) ;; *) export PATH="$NEUMF_VENV/bin:$PATH" ;; esac
export PGRX_HOME=${PGRX_HOME:-$HOME/.pgrx}
export PG_CONFIG=${PG_CONFIG:-/usr/lib/postgresql/15/bin/pg_config}
