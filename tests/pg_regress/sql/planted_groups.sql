-- Quality on planted structure: 4 taste groups; a trained model puts most of a user's top 10
-- in the user's own group (random: 25%).
\i common/setup.sql
CREATE TABLE pg_small AS SELECT * FROM neumf_synthetic_interactions(300, 120, per_user => 15, clusters => 4);
SELECT version FROM neumf_train('pg_planted', 'pg_small', epochs => 12, batch_size => 256, learning_rate => 0.005);
SELECT avg(((r.item_id - 1) % 4 = (u - 1) % 4)::int) >= 0.6 AS groups_recovered
FROM generate_series(1, 300) u, LATERAL neumf_recommend('pg_planted', u, 10) r;
