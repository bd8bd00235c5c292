-- Who may change a model (README "Privileges"): its owner (the role that first trained it),
-- members of the owner role, and members of neumf_admin. Serving and export need only SELECT.
-- The functions refuse everyone else with 42501 before doing any work; row-level security
-- refuses their direct DML on the model tables.
\i common/setup.sql
CREATE TABLE pv_small AS SELECT * FROM neumf_synthetic_interactions(100, 40, per_user => 5, clusters => 4);
CREATE ROLE pv_alice;
CREATE ROLE pv_bob;
CREATE ROLE pv_carol;
CREATE ROLE pv_dave;
CREATE ROLE pv_reader;
-- The README's grant for roles that train, exactly.
GRANT SELECT, INSERT, UPDATE, DELETE ON neumf_model_versions, neumf_model_chunks TO pv_alice, pv_bob, pv_carol, pv_dave;
GRANT SELECT ON pv_small TO pv_alice, pv_bob, pv_carol, pv_dave;
GRANT neumf_admin TO pv_carol;
GRANT pv_alice TO pv_dave;
-- The README's grant for roles that only serve.
GRANT SELECT ON neumf_model_versions, neumf_model_chunks TO pv_reader;

SET ROLE pv_alice;
SELECT version FROM neumf_train('pv_model', 'pv_small', epochs => 1, validation => false);
RESET ROLE;
SELECT version, owner, trained_by FROM neumf_models WHERE model = 'pv_model';
SELECT pg_temp.stored() AS before \gset

-- bob has the same grant but does not own pv_model: every change is refused.
SET ROLE pv_bob;
SELECT (pg_temp.error_of(sql)).* FROM (VALUES
    ($$SELECT neumf_train('pv_model', 'pv_small', epochs => 1)$$),
    ($$SELECT neumf_train_async('pv_model', 'pv_small', epochs => 1)$$),
    ($$SELECT neumf_activate('pv_model', 1)$$),
    ($$SELECT neumf_prune('pv_model', 1)$$),
    ($$SELECT neumf_drop('pv_model')$$)) AS t(sql);
-- His direct DML: row-level security hides alice's rows from UPDATE and DELETE ...
WITH u AS (UPDATE neumf_model_versions SET active = false WHERE model = 'pv_model' RETURNING 1) SELECT count(*) AS versions_updated FROM u;
WITH u AS (UPDATE neumf_model_versions SET owner = 'pv_bob' WHERE model = 'pv_model' RETURNING 1) SELECT count(*) AS owners_changed FROM u;
WITH d AS (DELETE FROM neumf_model_chunks WHERE model = 'pv_model' RETURNING 1) SELECT count(*) AS chunks_deleted FROM d;
WITH d AS (DELETE FROM neumf_model_versions WHERE model = 'pv_model' RETURNING 1) SELECT count(*) AS versions_deleted FROM d;
-- ... and refuses his rows for her model: a new version (owned by her whatever he writes) or a chunk.
SELECT (pg_temp.error_of($$INSERT INTO neumf_model_versions (model, version, architecture, hyperparameters, user_id_type,
    item_id_type, n_users, n_items, n_interactions, rows_read, rows_skipped, train_seconds, device, size_bytes, source, owner)
    VALUES ('pv_model', 99, 'gmf', '{}', 'bigint', 'bigint', 0, 0, 0, 0, '{}', 0, 'cpu', 0, 'x', 'pv_bob')$$)).*;
SELECT (pg_temp.error_of($$INSERT INTO neumf_model_chunks VALUES ('pv_model', 1, 99, '\x00')$$)).*;
-- ... and he cannot move his own version, or its chunks, under her model's name.
SELECT version FROM neumf_train('pv_bobs', 'pv_small', epochs => 1, validation => false);
SELECT (pg_temp.error_of($$UPDATE neumf_model_versions SET model = 'pv_model', version = 2147483647 WHERE model = 'pv_bobs'$$)).*;
SELECT (pg_temp.error_of($$UPDATE neumf_model_chunks SET model = 'pv_model' WHERE model = 'pv_bobs'$$)).*;
SELECT neumf_drop('pv_bobs');
-- Serving and export need nothing more than SELECT.
SELECT neumf_score('pv_model', 1, 1) BETWEEN 0 AND 1 AS bob_serves, length(neumf_export('pv_model')) > 0 AS bob_exports;
RESET ROLE;
SELECT pg_temp.stored() = :'before' AS nothing_changed;
SET ROLE pv_reader;
SELECT count(*) AS reader_ranks FROM neumf_rank('pv_model', 1, ARRAY[1, 2, 3]::bigint[]);
SELECT (pg_temp.error_of($$SELECT neumf_drop('pv_model')$$)).*;
RESET ROLE;

