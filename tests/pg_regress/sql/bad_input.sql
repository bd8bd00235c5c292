-- Bad input to every SQL function (issue 13): NULL in each argument, values at and past their
-- limits, odd sources. Each case either works as documented (STRICT functions return NULL for
-- NULL arguments) or is one ERROR with its SQLSTATE and one line; the session survives every
-- case and nothing is half-written. The errors of each option value are in errors_options,
-- of sources in errors_source, of names in model_names; here is the rest.
\i common/setup.sql
-- outcome(sql): 'ok: <first value>' (NULL shown as ∅), or the ERROR's SQLSTATE and message.
CREATE FUNCTION pg_temp.outcome(sql text) RETURNS text AS $$
DECLARE
    first text;
    state text;
    msg text;
BEGIN
    EXECUTE sql INTO first;
    RETURN 'ok: ' || coalesce(left(first, 60), '∅');
EXCEPTION WHEN OTHERS THEN
    GET STACKED DIAGNOSTICS state = RETURNED_SQLSTATE, msg = MESSAGE_TEXT;
    RETURN state || ': ' || msg;
END $$ LANGUAGE plpgsql;
CREATE TABLE bi_small AS SELECT * FROM neumf_synthetic_interactions(100, 40, per_user => 5, clusters => 4);
SELECT version FROM neumf_train('bi_model', 'bi_small', epochs => 1);
SELECT version FROM neumf_train('bi_text', 'SELECT ''u'' || user_id AS user_id, ''i'' || item_id AS item_id FROM bi_small', epochs => 1);
SELECT pg_temp.stored() AS before \gset
CREATE TEMP TABLE cases (n serial, statement text);
INSERT INTO cases (statement) VALUES
    -- NULL in each argument
    ($$SELECT neumf_score(NULL, 1, 1)$$), ($$SELECT neumf_score('bi_model', NULL, 1)$$),
    ($$SELECT neumf_score('bi_model', 1, NULL)$$), ($$SELECT neumf_score('bi_text', NULL::text, 'i1')$$),
    ($$SELECT count(*) FROM neumf_rank(NULL, 1, ARRAY[1])$$), ($$SELECT count(*) FROM neumf_rank('bi_model', NULL, ARRAY[1])$$),
    ($$SELECT count(*) FROM neumf_rank('bi_model', 1, NULL::bigint[])$$), ($$SELECT count(*) FROM neumf_rank('bi_model', 1, ARRAY[1], NULL)$$),
    ($$SELECT count(*) FROM neumf_recommend(NULL, 1)$$), ($$SELECT count(*) FROM neumf_recommend('bi_model', NULL::bigint)$$),
    ($$SELECT count(*) FROM neumf_recommend('bi_model', 1, NULL)$$), ($$SELECT count(*) FROM neumf_recommend('bi_model', 1, 5, NULL)$$),
    ($$SELECT count(*) FROM neumf_evaluate(NULL, 'bi_small')$$), ($$SELECT count(*) FROM neumf_evaluate('bi_model', NULL)$$),
    ($$SELECT count(*) FROM neumf_evaluate('bi_model', 'bi_small', NULL)$$),
    ($$SELECT neumf_activate(NULL, 1)$$), ($$SELECT neumf_activate('bi_model', NULL)$$),
    ($$SELECT neumf_prune(NULL, 1)$$), ($$SELECT neumf_prune('bi_model', NULL)$$),
    ($$SELECT neumf_drop(NULL)$$), ($$SELECT neumf_drop('bi_model', NULL)$$),
    ($$SELECT length(neumf_export(NULL))$$), ($$SELECT length(neumf_export('bi_model', NULL))$$),
    ($$SELECT neumf_cancel(NULL)$$), ($$SELECT status FROM neumf_wait(NULL)$$), ($$SELECT status FROM neumf_wait((SELECT max(job_id) FROM neumf_job_runs), NULL)$$),
    ($$SELECT neumf_train(NULL, 'bi_small')$$), ($$SELECT neumf_train('bi_new', NULL)$$),
    ($$SELECT neumf_train_async(NULL, 'bi_small')$$), ($$SELECT neumf_train_async('bi_new', NULL)$$),
    ($$SELECT count(*) FROM neumf_synthetic_interactions(NULL, 10)$$),
    -- ids at the limits of bigint, and text ids far from any stored one
    ($$SELECT neumf_score('bi_model', 9223372036854775807, -9223372036854775808)$$),
    ($$SELECT count(*) FROM neumf_recommend('bi_model', -9223372036854775808, 3)$$),
    ($$SELECT neumf_score('bi_text', repeat('u', 100000), E'i\t1')$$),
    ($$SELECT neumf_score('bi_model', 'u1', 'i1')$$),
    ($$SELECT neumf_score('bi_text', 1, 1)$$),
    -- candidate arrays: empty, with NULLs, duplicates, one million, and k at its limits
    ($$SELECT count(*) FROM neumf_rank('bi_model', 1, '{}'::bigint[])$$),
    ($$SELECT count(*) FROM neumf_rank('bi_model', 1, ARRAY[NULL, 1, NULL]::bigint[])$$),
    ($$SELECT count(*) FROM neumf_rank('bi_model', 1, ARRAY[1, 1, 1, 2])$$),
    ($$SELECT count(*) FROM neumf_rank('bi_model', 1, ARRAY(SELECT generate_series(1, 1000000))::bigint[], 5)$$),
    ($$SELECT count(*) FROM neumf_rank('bi_model', 1, ARRAY[[1, 2], [3, 4]]::bigint[])$$),
    ($$SELECT count(*) FROM neumf_rank('bi_model', 1, ARRAY[1, 2], -1)$$),
    ($$SELECT count(*) FROM neumf_rank('bi_model', 1, ARRAY[1, 2], 2147483647)$$),
    ($$SELECT count(*) FROM neumf_recommend('bi_model', 1, 0)$$),
    ($$SELECT count(*) FROM neumf_recommend('bi_model', 1, 2147483647)$$),
    ($$SELECT count(*) FROM neumf_evaluate('bi_model', 'bi_small', -5)$$),
    ($$SELECT count(*) FROM neumf_evaluate('bi_model', 'bi_small', 2147483647)$$),
    -- versions and counts out of range
    ($$SELECT neumf_activate('bi_model', 0)$$), ($$SELECT neumf_activate('bi_model', -1)$$),
    ($$SELECT neumf_activate('bi_model', 2147483647)$$),
    ($$SELECT neumf_prune('bi_model', 0)$$), ($$SELECT neumf_prune('bi_model', -2147483648)$$),
    ($$SELECT length(neumf_export('bi_model', -1))$$),
    ($$SELECT neumf_cancel(-1)$$), ($$SELECT neumf_cancel(9223372036854775807)$$),
    ($$SELECT status FROM neumf_wait(-1, '1 s')$$), ($$SELECT status FROM neumf_wait(1, '-1 s')$$),
    ($$SELECT count(*) FROM neumf_synthetic_interactions(0, 10)$$),
    ($$SELECT count(*) FROM neumf_synthetic_interactions(10, 2, clusters => 3)$$),
    -- sources: empty, one row, all duplicates, NULL ids only, one that fails mid-stream
    ($$SELECT neumf_train('bi_new', 'SELECT user_id, item_id FROM bi_small WHERE false')$$),
    ($$SELECT neumf_train('bi_new', 'SELECT 1::bigint AS user_id, 2::bigint AS item_id')$$),
    ($$SELECT neumf_train('bi_new', 'SELECT 1::bigint AS user_id, 2::bigint AS item_id FROM generate_series(1, 1000)')$$),
    ($$SELECT neumf_train('bi_new', 'SELECT NULL::bigint AS user_id, item_id FROM bi_small')$$),
    ($$SELECT neumf_train('bi_new', 'SELECT user_id, item_id / (user_id - 50) AS item_id FROM bi_small')$$),
    ($$SELECT neumf_train('bi_new', 'SELECT user_id, item_id FROM bi_small; DROP TABLE bi_small')$$),
    ($$SELECT count(*) FROM neumf_evaluate('bi_model', 'SELECT user_id, item_id, ARRAY[]::bigint[] AS negatives FROM bi_small')$$),
    ($$SELECT count(*) FROM neumf_evaluate('bi_model', 'SELECT user_id, item_id, NULL::bigint[] AS negatives FROM bi_small')$$);
