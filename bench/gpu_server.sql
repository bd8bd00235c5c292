-- Run by bench/gpu_server.sh on a GPU machine: neumf_train on CUDA through the server, f32 and
-- bf16, a background job on CUDA, a cancel by statement_timeout mid-training, then serving.
-- psql variables: users, items, per_user, epochs, device.
\pset pager off
\timing on
CREATE EXTENSION neumf;

\echo == data: neumf_synthetic_interactions(:users, :items, per_user => :per_user)
CREATE TABLE ratings AS SELECT * FROM neumf_synthetic_interactions(:users, :items, per_user => :per_user);
SELECT count(*) AS interactions FROM ratings;

\echo == neumf_train, f32, device => :'device'
SELECT model_name, version, device_used, interactions, epochs_run,
       round(validation_hr::numeric, 4) AS val_hr10, round(validation_ndcg::numeric, 4) AS val_ndcg10,
       round(final_loss::numeric, 4) AS loss, round(train_seconds::numeric, 2) AS train_s,
       round(samples_per_second::numeric) AS samples_per_s
FROM neumf_train('gpu_f32', 'SELECT user_id, item_id, rating, ts FROM ratings', device => :'device',
                 epochs => :epochs, batch_size => 65536, pretrain => false, patience => 0, refit => false);

\echo == neumf_train, bf16 mixed precision, device => :'device'
SELECT model_name, version, device_used, interactions, epochs_run,
       round(validation_hr::numeric, 4) AS val_hr10, round(validation_ndcg::numeric, 4) AS val_ndcg10,
       round(final_loss::numeric, 4) AS loss, round(train_seconds::numeric, 2) AS train_s,
       round(samples_per_second::numeric) AS samples_per_s
FROM neumf_train('gpu_bf16', 'SELECT user_id, item_id, rating, ts FROM ratings', device => :'device',
                 epochs => :epochs, batch_size => 65536, pretrain => false, patience => 0, refit => false,
                 mixed_precision => true);

\echo == a background job on :'device' (its worker, not the postmaster, initialises CUDA)
SELECT neumf_train_async('gpu_job', 'SELECT user_id, item_id FROM ratings', device => :'device',
                         epochs => 1, batch_size => 65536, pretrain => false, validation => false) AS job \gset
SELECT status, version, error, result->>'device' AS device, result->>'train_seconds' AS train_s
FROM neumf_wait(:job, '10 min');

\echo == statement_timeout mid-training on :'device': ends within about a second, stores nothing
\set ON_ERROR_STOP 0
SET statement_timeout = '15s';
SELECT version FROM neumf_train('gpu_f32', 'SELECT user_id, item_id FROM ratings', device => :'device',
                                epochs => 100, batch_size => 65536, pretrain => false, validation => false);
RESET statement_timeout;
\set ON_ERROR_STOP 1
SELECT count(*) AS gpu_f32_versions, max(version) FILTER (WHERE active) AS active_version
FROM neumf_models WHERE model = 'gpu_f32';

\echo == serving the CUDA-trained models
SELECT count(*) FILTER (WHERE score > 0 AND score < 1) AS ranked_with_scores_in_0_1
FROM neumf_rank('gpu_f32', 1, ARRAY[1, 2, 3, 4, 5, 6, 7, 8, 9, 10]::bigint[], 10);
SELECT item_id, round(score::numeric, 4) AS score FROM neumf_recommend('gpu_bf16', 1, 5);
SELECT model, version, n_users, n_items, device FROM neumf_models ORDER BY model, version;
