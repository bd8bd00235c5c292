-- Background jobs (neumf_train_async): queued in the caller's transaction, run by a background
-- worker after COMMIT, watched in neumf_jobs, awaited with neumf_wait, stopped with
-- neumf_cancel. What needs signals, restarts or several sessions is in tests/e2e/jobs.sh.
\i common/setup.sql
CREATE TABLE jb_small AS SELECT * FROM neumf_synthetic_interactions(80, 40, per_user => 6, clusters => 3);
-- A rolled-back submission leaves no job and starts nothing.
BEGIN;
SELECT neumf_train_async('jb_rolled_back', 'jb_small', epochs => 1) > 0 AS queued;
SELECT status FROM neumf_jobs WHERE model = 'jb_rolled_back';
ROLLBACK;
SELECT count(*) AS jobs FROM neumf_job_runs WHERE model = 'jb_rolled_back';
-- Waiting inside the submitting transaction could never end: refused.
BEGIN;
SELECT neumf_train_async('jb_same_xact', 'jb_small', epochs => 1) AS same_xact \gset
-- (job ids depend on what ran before: shown as N)
SELECT sqlstate, regexp_replace(message, 'job \d+', 'job N') AS message, hint
FROM pg_temp.error_of(format('SELECT neumf_wait(%s)', :same_xact));
ROLLBACK;
-- Submitted, committed, awaited: the job trains as the submitter and activates its version.
SELECT neumf_train_async('jb_model', 'jb_small', epochs => 2, validation => false) AS job \gset
SELECT status, synchronous, version, error, submitted_by = current_user AS mine,
       finished_at >= started_at AND started_at >= queued_at AS ordered_times,
       (result ->> 'epochs_run')::int AS epochs_run, result ? 'samples_per_second' AS has_rate
FROM neumf_wait(:job, '120 s');
SELECT model, version, active, trained_by = current_user AS trained_by_submitter FROM neumf_models WHERE model = 'jb_model';
SELECT options ->> 'epochs' AS epochs_option, settings ? 'search_path' AS settings_kept FROM neumf_job_runs WHERE job_id = :job;
-- A job that fails records why; the model's versions are untouched.
SELECT pg_temp.stored() AS before \gset
SELECT neumf_train_async('jb_model', 'jb_missing_table', epochs => 1) AS bad \gset
SELECT status, error FROM neumf_wait(:bad, '120 s');
SELECT pg_temp.stored() = :'before' AS nothing_stored;
-- Options are checked at submission: nothing is queued.
SELECT (pg_temp.error_of($$SELECT neumf_train_async('jb_model', 'jb_small', epochs => 0)$$)).*;
SELECT (pg_temp.error_of($$SELECT neumf_train_async('', 'jb_small')$$)).*;
SELECT (pg_temp.error_of($$SELECT neumf_train_async(NULL, 'jb_small')$$)).*;
SELECT (pg_temp.error_of($$SELECT neumf_train_async('jb_model', ' ')$$)).*;
SELECT count(*) AS jobs_after_refusals FROM neumf_job_runs WHERE model = 'jb_model';
-- A synchronous training leaves a history row too (a failed one leaves none).
SELECT version FROM neumf_train('jb_model', 'jb_small', epochs => 1, validation => false);
SELECT status, synchronous, version, pid = pg_backend_pid() AS this_backend
FROM neumf_jobs WHERE model = 'jb_model' ORDER BY job_id DESC LIMIT 1;
-- Cancelling: an ended job is left alone; unknown jobs and other roles' jobs are refused.
SELECT neumf_cancel(:job) AS cancelled_ended_job;
SELECT (pg_temp.error_of('SELECT neumf_cancel(-1)')).*;
SELECT (pg_temp.error_of('SELECT neumf_wait(-1)')).*;
SELECT (pg_temp.error_of(format($$SELECT neumf_wait(%s, '-1 s')$$, :job))).*;
CREATE ROLE jb_other;
GRANT SELECT, UPDATE ON neumf_job_runs TO jb_other;
GRANT SELECT ON neumf_jobs TO jb_other;
BEGIN;
SELECT neumf_train_async('jb_queued', 'jb_small', epochs => 1) AS queued \gset
SET LOCAL ROLE jb_other;
SELECT sqlstate, regexp_replace(message, 'job \d+', 'job N') AS message, hint
FROM pg_temp.error_of(format('SELECT neumf_cancel(%s)', :queued));
-- nor through the table
SELECT sqlstate, regexp_replace(message, 'job \d+', 'job N') AS message, hint
FROM pg_temp.error_of(format($$UPDATE neumf_job_runs SET status = 'cancelled' WHERE job_id = %s$$, :queued));
RESET ROLE;
-- A job's definition cannot change, even for its submitter.
SELECT sqlstate, regexp_replace(message, 'job \d+', 'job N') AS message, hint
FROM pg_temp.error_of(format($$UPDATE neumf_job_runs SET source = 'jb_other_table' WHERE job_id = %s$$, :queued));
SELECT neumf_cancel(:queued) AS cancelled_by_submitter;
SELECT status, error FROM neumf_jobs WHERE job_id = :queued;
COMMIT;
SELECT status FROM neumf_wait(:queued, '10 s');
REVOKE ALL ON neumf_job_runs FROM jb_other;
REVOKE ALL ON neumf_jobs FROM jb_other;
DROP ROLE jb_other;
-- Nothing is left running.
SELECT count(*) AS unfinished FROM neumf_jobs WHERE status IN ('queued', 'running') AND model LIKE 'jb%';
-- A job runs as the role that submitted it: with the grants the README names, an ordinary role
-- trains; the source is read with that role's privileges.
CREATE ROLE jb_trainer;
GRANT SELECT, INSERT, UPDATE, DELETE ON neumf_model_versions, neumf_model_chunks TO jb_trainer;
GRANT INSERT ON neumf_job_runs TO jb_trainer;
GRANT USAGE ON SEQUENCE neumf_job_runs_job_id_seq TO jb_trainer;
GRANT SELECT ON neumf_jobs TO jb_trainer;
GRANT SELECT ON jb_small TO jb_trainer;
CREATE TABLE jb_secret AS SELECT * FROM jb_small;
-- A job runs as whoever inserted it: a forged submitter is replaced.
BEGIN;
SET LOCAL ROLE jb_trainer;
INSERT INTO neumf_job_runs (model, source, options, status, submitted_by)
VALUES ('jb_forged', 'jb_small', '{"epochs": 1}', 'queued', 'postgres');
RESET ROLE;
SELECT submitted_by FROM neumf_job_runs WHERE model = 'jb_forged';
ROLLBACK;
SET ROLE jb_trainer;
SELECT neumf_train_async('jb_by_trainer', 'jb_small', epochs => 1, validation => false) AS by_trainer \gset
SELECT neumf_train_async('jb_by_trainer', 'jb_secret', epochs => 1, validation => false) AS no_access \gset
RESET ROLE;
SELECT status, submitted_by FROM neumf_wait(:by_trainer, '120 s');
SELECT trained_by FROM neumf_models WHERE model = 'jb_by_trainer';
SELECT status, error FROM neumf_wait(:no_access, '120 s');
DROP TABLE jb_secret;
SELECT neumf_drop('jb_by_trainer');
REVOKE ALL ON neumf_model_versions, neumf_model_chunks, neumf_job_runs, neumf_jobs, jb_small FROM jb_trainer;
REVOKE ALL ON SEQUENCE neumf_job_runs_job_id_seq FROM jb_trainer;
DELETE FROM neumf_job_runs WHERE submitted_by = 'jb_trainer';
DROP ROLE jb_trainer;
