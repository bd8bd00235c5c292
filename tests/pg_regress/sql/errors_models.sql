-- Serving and managing models: unknown model 42704, bad k 22023, no active version 55000,
-- an unknown version 22023, a NULL model or source 22004; each with a hint.
\i common/setup.sql
CREATE TABLE em_small AS SELECT * FROM neumf_synthetic_interactions(100, 40, per_user => 5, clusters => 4);
SELECT version, active FROM neumf_train('em_model', 'em_small', epochs => 1, activate => false);
SELECT (pg_temp.error_of(statement)).*
FROM (VALUES
    ($$SELECT neumf_score('em_nope', 1, 1)$$),
    ($$SELECT neumf_export('em_nope')$$),
    ($$SELECT neumf_activate('em_nope', 1)$$),
    ($$SELECT neumf_drop('em_nope')$$),
    ($$SELECT * FROM neumf_evaluate('em_nope', 'em_small')$$),
    ($$SELECT neumf_score('em_model', 1, 1)$$),
    ($$SELECT * FROM neumf_recommend('em_model', 1)$$),
    ($$SELECT neumf_activate('em_model', 99)$$),
    ($$SELECT neumf_export('em_model', 99)$$),
    ($$SELECT neumf_train(NULL, 'em_small')$$),
    ($$SELECT neumf_train('em_model', NULL)$$),
    ($$SELECT neumf_export(NULL)$$)
) AS cases(statement);
SELECT neumf_activate('em_model', 1);
SELECT (pg_temp.error_of(statement)).*
FROM (VALUES
    ($$SELECT * FROM neumf_rank('em_model', 1, ARRAY[1], 0)$$),
    ($$SELECT * FROM neumf_recommend('em_model', 1, -1)$$),
    ($$SELECT * FROM neumf_recommend('em_model', 'u', 0)$$),
    ($$SELECT * FROM neumf_evaluate('em_model', 'em_small', k => 0)$$)
) AS cases(statement);
SELECT neumf_drop('em_nope', if_exists => true) AS dropped_nothing;
-- a typo in a neumf setting is refused rather than kept as a placeholder
SELECT * FROM pg_temp.error_of($$SET neumf.model_cache_sise = '10MB'$$);
