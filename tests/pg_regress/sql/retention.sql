-- Retention: after each successful training the oldest inactive versions beyond
-- neumf.keep_versions (default 5) are deleted, with their chunks; neumf_prune(model, keep)
-- does the same by hand. The active version is never deleted, nor the newest (so version numbers
-- are never reused).
\i common/setup.sql
SHOW neumf.keep_versions;
CREATE TABLE rt_small AS SELECT * FROM neumf_synthetic_interactions(60, 30, per_user => 5, clusters => 3);
SET neumf.keep_versions = 3;
SELECT version FROM neumf_train('rt_model', 'rt_small', epochs => 1, validation => false);
SELECT version FROM neumf_train('rt_model', 'rt_small', epochs => 1, validation => false);
SELECT version FROM neumf_train('rt_model', 'rt_small', epochs => 1, validation => false);
-- roll back to version 1, then train two more versions without activating them
SELECT neumf_activate('rt_model', 1);
SELECT version FROM neumf_train('rt_model', 'rt_small', epochs => 1, validation => false, activate => false);
SELECT version FROM neumf_train('rt_model', 'rt_small', epochs => 1, validation => false, activate => false);
-- the three newest remain, and the active version 1 with them
SELECT string_agg(version || ':' || active, ',' ORDER BY version) FROM neumf_models WHERE model = 'rt_model';
SELECT string_agg(DISTINCT version::text, ',' ORDER BY version::text) AS versions_with_chunks FROM neumf_model_chunks WHERE model = 'rt_model';
SELECT neumf_score('rt_model', 1, 1) BETWEEN 0 AND 1 AS active_serves;
-- by hand
SELECT neumf_prune('rt_model', 1) AS pruned;
SELECT string_agg(version || ':' || active, ',' ORDER BY version) FROM neumf_models WHERE model = 'rt_model';
SELECT neumf_prune('rt_model', 1) AS pruned_again;
-- 0 keeps every version
SET neumf.keep_versions = 0;
SELECT version FROM neumf_train('rt_model', 'rt_small', epochs => 1, validation => false);
SELECT version FROM neumf_train('rt_model', 'rt_small', epochs => 1, validation => false);
SELECT count(*) AS versions FROM neumf_models WHERE model = 'rt_model';
RESET neumf.keep_versions;
SELECT (pg_temp.error_of(statement)).*
FROM (VALUES ($$SELECT neumf_prune('rt_model', 0)$$), ($$SELECT neumf_prune('rt_model', -1)$$), ($$SELECT neumf_prune('rt_nope', 1)$$)) AS cases(statement);
