#!/usr/bin/env bash
# Writes the SQL this source tree installs for its version (Cargo.toml) to
# sql/install/neumf--<version>.sql. Run it once when you open a new version (after bumping
# Cargo.toml and writing sql/upgrade/neumf--<previous>--<version>.sql), and again whenever a
# change within that unreleased version alters its SQL. A released version's file never
# changes: the upgrade test installs it to check the path from it.
set -euo pipefail
cd "$(dirname "$0")/.."
. scripts/env.sh
version=$(sed -n 's/^version = "\(.*\)"/\1/p' Cargo.toml | head -1)
cargo pgrx schema pg15 --pg-config "$PG_CONFIG" -o "sql/install/neumf--$version.sql" >/dev/null
echo "wrote sql/install/neumf--$version.sql"
