-- Writes are transactional: a training rolled back (whole or to a savepoint) leaves nothing
-- behind.
\i common/setup.sql
CREATE TABLE rb_small AS SELECT * FROM neumf_synthetic_interactions(100, 40, per_user => 5, clusters => 4);
SELECT pg_temp.stored() AS before \gset
BEGIN;
SELECT version FROM neumf_train('rb_model', 'rb_small', epochs => 1);
SELECT count(*) AS visible_inside FROM neumf_models WHERE model = 'rb_model';
ROLLBACK;
SELECT pg_temp.stored() = :'before' AS nothing_stored;
SELECT * FROM pg_temp.error_of($$SELECT neumf_score('rb_model', 1, 1)$$);
-- a savepoint rolled back keeps the rest of the transaction
BEGIN;
SELECT version FROM neumf_train('rb_kept', 'rb_small', epochs => 1);
SAVEPOINT s;
SELECT version FROM neumf_train('rb_undone', 'rb_small', epochs => 1);
ROLLBACK TO SAVEPOINT s;
COMMIT;
SELECT string_agg(model, ',' ORDER BY model) FROM neumf_models WHERE model LIKE 'rb\_%';
