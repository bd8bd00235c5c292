-- Model names are checked before any data is read (the source here does not exist): empty or
-- unprintable 42602, over 63 bytes 42622. Names are data, never SQL: quotes and semicolons
-- are just characters.
\i common/setup.sql
SELECT pg_temp.stored() AS before \gset
SELECT (pg_temp.error_of(format('SELECT neumf_train(%L, %L)', name, 'no_such_table'))).*
FROM (VALUES (''), (' padded'), ('padded '), (E'new\nline'), (repeat('n', 64)), (repeat('n', 100000)), (repeat('é', 32))) AS cases(name);
SELECT pg_temp.stored() = :'before' AS nothing_stored;
CREATE TABLE mn_small AS SELECT * FROM neumf_synthetic_interactions(100, 40, per_user => 5, clusters => 4);
SELECT model_name, version FROM neumf_train($$it's; DROP TABLE mn_small; --$$, 'mn_small', epochs => 1);
SELECT model_name, version FROM neumf_train('ünïcødé ☃', 'mn_small', epochs => 1);
SELECT model_name, version FROM neumf_train(repeat('n', 63), 'mn_small', epochs => 1);
SELECT neumf_score($$it's; DROP TABLE mn_small; --$$, 1, 1) BETWEEN 0 AND 1 AS serves, (SELECT count(*) > 0 FROM mn_small) AS table_still_there;
SELECT model FROM neumf_models WHERE model IN ($$it's; DROP TABLE mn_small; --$$, 'ünïcødé ☃', repeat('n', 63)) ORDER BY model;
