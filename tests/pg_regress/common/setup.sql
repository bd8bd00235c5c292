-- Included at the top of every test file (\i common/setup.sql): each file runs alone.
\set ECHO none
SET client_min_messages = warning;
CREATE EXTENSION IF NOT EXISTS neumf;
CREATE EXTENSION IF NOT EXISTS dblink;
-- error_of(sql): runs sql and returns the ERROR it raised as (sqlstate, message, hint), so a
-- golden file pins all three; 'no error' when it succeeded.
CREATE FUNCTION pg_temp.error_of(sql text, OUT sqlstate text, OUT message text, OUT hint text) AS $$
BEGIN
    EXECUTE sql;
    sqlstate := 'no error';
EXCEPTION WHEN OTHERS THEN
    GET STACKED DIAGNOSTICS error_of.sqlstate = RETURNED_SQLSTATE, message = MESSAGE_TEXT, hint = PG_EXCEPTION_HINT;
END $$ LANGUAGE plpgsql;
-- The stored state a failed call must leave unchanged: version and chunk counts.
CREATE FUNCTION pg_temp.stored() RETURNS text AS $$
    SELECT count(*) || ' versions, ' || (SELECT count(*) FROM neumf_model_chunks) || ' chunks' FROM neumf_model_versions
$$ LANGUAGE sql;
\pset null '∅'
\set ECHO all
