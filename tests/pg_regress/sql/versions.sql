-- Each training adds a version; activation is atomic and reaches every backend's cached model
-- at commit; dropping a model removes its versions and (by cascade) their chunks.
\i common/setup.sql
CREATE TABLE vs_small AS SELECT * FROM neumf_synthetic_interactions(200, 60, per_user => 10, clusters => 4);
SELECT version FROM neumf_train('vs_model', 'vs_small', epochs => 2);
SELECT neumf_score('vs_model', 1, 5) AS v1_score \gset
SELECT version FROM neumf_train('vs_model', 'vs_small', epochs => 2, seed => 7);
SELECT neumf_score('vs_model', 1, 5) AS v2_score \gset
SELECT :v1_score <> :v2_score AS new_version_serves_new_scores;
SELECT string_agg(version || ':' || active, ',' ORDER BY version) FROM neumf_models WHERE model = 'vs_model';
-- this session has version 2 cached; another session activates version 1
SELECT neumf_score('vs_model', 1, 5) = :v2_score AS cached_v2;
SELECT v FROM dblink('dbname=' || current_database() || ' host=127.0.0.1 port=' || current_setting('port'),
                     $$SELECT neumf_activate('vs_model', 1)$$) AS t(v int);
SELECT neumf_score('vs_model', 1, 5) = :v1_score AS sees_v1_at_next_statement;
SELECT string_agg(version || ':' || active, ',' ORDER BY version) FROM neumf_models WHERE model = 'vs_model';
-- activation in a transaction that rolls back changes nothing
BEGIN;
SELECT neumf_activate('vs_model', 2);
ROLLBACK;
SELECT string_agg(version || ':' || active, ',' ORDER BY version) FROM neumf_models WHERE model = 'vs_model';
-- deleting a version deletes its chunks
DELETE FROM neumf_model_versions WHERE model = 'vs_model' AND version = 2;
SELECT count(DISTINCT version) AS versions_with_chunks FROM neumf_model_chunks WHERE model = 'vs_model';
SELECT neumf_drop('vs_model') AS versions_dropped;
SELECT count(*) AS chunks_left FROM neumf_model_chunks WHERE model = 'vs_model';
SELECT * FROM pg_temp.error_of($$SELECT neumf_score('vs_model', 1, 5)$$);
-- a chunk needs its version
SELECT * FROM pg_temp.error_of($$INSERT INTO neumf_model_chunks VALUES ('vs_orphan', 1, 0, '\x00')$$);
