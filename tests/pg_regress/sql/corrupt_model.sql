-- A damaged stored model is an ERROR (XX001), never a crash or wrong scores, and the session
-- goes on.
\i common/setup.sql
CREATE TABLE cm_small AS SELECT * FROM neumf_synthetic_interactions(100, 40, per_user => 5, clusters => 4);
SELECT version FROM neumf_train('cm_model', 'cm_small', epochs => 1);
UPDATE neumf_model_chunks SET data = overlay(data PLACING '\xffffffffffffff7f'::bytea FROM 1) WHERE model = 'cm_model';
SELECT * FROM pg_temp.error_of($$SELECT neumf_score('cm_model', 1, 1)$$);
UPDATE neumf_model_chunks SET data = substr(data, 1, 10) WHERE model = 'cm_model';
SELECT * FROM pg_temp.error_of($$SELECT neumf_score('cm_model', 1, 1)$$);
DELETE FROM neumf_model_chunks WHERE model = 'cm_model';
SELECT * FROM pg_temp.error_of($$SELECT neumf_score('cm_model', 1, 1)$$);
SELECT 41 + 1 AS session_goes_on;
