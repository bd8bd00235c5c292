# Upgrade tests, sourced by tests.sh: a database made by any earlier release keeps its models
# through `ALTER EXTENSION neumf UPDATE` and ends up exactly like a fresh install.

ext_dir=$("$PG_BIN/pg_config" --sharedir)/extension
current_version() { sed -n "s/^default_version *= *'\(.*\)'/\1/p" "$ext_dir/neumf.control"; }

# Scores, rankings and recommendations of the bigint and the text model, as one string.
upgrade_fingerprint() {
  qc "SELECT neumf_score('up_int', 1, 5) || ';' ||
             (SELECT string_agg(item_id || ':' || score, ',' ORDER BY rank) FROM neumf_rank('up_int', 2, ARRAY[1, 2, 3, 4, 5, 6], 4)) || ';' ||
             (SELECT string_agg(item_id || ':' || score, ',' ORDER BY rank) FROM neumf_recommend('up_int', 3, 5)) || ';' ||
             neumf_score('up_text', 'u1', 'i5') || ';' ||
             (SELECT string_agg(item_id || ':' || score, ',' ORDER BY rank) FROM neumf_recommend('up_text', 'u3', 5))"
}

t_upgrade_from_every_earlier_version() {
  local current; current=$(current_version)
  local tried=0
  for script in "$repo"/sql/install/neumf--*.sql; do
    local old=${script##*/neumf--}; old=${old%.sql}
    [ "$old" = "$current" ] && continue
    tried=$((tried + 1))
    echo "      from $old to $current"
    local db=neumf_upgrade_${old//./_}
    fresh_database "$db"
    qc "DROP ROLE IF EXISTS up_owner; DROP ROLE IF EXISTS up_other; CREATE ROLE up_owner; CREATE ROLE up_other" >/dev/null
    (
      export PGDATABASE=$db
      must "CREATE EXTENSION neumf VERSION '$old'" || exit 1
      assert_eq "$(qc "SELECT extversion FROM pg_extension WHERE extname = 'neumf'")" "$old" "installed the frozen $old script"
      # Models trained under the old SQL, with bigint and text ids, one with two versions.
      must "CREATE TABLE up_data AS SELECT * FROM neumf_synthetic_interactions(200, 60, per_user => 10, clusters => 4)" || exit 1
      must "SELECT neumf_train('up_int', 'up_data', epochs => 2)" || exit 1
      must "SELECT neumf_train('up_int', 'up_data', epochs => 1, seed => 5, activate => false)" || exit 1
      must "SELECT neumf_train('up_text', 'SELECT ''u'' || user_id AS user_id, ''i'' || item_id AS item_id FROM up_data', epochs => 2)" || exit 1
      # A model trained by an ordinary role under the old SQL: after the update it owns it.
      must "GRANT SELECT, INSERT, UPDATE, DELETE ON neumf_model_versions, neumf_model_chunks TO up_owner, up_other;
            GRANT SELECT ON up_data TO up_owner" || exit 1
      must "SET ROLE up_owner; SELECT neumf_train('up_role', 'up_data', epochs => 1)" || exit 1
      local before; before=$(upgrade_fingerprint)
      [[ "$before" != *ERROR* && "$before" == *:* ]] || fail "models do not serve before the upgrade: $before"
      # The old SQL's neumf_cache() (three columns) still works on the new library.
      assert_eq "$(qc "SELECT neumf_score('up_int', 1, 5); SELECT string_agg(model, ',') FROM neumf_cache()" | tail -1)" "up_int" \
        "the old neumf_cache() lists the model this session served"
      must "ALTER EXTENSION neumf UPDATE" || exit 1
      assert_eq "$(qc "SELECT extversion FROM pg_extension WHERE extname = 'neumf'")" "$current" "updated to $current"
      assert_eq "$(upgrade_fingerprint)" "$before" "the same scores after the upgrade"
      assert_eq "$(qc "SELECT count(*) FROM neumf_recommend('up_int', 3, 5, candidates => 3)")" "5" "two-stage recommend after the upgrade"
      assert_eq "$(qc "SELECT string_agg(model || ':' || version || ':' || active, ',' ORDER BY model, version) FROM neumf_models")" \
                "up_int:1:true,up_int:2:false,up_role:1:true,up_text:1:true" "every version kept"
      assert_eq "$(qc "SELECT string_agg(DISTINCT model || ':' || owner, ',') FROM neumf_models")" \
                "up_int:postgres,up_role:up_owner,up_text:postgres" "each model is owned by whoever trained its oldest version"
      assert_error "SET ROLE up_other; SELECT neumf_drop('up_role')" 42501 'permission denied to drop neumf model "up_role"'
      assert_eq "$(qc "SET ROLE up_owner; SELECT neumf_drop('up_role')")" "1" "its owner may still drop it"
      must "REVOKE ALL ON neumf_model_versions, neumf_model_chunks, up_data FROM up_owner, up_other" || exit 1
      # Every argument the new neumf_train has, passed by name (NULL = its default).
      local every
      every=$(qc "SELECT string_agg(a || ' => NULL', ', ') FROM pg_proc p, unnest(p.proargnames[3:p.pronargs]) a
                  WHERE p.proname = 'neumf_train' AND a NOT IN ('epochs')")
      assert_eq "$(qc "SELECT version FROM neumf_train('up_int', 'up_data', epochs => 1, $every)")" "3" "neumf_train with every argument after the upgrade"
      assert_true "neumf_activate('up_int', 1) = 1 AND neumf_score('up_int', 1, 5) IS NOT NULL" "old versions still activate and serve"
      assert_eq "$(qc "SELECT neumf_drop('up_text')")" "1" "an old model drops"
      assert_eq "$(qc "SELECT count(*) FROM neumf_model_chunks WHERE model = 'up_text'")" "0" "with its chunks"
    ) || fail "upgrade from $old"
    # The upgraded database's extension objects equal a fresh install's.
    fresh_database neumf_upgrade_fresh
    PGDATABASE=neumf_upgrade_fresh must "CREATE EXTENSION neumf" || return 1
    local upgraded fresh
    upgraded=$(PGDATABASE=$db q -f "$repo/tests/sql/describe_extension.sql") || fail "describing the upgraded extension: $upgraded"
    fresh=$(PGDATABASE=neumf_upgrade_fresh q -f "$repo/tests/sql/describe_extension.sql") || fail "describing the fresh extension: $fresh"
    local objects; objects=$(PGDATABASE=neumf_upgrade_fresh qc "SELECT count(*) FROM pg_depend WHERE refclassid = 'pg_extension'::regclass AND deptype = 'e' AND refobjid = (SELECT oid FROM pg_extension WHERE extname = 'neumf')")
    [ "$objects" -ge 15 ] || fail "a fresh install has only $objects extension objects"
    if [ "$upgraded" != "$fresh" ]; then
      fail "the extension upgraded from $old differs from a fresh $current install:"
      diff <(echo "$fresh") <(echo "$upgraded") | head -40
    else
      echo "      upgraded schema = fresh install ($objects objects and the extension's configuration tables compared)"
    fi
    psql -X -q -d postgres -c "DROP DATABASE $db WITH (FORCE)" -c "DROP DATABASE neumf_upgrade_fresh WITH (FORCE)" \
      -c "DROP ROLE up_owner" -c "DROP ROLE up_other" >/dev/null
  done
  [ "$tried" -gt 0 ] || fail "no earlier version under sql/install to upgrade from"
}

# The SQL that this build installs for its version must equal the frozen copy in sql/install:
# a change to tables, views or function signatures needs a new version and an upgrade script.
t_this_versions_sql_is_frozen() {
  local current; current=$(current_version)
  local frozen="$repo/sql/install/neumf--$current.sql" generated="$ext_dir/neumf--$current.sql"
  [ -f "$frozen" ] || { fail "$frozen is missing"; return 1; }
  # pgrx's comments name source lines and Rust types, which move with any edit; the statements
  # are what count.
  statements() { grep -v '^ *--' "$1" | sed 's|/\*[^*]*\*/||g; s/[[:space:]]*$//' | sed '/^$/d'; }
  local d
  if ! d=$(diff <(statements "$frozen") <(statements "$generated")); then
    echo "$d" | head -30
    fail "the SQL this build generates for $current differs from sql/install/neumf--$current.sql: bump the version in Cargo.toml, freeze the new SQL (scripts/freeze-sql.sh) and write sql/upgrade/neumf--$current--<new>.sql"
  fi
  # Every step from each frozen version to the current one exists.
  local v
  for script in "$repo"/sql/install/neumf--*.sql; do
    v=${script##*/neumf--}; v=${v%.sql}
    [ "$v" = "$current" ] && continue
    ls "$repo"/sql/upgrade/neumf--"$v"--*.sql >/dev/null 2>&1 || fail "no upgrade script from $v"
  done
}

# A database holding the rows that release $2's library wrote (tests/e2e/fixtures/models-$2.sql:
# model versions, their chunks, and the scores that library served), with release $2's SQL.
load_fixture() { # database version
  fresh_database "$1"
  PGDATABASE=$1 must "CREATE EXTENSION neumf VERSION '$2'" || return 1
  PGDATABASE=$1 q -f "$tests_dir/e2e/fixtures/models-$2.sql" >/dev/null || { fail "loading the $2 fixture"; return 1; }
}

# "matching/total" of the scores the old library served that this one serves within 1e-5.
fixture_scores_match() {
  qc "SELECT count(*) FILTER (WHERE abs(CASE WHEN model = 'fx_text' THEN neumf_score(model, user_id, item_id)
                                             ELSE neumf_score(model, user_id::bigint, item_id::bigint) END - score) < 1e-5)
             || '/' || count(*) FROM fixture_scores"
}

t_models_written_by_earlier_releases_still_serve() {
  local current fixture tried=0
  current=$(current_version)
  for fixture in "$tests_dir"/e2e/fixtures/models-*.sql; do
    local old=${fixture##*/models-}; old=${old%.sql}
    tried=$((tried + 1))
    echo "      rows written by the $old library"
    load_fixture neumf_fixture "$old" || return 1
    (
      export PGDATABASE=neumf_fixture
      local total; total=$(qc "SELECT count(*) FROM fixture_scores")
      [ "$total" -gt 0 ] || fail "the fixture has no scores"
      assert_eq "$(fixture_scores_match)" "$total/$total" "scores under the $old SQL"
      # An orphaned chunk, as a manual DELETE could leave under 0.1.0: the update removes it.
      must "INSERT INTO neumf_model_chunks VALUES ('fx_orphan', 1, 0, '\\x00')" || exit 1
      must "ALTER EXTENSION neumf UPDATE" || exit 1
      assert_eq "$(qc "SELECT extversion FROM pg_extension WHERE extname = 'neumf'")" "$current" "updated"
      assert_eq "$(fixture_scores_match)" "$total/$total" "scores after the update"
      assert_eq "$(qc "SELECT count(*) FROM neumf_model_chunks WHERE model = 'fx_orphan'")" "0" "orphaned chunk removed"
      assert_eq "$(qc "SELECT string_agg(model || ':' || version || ':' || active || ':' || factors, ',' ORDER BY model, version) FROM neumf_models")" \
                "fx_int:1:false:8,fx_int:2:true:8,fx_text:1:true:8" "versions and their metadata"
      assert_true "neumf_activate('fx_int', 1) = 1 AND neumf_score('fx_int', 1, 5) BETWEEN 0 AND 1" "an old inactive version activates and serves"
      assert_eq "$(qc "SELECT version FROM neumf_train('fx_int', 'SELECT user_id::bigint AS user_id, item_id::bigint AS item_id FROM fixture_scores WHERE model = ''fx_int''', epochs => 1, validation => false)")" \
                "3" "an old model trains a new version"
    ) || fail "rows of $old"
    psql -X -q -d postgres -c "DROP DATABASE neumf_fixture WITH (FORCE)" >/dev/null
  done
  [ "$tried" -gt 0 ] || fail "no fixture under tests/e2e/fixtures"
}

# A dump taken under an earlier release restores into this one as the README says: create the
# old version first, restore, then update.
t_dump_from_an_earlier_release_restores() {
  local fixture dump
  dump=$(mktemp /tmp/neumf_e2e.XXXXXX.dump); chmod 644 "$dump"
  for fixture in "$tests_dir"/e2e/fixtures/models-*.sql; do
    local old=${fixture##*/models-}; old=${old%.sql}
    load_fixture neumf_fixture "$old" || return 1
    "$PG_BIN/pg_dump" -Fc -f "$dump" neumf_fixture || fail "pg_dump"
    fresh_database neumf_fixture_restored
    (
      export PGDATABASE=neumf_fixture_restored
      must "CREATE EXTENSION neumf VERSION '$old'" || exit 1
      "$PG_BIN/pg_restore" -d neumf_fixture_restored "$dump" || fail "pg_restore reported errors"
      must "ALTER EXTENSION neumf UPDATE" || exit 1
      local total; total=$(qc "SELECT count(*) FROM fixture_scores")
      assert_eq "$(fixture_scores_match)" "$total/$total" "restored from a $old dump, updated, same scores"
      echo "      $old dump restored: $(qc "SELECT count(*) FROM neumf_model_versions") versions, $(qc "SELECT count(*) FROM neumf_model_chunks") chunks, scores $(fixture_scores_match)"
    ) || fail "dump of $old"
    psql -X -q -d postgres -c "DROP DATABASE neumf_fixture WITH (FORCE)" -c "DROP DATABASE neumf_fixture_restored WITH (FORCE)" >/dev/null
  done
  rm -f "$dump"
}
