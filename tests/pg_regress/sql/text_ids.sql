-- Text ids (text, varchar, uuid) train and serve through the text overloads.
\i common/setup.sql
CREATE TABLE tx_events AS
SELECT 'user-' || md5(user_id::text) AS user_id, md5(item_id::text)::uuid AS item_id, rating
FROM neumf_synthetic_interactions(300, 120, per_user => 15, clusters => 4);
SELECT users, items FROM neumf_train('tx_model', 'tx_events', epochs => 2);
SELECT user_id_type, item_id_type FROM neumf_models WHERE model = 'tx_model';
SELECT neumf_score('tx_model', 'user-' || md5('1'), md5('5')::uuid::text) BETWEEN 0 AND 1 AS probability,
       neumf_score('tx_model', 'user-' || md5('1'), 'nope') AS unknown_item;
SELECT count(*) FROM neumf_rank('tx_model', 'user-' || md5('1'), ARRAY[md5('5')::uuid::text, md5('6')::uuid::text, 'nope'], 5);
SELECT bool_and(item_id ~ '^[0-9a-f-]{36}$') AS stored_ids FROM neumf_recommend('tx_model', 'user-' || md5('1'), 5);
SELECT count(*), min(source) FROM neumf_recommend('tx_model', 'somebody-new', 5);
-- the bigint overloads on a text model: the ids simply are not there
SELECT neumf_score('tx_model', 1, 5) AS bigint_lookup;
SELECT * FROM pg_temp.error_of($$SELECT * FROM neumf_recommend('tx_model', 1, 3)$$);
