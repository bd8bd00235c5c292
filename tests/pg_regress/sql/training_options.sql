-- Training options reach the trainer and are recorded: validation and early stopping,
-- pretraining phases, refit, samplers, mixed precision, explicit architectures; every argument
-- of neumf_train can be passed by name.
\i common/setup.sql
CREATE TABLE to_small AS SELECT * FROM neumf_synthetic_interactions(200, 60, per_user => 10, clusters => 4);
SELECT validation_hr BETWEEN 0 AND 1 AS hr, best_epoch BETWEEN 1 AND epochs_run AS best_epoch
FROM neumf_train('to_validated', 'to_small', epochs => 4, pretrain => false, refit => false, patience => 0);
SELECT (metrics->'validation'->>'hr')::float8 BETWEEN 0 AND 1 AS sampled,
       (metrics->'validation'->>'full_recall')::float8 BETWEEN 0 AND 1 AS full_catalogue,
       jsonb_array_length(metrics->'epochs') AS epochs_recorded
FROM neumf_models WHERE model = 'to_validated';
SELECT validation_hr IS NULL AS no_validation FROM neumf_train('to_unvalidated', 'to_small', epochs => 1, validation => false, weight_decay => 0);
SELECT hyperparameters->>'weight_decay' AS weight_decay, hyperparameters->>'validation' AS validation FROM neumf_models WHERE model = 'to_unvalidated';
-- pretraining runs GMF, then MLP, then NeuMF from both
SELECT version FROM neumf_train('to_pretrained', 'to_small', epochs => 2, pretrain => true, refit => false);
SELECT string_agg(DISTINCT e->>'phase', ',' ORDER BY e->>'phase') FROM neumf_models, jsonb_array_elements(metrics->'epochs') e WHERE model = 'to_pretrained';
-- refit: the epochs chosen on the holdout, again on all the data
SELECT version FROM neumf_train('to_refitted', 'to_small', epochs => 3, pretrain => false, refit => true, patience => 0);
SELECT count(*) FILTER (WHERE e->>'phase' = 'neumf') AS selection_epochs,
       count(*) FILTER (WHERE e->>'phase' = 'neumf refit') = max((metrics->>'best_epoch')::int) AS refit_epochs_equal_best,
       bool_and((hyperparameters->>'refit')::bool) AS recorded
FROM neumf_models, jsonb_array_elements(metrics->'epochs') e WHERE model = 'to_refitted';
-- samplers and mixed precision
SELECT s AS sampling, (SELECT validation_hr > 0 FROM neumf_train('to_' || s, 'to_small', epochs => 2, sampling => s)) AS trains
FROM unnest(ARRAY['uniform', 'popularity', 'hard']) s;
SELECT hyperparameters->'sampling' FROM neumf_models WHERE model = 'to_hard';
SELECT validation_hr > 0 AS trains FROM neumf_train('to_mixed', 'to_small', epochs => 2, mixed_precision => true);
SELECT hyperparameters->>'precision' AS precision, neumf_score('to_mixed', 1, 1) BETWEEN 0 AND 1 AS serves FROM neumf_models WHERE model = 'to_mixed';
SELECT a AS architecture, (SELECT users FROM neumf_train('to_' || a, 'to_small', architecture => a, epochs => 1)) AS users
FROM unnest(ARRAY['gmf', 'mlp', 'neumf']) a;
SELECT model, architecture, factors, layers FROM neumf_models WHERE model IN ('to_gmf', 'to_mlp', 'to_neumf') ORDER BY model;
-- the stored hyper-parameters are the training configuration, defaults filled in
SELECT string_agg(k, ',' ORDER BY k) FROM neumf_models, jsonb_object_keys(hyperparameters) k WHERE model = 'to_gmf';
-- every argument by name
SELECT users, epochs_run, active
FROM neumf_train(model => 'to_every', source => 'to_small', architecture => 'neumf', factors => 4, layers => ARRAY[16, 8, 4],
                 epochs => 2, batch_size => 128, learning_rate => 0.002, negatives => 3, min_rating => 1, seed => 9,
                 device => 'cpu', activate => true, sampling => 'popularity', popularity_exponent => 0.5, hard_pool => 4,
                 hard_share => 0.25, weight_decay => 0.01, dropout => 0.1, lr_schedule => 'cosine', validation => true,
                 patience => 1, pretrain => false, refit => false, recency_weight => 1, recency_half_life => 3,
                 mixed_precision => false);
-- NULL for any option means its default
SELECT users FROM neumf_train('to_nulls', 'to_small', architecture => NULL, seed => NULL, device => NULL, activate => NULL,
                              epochs => 1, mixed_precision => NULL, popularity_exponent => NULL);
SELECT active FROM neumf_models WHERE model = 'to_nulls';
