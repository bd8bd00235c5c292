-- Running out of memory while training is SQLSTATE 53200 with a hint, not a crash: a batch
-- whose first layer would need 128 GB is refused on the CPU before anything is allocated, with
-- the size it needs (on a GPU, the allocation failure itself gives the same error).
\i common/setup.sql
CREATE TABLE er_wide AS SELECT * FROM neumf_synthetic_interactions(500, 3000, per_user => 80);
SELECT count(DISTINCT (user_id, item_id)) * 201 >= 4000000 AS one_batch_fits_an_epoch FROM er_wide;
SELECT pg_temp.stored() AS before \gset
SELECT sqlstate, message LIKE '%out of memory before starting: this training needs at least % GB (%)%' AS names_the_size, hint
FROM pg_temp.error_of($$SELECT neumf_train('er_model', 'er_wide', architecture => 'mlp', layers => ARRAY[16384, 8],
                                          negatives => 200, batch_size => 4000000, epochs => 1, validation => false)$$);
SELECT pg_temp.stored() = :'before' AS nothing_stored;
