-- A model is one safetensors blob split into bytea chunks (neumf.chunk_size): many chunks
-- reassemble to the same model, and neumf_export returns the stored blob.
\i common/setup.sql
CREATE TABLE st_small AS SELECT * FROM neumf_synthetic_interactions(200, 60, per_user => 10, clusters => 4);
SELECT version FROM neumf_train('st_one', 'st_small', epochs => 1, seed => 3);
SET neumf.chunk_size = 8;
SELECT version FROM neumf_train('st_many', 'st_small', epochs => 1, seed => 3);
RESET neumf.chunk_size;
SELECT model, count(*) > 5 AS several_chunks, sum(length(data)) = (SELECT size_bytes FROM neumf_model_versions v WHERE v.model = c.model) AS chunks_add_up
FROM neumf_model_chunks c WHERE model IN ('st_one', 'st_many') GROUP BY model ORDER BY model;
-- the same training stored either way serves the same scores and exports the same bytes
SELECT neumf_score('st_one', 1, 5) = neumf_score('st_many', 1, 5) AS same_scores;
SELECT length(neumf_export('st_one')) = (SELECT size_bytes FROM neumf_models WHERE model = 'st_one') AS export_is_the_blob,
       substr(neumf_export('st_one'), 9, 1) = '{'::bytea AS safetensors_header,
       length(neumf_export('st_many', 1)) = length(neumf_export('st_one')) AS same_length;
