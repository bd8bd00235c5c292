# Sourced by the benchmarks and the e2e tests: load_ml100k DIR loads the MovieLens-100K
# leave-one-out split from DIR (../shared/data/ml-100k, never copied into the repo) through psql
# (connection from the PG* variables) into
#   ml_train (user_id, item_id, rating, ts)            the training interactions
#   ml_test  (user_id, item_id, negatives int8[])      each user's held-out item + 99 fixed negatives
load_ml100k() {
  psql -X -q -v ON_ERROR_STOP=1 <<SQL
DROP TABLE IF EXISTS ml_train, ml_test_raw, ml_test;
CREATE TABLE ml_train (user_id int, item_id int, rating int, ts bigint);
\copy ml_train FROM '$1/loo.train.tsv'
CREATE TEMP TABLE ml_test_raw (user_id int, item_id int, negatives text);
\copy ml_test_raw FROM '$1/loo.test.negative'
CREATE TABLE ml_test AS SELECT user_id, item_id, string_to_array(negatives, ',')::int8[] AS negatives FROM ml_test_raw;
SQL
}
