-- warm_start => true starts from the active version: known users and items keep their
-- embeddings, new ones are initialised, the other layers are copied. It needs the same
-- shape and id types; a clear ERROR otherwise.
\i common/setup.sql
CREATE TABLE ws_old AS SELECT * FROM neumf_synthetic_interactions(100, 50, per_user => 6, clusters => 3);
-- 20 new users and their interactions arrive.
CREATE TABLE ws_new AS SELECT * FROM ws_old
    UNION ALL SELECT user_id + 1000, item_id, rating, ts FROM ws_old WHERE user_id <= 20;
SELECT version FROM neumf_train('ws_model', 'ws_old', factors => 8, epochs => 2);
SELECT version, epochs_run <= 10 AS within_warm_budget
FROM neumf_train('ws_model', 'ws_new', factors => 8, warm_start => true);
SELECT metrics -> 'warm_start' AS warm_start FROM neumf_models WHERE model = 'ws_model' AND version = 2;
SELECT hyperparameters ->> 'pretrain' AS pretrain, (hyperparameters ->> 'epochs')::int AS epochs
FROM neumf_models WHERE model = 'ws_model' AND version = 2;
SELECT neumf_score('ws_model', 1005, 1) BETWEEN 0 AND 1 AS new_user_served;
-- As a job, too.
SELECT neumf_train_async('ws_model', 'ws_new', factors => 8, epochs => 1, warm_start => true) AS job \gset
SELECT status, version FROM neumf_wait(:job, '120 s');
-- Refusals, with nothing stored.
SELECT pg_temp.stored() AS before \gset
SELECT (pg_temp.error_of(statement)).*
FROM (VALUES
  ($$SELECT neumf_train('ws_model', 'ws_new', factors => 16, warm_start => true)$$),
  ($$SELECT neumf_train('ws_model', 'ws_new', factors => 8, architecture => 'gmf', warm_start => true)$$),
  ($$SELECT neumf_train('ws_model', 'SELECT ''u'' || user_id AS user_id, item_id FROM ws_new', factors => 8, warm_start => true)$$),
  ($$SELECT neumf_train('ws_nothing_yet', 'ws_new', warm_start => true)$$),
  ($$SELECT neumf_train('ws_model', 'ws_new', factors => 8, pretrain => true, warm_start => true)$$)
) AS cases(statement);
SELECT pg_temp.stored() = :'before' AS nothing_stored;
-- No active version (all deactivated by hand): refused the same way.
UPDATE neumf_model_versions SET active = false WHERE model = 'ws_model';
SELECT (pg_temp.error_of($$SELECT neumf_train('ws_model', 'ws_new', factors => 8, warm_start => true)$$)).*;
