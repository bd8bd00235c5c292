#!/usr/bin/env bash
# The main job on a fresh machine: install what is needed, build and install neumf, start a
# local PostgreSQL on loopback, load a demo interactions table, train a model, recommend.
# Idempotent: re-running skips what is already done, upgrades the extension in place if the
# build is newer, and trains the demo model again (a new version beside the old ones).
set -euo pipefail
cd "$(dirname "$0")/.."
. scripts/env.sh
export NEUMF_PGDATA=${NEUMF_PGDATA:-/var/tmp/neumf/cluster} NEUMF_PGPORT=${NEUMF_PGPORT:-5499}
DB=${NEUMF_DEMO_DB:-neumf_demo}
log() { printf '\033[1m[demo]\033[0m %s\n' "$*"; }

bash scripts/setup.sh
log "building and installing neumf (release)"
bash scripts/install.sh
log "starting PostgreSQL 15 on 127.0.0.1:$NEUMF_PGPORT (data in $NEUMF_PGDATA)"
scripts/cluster.sh restart
psql_demo() { scripts/cluster.sh psql -d "$DB" "$@"; }
scripts/cluster.sh psql -d postgres -tAc "SELECT 1 FROM pg_database WHERE datname = '$DB'" | grep -q 1 \
  || scripts/cluster.sh psql -d postgres -qc "CREATE DATABASE $DB"

log "loading demo data and training (8 taste groups planted in 6,000 users × 1,500 items)"
psql_demo -q <<'SQL'
SET client_min_messages = warning;
CREATE EXTENSION IF NOT EXISTS neumf;
ALTER EXTENSION neumf UPDATE;
DROP TABLE IF EXISTS ratings;
CREATE TABLE ratings AS SELECT * FROM neumf_synthetic_interactions(6000, 1500, per_user => 25, clusters => 8);
ANALYZE ratings;
SQL
psql_demo -c "SELECT count(*) AS interactions, count(DISTINCT user_id) AS users, count(DISTINCT item_id) AS items FROM ratings"
psql_demo -c "SELECT model_name, version, device_used, users, items, interactions, round(final_loss::numeric, 4) AS final_loss,
                     round(train_seconds::numeric, 1) AS seconds, round(samples_per_second) AS samples_per_s
              FROM neumf_train('movies', 'SELECT user_id, item_id, rating, ts FROM ratings', epochs => 8, batch_size => 1024,
                                      learning_rate => 0.003, pretrain => false, refit => false)"

log "top 5 recommendations for users 1-3 (user u likes group u % 8; item i is in group i % 8)"
psql_demo -c "SELECT u.user_id, (u.user_id - 1) % 8 AS user_group, r.rank, r.item_id, (r.item_id - 1) % 8 AS item_group, round(r.score::numeric, 3) AS score
              FROM generate_series(1, 3) AS u(user_id), LATERAL neumf_recommend('movies', u.user_id, 5) r ORDER BY 1, 3"
log "how well the planted groups were recovered (random guessing: 12.5%)"
psql_demo -c "SELECT round(100.0 * avg(((r.item_id - 1) % 8 = (u.user_id - 1) % 8)::int), 1) AS pct_top10_in_users_group
              FROM generate_series(1, 500) AS u(user_id), LATERAL neumf_recommend('movies', u.user_id, 10) r"
psql_demo -c "SELECT * FROM neumf_rank('movies', 1, ARRAY[1, 2, 9, 17, 25, 3, 4], 3)"
psql_demo -c "SELECT model, version, active, architecture, factors, layers, n_users, n_items, size, device FROM neumf_models ORDER BY model, version"
log "done. Connect with: psql -h 127.0.0.1 -p $NEUMF_PGPORT -U postgres $DB   (stop: scripts/cluster.sh stop)"