-- dave, a member of alice, may retrain (the new version stays hers); carol, a member of
-- neumf_admin, may activate, prune and give the model to another role.
SET ROLE pv_dave;
SELECT version FROM neumf_train('pv_model', 'pv_small', epochs => 1, validation => false);
RESET ROLE;
SELECT version, owner, trained_by FROM neumf_models WHERE model = 'pv_model' ORDER BY version;
SET ROLE pv_carol;
SELECT neumf_activate('pv_model', 1);
SELECT neumf_prune('pv_model', 1);
UPDATE neumf_model_versions SET owner = 'pv_bob' WHERE model = 'pv_model';
RESET ROLE;
SELECT DISTINCT owner FROM neumf_models WHERE model = 'pv_model';
-- Now bob owns it and alice may not change it; an owner may not give it away himself.
-- (as a client sees it: the owner is named in the DETAIL)
SET ROLE pv_alice;
SELECT neumf_drop('pv_model');
RESET ROLE;
SET ROLE pv_bob;
SELECT (pg_temp.error_of($$UPDATE neumf_model_versions SET owner = 'pv_alice' WHERE model = 'pv_model'$$)).*;
SELECT neumf_drop('pv_model');
RESET ROLE;

-- The source is read with the caller's privileges: row-level security on it limits what a
-- role trains on, and without SELECT on it a role cannot train from it.
CREATE TABLE pv_rls AS SELECT * FROM pv_small;
ALTER TABLE pv_rls ENABLE ROW LEVEL SECURITY;
CREATE POLICY pv_first_half ON pv_rls FOR SELECT USING (user_id <= 50);
GRANT SELECT ON pv_rls TO pv_alice;
SELECT count(*) AS rows_alice_may_see FROM pv_rls WHERE user_id <= 50;
SET ROLE pv_alice;
SELECT users, rows_read FROM neumf_train('pv_rls_model', 'pv_rls', epochs => 1, validation => false);
RESET ROLE;
CREATE TABLE pv_secret AS SELECT * FROM pv_small;
SET ROLE pv_alice;
SELECT (pg_temp.error_of($$SELECT neumf_train('pv_secret_model', 'pv_secret', epochs => 1)$$)).*;
-- A hostile name reaches SQL only as a parameter: it is just a name.
SELECT version FROM neumf_train($$pv'; DROP TABLE pv_small; --$$, 'pv_small', epochs => 1, validation => false);
RESET ROLE;
SELECT count(*) AS pv_small_still_there FROM pv_small WHERE false;
SELECT owner FROM neumf_models WHERE model = $$pv'; DROP TABLE pv_small; --$$;
-- A job's source runs as its submitter and cannot leave settings behind for the job worker's
-- own queries, which run as superuser: a search_path set with session scope in the source
-- (here putting an operator of the submitter's first) is undone once the source is read.
CREATE SCHEMA pv_evil AUTHORIZATION pv_alice;
GRANT INSERT ON neumf_job_runs TO pv_alice;
GRANT USAGE ON SEQUENCE neumf_job_runs_job_id_seq TO pv_alice;
SET ROLE pv_alice;
CREATE TABLE pv_evil.calls (by_role name);
GRANT INSERT ON pv_evil.calls TO PUBLIC;
GRANT USAGE ON SCHEMA pv_evil TO PUBLIC;
CREATE FUNCTION pv_evil.eq(text, text) RETURNS boolean LANGUAGE plpgsql AS
    $$BEGIN INSERT INTO pv_evil.calls VALUES (current_user); RETURN pg_catalog.texteq($1, $2); END$$;
CREATE OPERATOR pv_evil.= (LEFTARG = text, RIGHTARG = text, FUNCTION = pv_evil.eq);
SELECT neumf_train_async('pv_job', $$SELECT user_id, item_id FROM pv_small
    WHERE pg_catalog.set_config('search_path', 'pv_evil, pg_catalog', false) IS NOT NULL$$,
    epochs => 1, validation => false) AS job \gset
RESET ROLE;
SELECT status FROM neumf_wait(:job, '120 s');
SELECT count(*) FILTER (WHERE by_role <> 'pv_alice') AS operator_calls_as_another_role FROM pv_evil.calls;
SELECT neumf_drop('pv_job');
DROP SCHEMA pv_evil CASCADE;
-- No function of the extension runs with its definer's rights.
SELECT count(*) AS security_definer_functions
FROM pg_proc p JOIN pg_depend d ON d.classid = 'pg_proc'::regclass AND d.objid = p.oid AND d.deptype = 'e'
JOIN pg_extension e ON e.oid = d.refobjid AND e.extname = 'neumf'
WHERE p.prosecdef;

SELECT neumf_drop('pv_rls_model'), neumf_drop($$pv'; DROP TABLE pv_small; --$$);
DROP TABLE pv_rls, pv_secret, pv_small;
DELETE FROM neumf_job_runs WHERE submitted_by::text LIKE 'pv\_%';
REVOKE ALL ON neumf_model_versions, neumf_model_chunks, neumf_job_runs FROM pv_alice, pv_bob, pv_carol, pv_dave, pv_reader;
REVOKE ALL ON SEQUENCE neumf_job_runs_job_id_seq FROM pv_alice;
DROP ROLE pv_alice, pv_bob, pv_carol, pv_dave, pv_reader;
