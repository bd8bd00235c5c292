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
-- One flipped bit in the middle of the weights still parses as a model: the blob's checksum
-- is what turns it into an ERROR instead of wrong scores. Restored, the model serves again.
SELECT version FROM neumf_train('cm_flip', 'cm_small', epochs => 1);
CREATE TEMP TABLE cm_byte AS
  SELECT length(data) / 2 AS at, get_byte(data, length(data) / 2) AS was FROM neumf_model_chunks WHERE model = 'cm_flip';
UPDATE neumf_model_chunks SET data = set_byte(data, at, was # 1) FROM cm_byte WHERE model = 'cm_flip';
SELECT * FROM pg_temp.error_of($$SELECT neumf_score('cm_flip', 1, 1)$$);
UPDATE neumf_model_chunks SET data = set_byte(data, at, was) FROM cm_byte WHERE model = 'cm_flip';
SELECT neumf_score('cm_flip', 1, 1) BETWEEN 0 AND 1 AS serves_again;
SELECT 41 + 1 AS session_goes_on;
