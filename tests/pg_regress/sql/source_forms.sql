-- The source may be a table (plain, schema-qualified, quoted) or any query, including one
-- that starts with WITH, a parenthesis or a comment. NULL ids and low ratings are skipped
-- and counted; repeated pairs collapse into one interaction.
\i common/setup.sql
CREATE TABLE sf_small AS SELECT * FROM neumf_synthetic_interactions(200, 60, per_user => 10, clusters => 4);
CREATE SCHEMA sf_schema;
CREATE TABLE sf_schema."Mixed Case" AS SELECT user_id, item_id FROM sf_small;
SELECT interactions FROM neumf_train('sf_table', 'sf_small', epochs => 1);
SELECT interactions FROM neumf_train('sf_qualified', 'sf_schema."Mixed Case"', epochs => 1);
SELECT interactions FROM neumf_train('sf_query', 'SELECT user_id, item_id FROM sf_small', epochs => 1);
SELECT interactions FROM neumf_train('sf_with', 'WITH s AS (SELECT user_id, item_id FROM sf_small) SELECT * FROM s', epochs => 1);
SELECT interactions FROM neumf_train('sf_comment', '-- the last quarter
SELECT user_id, item_id FROM sf_small', epochs => 1);
SELECT interactions FROM neumf_train('sf_block_comment', '/* all */ SELECT user_id, item_id FROM sf_small;', epochs => 1);
SELECT interactions FROM neumf_train('sf_paren', '(SELECT user_id, item_id FROM sf_small)', epochs => 1);
-- VALUES is a query too (its columns are column1, column2: the error names the missing one)
SELECT * FROM pg_temp.error_of($$SELECT neumf_train('sf_values', 'VALUES (1, 1)')$$);
-- NULL ids and low ratings
CREATE TABLE sf_nulls AS
SELECT user_id, item_id, rating FROM sf_small
UNION ALL SELECT NULL, 1, 5 UNION ALL SELECT 1, NULL, 5 UNION ALL SELECT NULL, NULL, 5;
SELECT rows_read, skipped_null_ids FROM neumf_train('sf_nulls', 'sf_nulls', epochs => 1);
SELECT skipped_below_min_rating = (SELECT count(*) FROM sf_small WHERE rating < 4) AS low_ratings_skipped
FROM neumf_train('sf_liked', 'sf_small', epochs => 1, min_rating => 4);
SELECT (rows_skipped->>'below_min_rating')::int = (SELECT count(*) FROM sf_small WHERE rating < 4) AS recorded
FROM neumf_models WHERE model = 'sf_liked';
-- duplicates
SELECT rows_read, interactions, duplicates
FROM neumf_train('sf_dups', 'SELECT user_id, item_id FROM sf_small UNION ALL SELECT user_id, item_id FROM sf_small', epochs => 1);
