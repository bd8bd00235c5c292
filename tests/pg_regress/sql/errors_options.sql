-- Every bad option value: SQLSTATE 22023, one line quoting the value, nothing stored, and
-- the check runs before the source is read (the source here does not exist).
\i common/setup.sql
SELECT pg_temp.stored() AS before \gset
SELECT (pg_temp.error_of(format('SELECT neumf_train(%L, %L, %s)', 'eo', 'no_such_table', option))).*
FROM (VALUES
    ('factors => 0'), ('factors => -3'), ('factors => 100000'),
    ('epochs => 0'), ('epochs => 10000000'),
    ('layers => ''{}'''), ('layers => ARRAY[63, 32]'), ('layers => ARRAY[64, -1]'), ('layers => ARRAY[64, 100000]'),
    ('learning_rate => -1'), ('learning_rate => ''NaN'''), ('learning_rate => ''Infinity'''),
    ('negatives => 0'), ('batch_size => 0'), ('batch_size => 100000000'),
    ('architecture => ''bert'''), ('device => ''tpu'''),
    ('sampling => ''smart'''),
    ('sampling => ''popularity'', popularity_exponent => 0'),
    ('sampling => ''hard'', hard_pool => 1'), ('sampling => ''hard'', hard_pool => -1'),
    ('sampling => ''hard'', hard_share => 0'),
    ('architecture => ''gmf'', pretrain => true'),
    ('weight_decay => -0.1'), ('weight_decay => 1000, learning_rate => 0.01'),
    ('dropout => 1'), ('lr_schedule => ''step'''),
    ('recency_weight => -1'), ('recency_half_life => 0'),
    ('patience => -1'), ('min_rating => ''NaN''')
) AS cases(option);
-- checks that need the data: still 22023, still before any training
CREATE TABLE eo_small AS SELECT * FROM neumf_synthetic_interactions(100, 40, per_user => 5, clusters => 4);
SELECT * FROM pg_temp.error_of($$SELECT neumf_train('eo', 'eo_small', batch_size => 1000000)$$);
SELECT * FROM pg_temp.error_of($$SELECT neumf_train('eo', 'SELECT 1 AS user_id, 2 AS item_id', validation => true)$$);
SELECT * FROM pg_temp.error_of($$SELECT neumf_train('eo', 'SELECT user_id, item_id FROM eo_small WHERE false')$$);
SELECT pg_temp.stored() = :'before' AS nothing_stored;
-- how a client sees one (psql prints the hint under the message)
SELECT neumf_train('eo', 'eo_small', batch_size => 1000000);
