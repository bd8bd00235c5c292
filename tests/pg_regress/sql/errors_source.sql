-- A source that does not fit: missing table 42P01, missing column 42703, wrong column type
-- 42804, each with the remedy in the hint; nothing stored.
\i common/setup.sql
CREATE TABLE es_small AS SELECT * FROM neumf_synthetic_interactions(100, 40, per_user => 5, clusters => 4);
SELECT version FROM neumf_train('es_model', 'es_small', epochs => 1);
SELECT pg_temp.stored() AS before \gset
SELECT (pg_temp.error_of(format('SELECT neumf_train(%L, %L)', 'es', source))).*
FROM (VALUES
    ('no_such_table'), ('no_schema.es_small'), ('"ES_SMALL"'), (''), ('  ;  '),
    ('SELECT user_id FROM es_small'),
    ('SELECT user_id AS customer, item_id FROM es_small'),
    ('SELECT user_id::float8 AS user_id, item_id FROM es_small'),
    ('SELECT user_id, now() AS item_id FROM es_small'),
    ('SELECT user_id, item_id, ''x''::text AS rating FROM es_small'),
    ('SELECT user_id, item_id, true AS ts FROM es_small'),
    ('SELECT user_id, item_id FROM no_such_table'),
    ('SELECT user_id, item_id FROM es_small WHERE no_such_column')
) AS cases(source);
SELECT * FROM pg_temp.error_of($$SELECT neumf_train('es', 'SELECT user_id, item_id FROM es_small', min_rating => 4)$$);
-- neumf_evaluate's test source follows the same rules
SELECT * FROM pg_temp.error_of($$SELECT * FROM neumf_evaluate('es_model', 'no_such_table')$$);
SELECT * FROM pg_temp.error_of($$SELECT * FROM neumf_evaluate('es_model', 'SELECT 1 AS user_id')$$);
SELECT pg_temp.stored() = :'before' AS nothing_stored;
-- as a client sees it: message, detail and hint
SELECT neumf_train('es', 'SELECT user_id AS customer, item_id FROM es_small');
