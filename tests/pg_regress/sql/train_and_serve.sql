-- Train a small model, then score, rank and recommend with it (bigint ids).
\i common/setup.sql
CREATE TABLE ts_small AS SELECT * FROM neumf_synthetic_interactions(300, 120, per_user => 15, clusters => 4);
SELECT model_name, version, active, device_used, users, items,
       interactions = (SELECT count(DISTINCT (user_id, item_id)) FROM ts_small) AS all_pairs,
       epochs_run, final_loss < 0.7 AS learned, size_bytes > 0 AS stored
FROM neumf_train('ts_small', 'ts_small', epochs => 4, learning_rate => 0.005);
SELECT model, version, active, architecture, factors, layers, n_users, n_items FROM neumf_models WHERE model = 'ts_small';
-- score: a probability; NULL for an unknown user or item
SELECT neumf_score('ts_small', 1, 1) BETWEEN 0 AND 1 AS probability,
       neumf_score('ts_small', 999999, 1) AS unknown_user,
       neumf_score('ts_small', 1, 999999) AS unknown_item;
-- rank: the k best candidates, best first; unknown, NULL and repeated candidates skipped
SELECT string_agg(rank::text, ',' ORDER BY rank) FROM neumf_rank('ts_small', 1, ARRAY[1, 2, 3, 999999, NULL, 2, 5, 9], 4);
SELECT count(DISTINCT item_id) AS distinct_known FROM neumf_rank('ts_small', 1, ARRAY[1, 2, 3, 5, 9, 2, 2, 999999], 10);
SELECT bool_and(score >= next_score) AS descending
FROM (SELECT score, lead(score, 1, 0.0) OVER (ORDER BY rank) AS next_score FROM neumf_rank('ts_small', 1, ARRAY[1, 2, 3, 5, 9], 5)) s;
SELECT score = neumf_score('ts_small', 1, 5) AS same_as_score FROM neumf_rank('ts_small', 1, ARRAY[5], 1);
SELECT count(*) AS unknown_user_rows FROM neumf_rank('ts_small', 999999, ARRAY[1, 2], 10);
SELECT count(*) AS empty_candidates FROM neumf_rank('ts_small', 1, '{}'::bigint[], 10);
-- recommend: the whole catalogue, seen items excluded unless asked
SELECT count(*) AS default_k FROM neumf_recommend('ts_small', 1);
SELECT count(*) AS seen_returned FROM neumf_recommend('ts_small', 1, 50) r JOIN ts_small s ON s.user_id = 1 AND s.item_id = r.item_id;
SELECT count(*) > 0 AS seen_kept FROM neumf_recommend('ts_small', 1, 120, exclude_seen => false) r JOIN ts_small s ON s.user_id = 1 AND s.item_id = r.item_id;
SELECT max(rank) AS whole_catalogue FROM neumf_recommend('ts_small', 1, 500, false);
SELECT DISTINCT source FROM neumf_recommend('ts_small', 1);
-- an unknown user gets the most popular items, scored by the share of users who chose them
SELECT string_agg(source, ',') FROM neumf_recommend('ts_small', 999999, 3);
SELECT (SELECT score FROM neumf_recommend('ts_small', 999999, 1))
     = (SELECT count(DISTINCT user_id)::float8 / 300 FROM ts_small GROUP BY item_id ORDER BY 1 DESC LIMIT 1) AS most_popular_first;
-- in a query: rank each user's candidates with a lateral join
SELECT count(*) AS rows, count(DISTINCT u) AS users
FROM generate_series(1, 20) u, LATERAL neumf_rank('ts_small', u, ARRAY[1, 2, 3, 4, 5], 2);
