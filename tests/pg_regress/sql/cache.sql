-- Each backend keeps decoded models up to neumf.model_cache_size, least recently used first
-- out; the model in use is always kept, and answers do not change with eviction.
\i common/setup.sql
CREATE TABLE ca_small AS SELECT * FROM neumf_synthetic_interactions(100, 40, per_user => 5, clusters => 4);
SELECT version FROM neumf_train('ca_a', 'ca_small', epochs => 1);
SELECT version FROM neumf_train('ca_b', 'ca_small', epochs => 1, seed => 5);
SELECT neumf_score('ca_a', 1, 5) AS a \gset
SELECT neumf_score('ca_b', 1, 5) AS b \gset
SELECT string_agg(model || ':' || version, ',' ORDER BY model) FROM neumf_cache() WHERE model LIKE 'ca\_%';
SET neumf.model_cache_size = 0;
SELECT neumf_score('ca_a', 1, 5) = :a AS a_unchanged;
SELECT string_agg(model, ',') FROM neumf_cache() WHERE model LIKE 'ca\_%';
SELECT neumf_score('ca_b', 1, 5) = :b AS b_unchanged;
SELECT string_agg(model, ',') FROM neumf_cache() WHERE model LIKE 'ca\_%';
RESET neumf.model_cache_size;
SELECT bytes > 0 AS sized FROM neumf_cache() WHERE model = 'ca_b';