SELECT n, pg_temp.outcome(statement) AS outcome FROM cases ORDER BY n;
SELECT count(*) AS cases_tried FROM cases;
SELECT pg_temp.stored() = :'before' AS nothing_half_written, (SELECT count(*) FROM bi_small) > 0 AS source_intact;
-- Sources whose ids sit at the limits train and serve: bigint extremes, 10,000-character and
-- control-character text ids.
SELECT users, items FROM neumf_train('bi_limits', $$SELECT u AS user_id, i AS item_id FROM
    (VALUES (9223372036854775807, -9223372036854775808), (-9223372036854775808, 9223372036854775807), (0, 0),
            (9223372036854775807, 0), (0, -9223372036854775808)) AS t(u, i)$$, epochs => 1, batch_size => 5, validation => false);
SELECT neumf_score('bi_limits', 9223372036854775807, -9223372036854775808) BETWEEN 0 AND 1 AS extremes_serve;
SELECT users, items FROM neumf_train('bi_long', $$SELECT repeat('u', 10000) || user_id AS user_id, E'\t\x01' || item_id AS item_id FROM bi_small$$,
                                     epochs => 1, validation => false);
SELECT neumf_score('bi_long', repeat('u', 10000) || '1', E'\t\x01' || '1') BETWEEN 0 AND 1 AS long_ids_serve;
SELECT neumf_drop('bi_limits') + neumf_drop('bi_long') AS dropped;
SELECT 41 + 1 AS session_goes_on;
