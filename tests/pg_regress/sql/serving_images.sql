-- Serving images (issue 11): one read-only image per model version and server, built by the
-- first backend that serves it and mapped by every other; replaced on activation, removed on
-- drop; scores identical to a private decoded copy. Two-stage recommend and the vectors its
-- first stage uses.
\i common/setup.sql
CREATE TABLE si_data AS SELECT * FROM neumf_synthetic_interactions(300, 120, per_user => 8, clusters => 6);
SELECT version FROM neumf_train('si_model', 'si_data', epochs => 2);
-- The first call builds the image; this backend then serves from it.
SELECT neumf_score('si_model', 1, 5) AS score \gset
SELECT model, version, shared, bytes > 0 AS sized FROM neumf_cache() WHERE model = 'si_model';
SELECT model, version, verified, bytes > 0 AS sized, path ~ '/pgsql_tmp_neumf/[0-9]+/[0-9a-f]{24}\.v1\.[0-9a-f]+\.L1\.img$' AS named
FROM neumf_images() WHERE model = 'si_model';
-- A second backend (dblink) attaches the same image and scores the same.
SELECT dblink_connect('si_other', 'dbname=' || current_database() || ' host=127.0.0.1 port=' || current_setting('port') || ' user=postgres');
SELECT s = :score AS same_score FROM dblink('si_other', $$SELECT neumf_score('si_model', 1, 5)$$) AS t(s float8);
SELECT * FROM dblink('si_other', $$SELECT model, version, shared FROM neumf_cache() WHERE model = 'si_model'$$) AS t(model text, version int, shared bool);
SELECT count(*) AS images FROM neumf_images() WHERE model = 'si_model';
-- A private copy (neumf.serving_images = off) ranks the whole catalogue identically.
SELECT array_agg(item_id ORDER BY rank) AS ranked, array_agg(score ORDER BY rank) AS scores
FROM neumf_recommend('si_model', 7, 20) \gset
SELECT dblink_disconnect('si_other');
SELECT dblink_connect('si_private', 'dbname=' || current_database() || ' host=127.0.0.1 port=' || current_setting('port') || ' user=postgres options=''-c neumf.serving_images=off''');
SELECT ranked = :'ranked' AS same_items, scores = :'scores' AS same_scores
FROM dblink('si_private', $$SELECT array_agg(item_id ORDER BY rank), array_agg(score ORDER BY rank) FROM neumf_recommend('si_model', 7, 20)$$) AS t(ranked bigint[], scores float8[]);
SELECT * FROM dblink('si_private', $$SELECT model, shared FROM neumf_cache() WHERE model = 'si_model'$$) AS t(model text, shared bool);
SELECT dblink_disconnect('si_private');
-- A new version: activating it removes the old image at commit; the next call builds v2's.
SELECT version FROM neumf_train('si_model', 'si_data', epochs => 1, seed => 9, activate => false);
BEGIN;
SELECT neumf_activate('si_model', 2);
SELECT version FROM neumf_images() WHERE model = 'si_model';
ROLLBACK;
SELECT version FROM neumf_images() WHERE model = 'si_model';
SELECT neumf_activate('si_model', 2);
SELECT version FROM neumf_images() WHERE model = 'si_model';
SELECT neumf_score('si_model', 1, 5) <> :score AS new_weights;
SELECT version, verified FROM neumf_images() WHERE model = 'si_model';
SELECT model, version, shared FROM neumf_cache() WHERE model = 'si_model';
-- Two stages: with every item shortlisted it is the exact ranking; a short list keeps most
-- of the exact top 10 on this small catalogue.
SELECT array_agg(item_id ORDER BY rank) = (SELECT array_agg(item_id ORDER BY rank) FROM neumf_recommend('si_model', 7, 10))
       AS full_shortlist_is_exact
FROM neumf_recommend('si_model', 7, 10, candidates => 120);
SELECT count(*) AS shortlist_rows, min(source) FROM neumf_recommend('si_model', 7, 10, candidates => 30);
SELECT count(*) AS popular_for_unknown, min(source) FROM neumf_recommend('si_model', 999999, 5, candidates => 30);
SELECT sum(recall)::float / count(*) >= 0.8 AS recall_at_10_over_0_8
FROM (SELECT (SELECT count(*) FROM neumf_recommend('si_model', u, 10, candidates => 40) a
              JOIN neumf_recommend('si_model', u, 10) e USING (item_id)) / 10.0 AS recall
      FROM generate_series(1, 300) u) r;
SELECT * FROM pg_temp.error_of($$SELECT * FROM neumf_recommend('si_model', 7, 10, candidates => 0)$$);
SELECT version FROM neumf_train('si_mlp', 'si_data', architecture => 'mlp', epochs => 1);
SELECT * FROM pg_temp.error_of($$SELECT * FROM neumf_recommend('si_mlp', 7, 10, candidates => 50)$$);
SELECT * FROM pg_temp.error_of($$SELECT * FROM neumf_item_vectors('si_mlp')$$);
SELECT count(*) AS exact_mlp FROM neumf_recommend('si_mlp', 7, 10);
-- The first-stage vectors: factors + 1 wide; the user's dot each item's orders the shortlist.
SELECT array_length(neumf_user_vector('si_model', 7), 1) AS user_dims,
       (SELECT min(array_length(vector, 1)) FROM neumf_item_vectors('si_model')) AS item_dims,
       (SELECT count(*) FROM neumf_item_vectors('si_model')) AS items,
       neumf_user_vector('si_model', 999999) AS unknown_user;
WITH u AS (SELECT neumf_user_vector('si_model', 7) AS v),
     first_stage AS (
        SELECT i.item_id::bigint AS item_id, (SELECT sum(a::float8 * b) FROM unnest(u.v, i.vector) AS x(a, b)) AS dot
        FROM neumf_item_vectors('si_model') i, u
        WHERE i.item_id::bigint NOT IN (SELECT item_id FROM si_data WHERE user_id = 7)
        ORDER BY dot DESC LIMIT 30)
SELECT (SELECT array_agg(item_id ORDER BY item_id) FROM neumf_rank('si_model', 7, ARRAY(SELECT item_id FROM first_stage), 10))
     = (SELECT array_agg(item_id ORDER BY item_id) FROM neumf_recommend('si_model', 7, 10, candidates => 30))
       AS same_as_candidates_30;
-- A drop or activation rolled back in a subtransaction, or a rolled-back activation that was
-- served inside its transaction, leaves the active version's image in place.
BEGIN;
SAVEPOINT before_drop;
SELECT neumf_drop('si_model');
ROLLBACK TO SAVEPOINT before_drop;
COMMIT;
SELECT version FROM neumf_images() WHERE model = 'si_model';
DO $$ BEGIN PERFORM neumf_activate('si_model', 1); RAISE EXCEPTION 'undo'; EXCEPTION WHEN raise_exception THEN NULL; END $$;
SELECT version FROM neumf_images() WHERE model = 'si_model';
BEGIN;
SELECT neumf_activate('si_model', 1);
SELECT neumf_score('si_model', 1, 5) = :score AS serves_version_1_inside;
ROLLBACK;
SELECT version FROM neumf_images() WHERE model = 'si_model' ORDER BY version;
SELECT neumf_score('si_model', 1, 5) <> :score AS serves_version_2_again;
-- Dropping a model removes its images at commit.
SELECT neumf_drop('si_model');
SELECT count(*) AS images_left FROM neumf_images() WHERE model = 'si_model';
