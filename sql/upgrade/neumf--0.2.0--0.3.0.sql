-- neumf 0.2.0 → 0.3.0: training as background jobs, and warm start.
--   neumf_job_runs (table, with its guard trigger), neumf_jobs (view), neumf_job_progress(),
--   neumf_train_async(), neumf_cancel(), neumf_wait() over _neumf_wait(); neumf_train gains
--   warm_start. Nothing existing changes but neumf_train's signature; models are untouched.

\echo Use "ALTER EXTENSION neumf UPDATE TO '0.3.0'" to load this file. \quit

-- Training jobs: one row per neumf_train_async call, and one per successful synchronous
-- neumf_train (for the record). Not dumped: a restored queue would rerun old jobs.
CREATE TABLE neumf_job_runs (
    job_id        bigserial   PRIMARY KEY,
    model         text        NOT NULL,
    source        text        NOT NULL,
    -- neumf_train's arguments as given (NULL ones omitted) and the submitter's settings.
    options       jsonb       NOT NULL,
    settings      jsonb       NOT NULL DEFAULT '{}',
    synchronous   boolean     NOT NULL DEFAULT false,
    status        text        NOT NULL
                  CHECK (status IN ('queued', 'running', 'succeeded', 'failed', 'cancelled')),
    submitted_by  name        NOT NULL DEFAULT current_user,
    queued_at     timestamptz NOT NULL DEFAULT now(),
    started_at    timestamptz,
    finished_at   timestamptz,
    pid           integer,
    version       integer,
    result        jsonb,
    error         text
);
CREATE INDEX neumf_job_runs_pending ON neumf_job_runs (job_id) WHERE status IN ('queued', 'running');

-- Who submitted a job is who inserted it, and a job's definition never changes afterwards: the
-- job runs as that role (src/worker.rs), so neither may be forged through the table. Only
-- members of the submitting role may change (cancel) or delete a job.
CREATE FUNCTION neumf_job_runs_guard() RETURNS trigger
LANGUAGE plpgsql
AS $$
BEGIN
    IF TG_OP = 'INSERT' THEN
        NEW.submitted_by := current_user;
        RETURN NEW;
    END IF;
    IF NOT pg_catalog.pg_has_role(current_user, OLD.submitted_by, 'MEMBER') THEN
        RAISE EXCEPTION 'permission denied for neumf job %', OLD.job_id
            USING ERRCODE = '42501',
                  HINT = pg_catalog.format('Only members of role "%s", which submitted it, may change or delete it.', OLD.submitted_by);
    END IF;
    IF TG_OP = 'UPDATE'
       AND (NEW.job_id, NEW.model, NEW.source, NEW.options, NEW.settings, NEW.synchronous, NEW.submitted_by, NEW.queued_at)
           IS DISTINCT FROM
           (OLD.job_id, OLD.model, OLD.source, OLD.options, OLD.settings, OLD.synchronous, OLD.submitted_by, OLD.queued_at) THEN
        RAISE EXCEPTION 'the definition of neumf job % cannot be changed', OLD.job_id
            USING ERRCODE = '42501', HINT = 'Cancel it with neumf_cancel() and submit a new one.';
    END IF;
    RETURN CASE TG_OP WHEN 'DELETE' THEN OLD ELSE NEW END;
END
$$;
CREATE TRIGGER neumf_job_runs_guard
    BEFORE INSERT OR UPDATE OR DELETE ON neumf_job_runs
    FOR EACH ROW EXECUTE FUNCTION neumf_job_runs_guard();

CREATE  FUNCTION "neumf_job_progress"() RETURNS TABLE (
	"pid" INT,  /* i32 */
	"job_id" bigint,  /* Option < i64 > */
	"model" TEXT,  /* String */
	"submitted_by" TEXT,  /* String */
	"phase" TEXT,  /* Option < String > */
	"epoch" INT,  /* Option < i32 > */
	"epochs" INT,  /* Option < i32 > */
	"epoch_progress" double precision,  /* Option < f64 > */
	"loss" double precision,  /* Option < f64 > */
	"validation_hr" double precision,  /* Option < f64 > */
	"validation_ndcg" double precision,  /* Option < f64 > */
	"samples_per_second" double precision,  /* Option < f64 > */
	"eta_seconds" double precision,  /* Option < f64 > */
	"started_at" double precision,  /* f64 */
	"updated_at" double precision  /* f64 */
)
STRICT VOLATILE PARALLEL UNSAFE
LANGUAGE c /* Rust */
AS 'MODULE_PATHNAME', 'neumf_job_progress_wrapper';

CREATE  FUNCTION "neumf_train_async"(
	"model" TEXT, /* Option < & str > */
	"source" TEXT, /* Option < & str > */
	"architecture" TEXT DEFAULT NULL, /* Option < & str > */
	"factors" INT DEFAULT NULL, /* Option < i32 > */
	"layers" INT[] DEFAULT NULL, /* :: std :: option :: Option < Vec < i32 > > */
	"epochs" INT DEFAULT NULL, /* Option < i32 > */
	"batch_size" INT DEFAULT NULL, /* Option < i32 > */
	"learning_rate" double precision DEFAULT NULL, /* Option < f64 > */
	"negatives" INT DEFAULT NULL, /* Option < i32 > */
	"min_rating" double precision DEFAULT NULL, /* Option < f64 > */
	"seed" bigint DEFAULT NULL, /* Option < i64 > */
	"device" TEXT DEFAULT NULL, /* Option < & str > */
	"activate" bool DEFAULT NULL, /* Option < bool > */
	"sampling" TEXT DEFAULT NULL, /* Option < & str > */
	"popularity_exponent" double precision DEFAULT NULL, /* Option < f64 > */
	"hard_pool" INT DEFAULT NULL, /* Option < i32 > */
	"hard_share" double precision DEFAULT NULL, /* Option < f64 > */
	"weight_decay" double precision DEFAULT NULL, /* Option < f64 > */
	"dropout" double precision DEFAULT NULL, /* Option < f64 > */
	"lr_schedule" TEXT DEFAULT NULL, /* Option < & str > */
	"validation" bool DEFAULT NULL, /* Option < bool > */
	"patience" INT DEFAULT NULL, /* Option < i32 > */
	"pretrain" bool DEFAULT NULL, /* Option < bool > */
	"refit" bool DEFAULT NULL, /* Option < bool > */
	"recency_weight" double precision DEFAULT NULL, /* Option < f64 > */
	"recency_half_life" double precision DEFAULT NULL, /* Option < f64 > */
	"mixed_precision" bool DEFAULT NULL, /* Option < bool > */
	"warm_start" bool DEFAULT NULL /* Option < bool > */
) RETURNS bigint /* i64 */
VOLATILE PARALLEL UNSAFE
LANGUAGE c /* Rust */
AS 'MODULE_PATHNAME', 'neumf_train_async_wrapper';

CREATE  FUNCTION "neumf_cancel"(
	"job_id" bigint /* i64 */
) RETURNS bool /* bool */
STRICT VOLATILE PARALLEL UNSAFE
LANGUAGE c /* Rust */
AS 'MODULE_PATHNAME', 'neumf_cancel_wrapper';

CREATE  FUNCTION "_neumf_wait"(
	"job_id" bigint, /* Option < i64 > */
	"timeout_seconds" double precision /* Option < f64 > */
) RETURNS bool /* bool */
VOLATILE PARALLEL UNSAFE 
LANGUAGE c /* Rust */
AS 'MODULE_PATHNAME', 'wait_for_job_wrapper';

-- A new argument cannot be added in place (it would create a second overload).
DROP FUNCTION neumf_train(text, text, text, integer, integer[], integer, integer, double precision, integer, double precision, bigint, text, boolean, text, double precision, integer, double precision, double precision, double precision, text, boolean, integer, boolean, boolean, double precision, double precision, boolean);
CREATE  FUNCTION "neumf_train"(
	"model" TEXT, /* Option < & str > */
	"source" TEXT, /* Option < & str > */
	"architecture" TEXT DEFAULT NULL, /* Option < & str > */
	"factors" INT DEFAULT NULL, /* Option < i32 > */
	"layers" INT[] DEFAULT NULL, /* :: std :: option :: Option < Vec < i32 > > */
	"epochs" INT DEFAULT NULL, /* Option < i32 > */
	"batch_size" INT DEFAULT NULL, /* Option < i32 > */
	"learning_rate" double precision DEFAULT NULL, /* Option < f64 > */
	"negatives" INT DEFAULT NULL, /* Option < i32 > */
	"min_rating" double precision DEFAULT NULL, /* Option < f64 > */
	"seed" bigint DEFAULT NULL, /* Option < i64 > */
	"device" TEXT DEFAULT NULL, /* Option < & str > */
	"activate" bool DEFAULT NULL, /* Option < bool > */
	"sampling" TEXT DEFAULT NULL, /* Option < & str > */
	"popularity_exponent" double precision DEFAULT NULL, /* Option < f64 > */
	"hard_pool" INT DEFAULT NULL, /* Option < i32 > */
	"hard_share" double precision DEFAULT NULL, /* Option < f64 > */
	"weight_decay" double precision DEFAULT NULL, /* Option < f64 > */
	"dropout" double precision DEFAULT NULL, /* Option < f64 > */
	"lr_schedule" TEXT DEFAULT NULL, /* Option < & str > */
	"validation" bool DEFAULT NULL, /* Option < bool > */
	"patience" INT DEFAULT NULL, /* Option < i32 > */
	"pretrain" bool DEFAULT NULL, /* Option < bool > */
	"refit" bool DEFAULT NULL, /* Option < bool > */
	"recency_weight" double precision DEFAULT NULL, /* Option < f64 > */
	"recency_half_life" double precision DEFAULT NULL, /* Option < f64 > */
	"mixed_precision" bool DEFAULT NULL, /* Option < bool > */
	"warm_start" bool DEFAULT NULL /* Option < bool > */
) RETURNS TABLE (
	"model_name" TEXT,  /* String */
	"version" INT,  /* i32 */
	"active" bool,  /* bool */
	"device_used" TEXT,  /* String */
	"users" bigint,  /* i64 */
	"items" bigint,  /* i64 */
	"interactions" bigint,  /* i64 */
	"rows_read" bigint,  /* i64 */
	"skipped_null_ids" bigint,  /* i64 */
	"skipped_below_min_rating" bigint,  /* i64 */
	"duplicates" bigint,  /* i64 */
	"epochs_run" INT,  /* i32 */
	"best_epoch" INT,  /* i32 */
	"validation_hr" double precision,  /* Option < f64 > */
	"validation_ndcg" double precision,  /* Option < f64 > */
	"final_loss" double precision,  /* f64 */
	"train_seconds" double precision,  /* f64 */
	"samples_per_second" double precision,  /* f64 */
	"size_bytes" bigint  /* i64 */
)
VOLATILE PARALLEL UNSAFE 
LANGUAGE c /* Rust */
AS 'MODULE_PATHNAME', 'neumf_train_0_3_wrapper';

-- Every training of this database: the job table joined with the live progress of what is
-- running (a synchronous neumf_train shows with job_id NULL until its transaction commits).
-- A job recorded as running whose worker is gone shows as failed.
CREATE VIEW neumf_jobs AS
SELECT COALESCE(j.job_id, p.job_id)                                         AS job_id,
       COALESCE(j.model, p.model)                                           AS model,
       CASE WHEN j.job_id IS NULL THEN 'running'
            WHEN j.status = 'running' AND p.pid IS NULL THEN 'failed'
            ELSE j.status END                                               AS status,
       COALESCE(j.synchronous, true)                                        AS synchronous,
       COALESCE(p.phase, CASE WHEN j.status = 'succeeded' THEN 'done' END)  AS phase,
       p.epoch,
       p.epochs,
       p.epoch_progress,
       COALESCE(p.loss, (j.result ->> 'final_loss')::float8)                AS loss,
       COALESCE(p.validation_hr, (j.result ->> 'validation_hr')::float8)    AS validation_hr,
       COALESCE(p.validation_ndcg, (j.result ->> 'validation_ndcg')::float8) AS validation_ndcg,
       COALESCE(p.samples_per_second, (j.result ->> 'samples_per_second')::float8) AS samples_per_second,
       make_interval(secs => p.eta_seconds)                                 AS eta,
       COALESCE(j.queued_at, to_timestamp(p.started_at))                    AS queued_at,
       COALESCE(j.started_at, to_timestamp(p.started_at))                   AS started_at,
       j.finished_at,
       to_timestamp(p.updated_at)                                           AS updated_at,
       j.version,
       CASE WHEN j.status = 'running' AND p.pid IS NULL
            THEN 'the job''s worker exited before finishing (terminated, crashed, or the server restarted); submit it again'
            ELSE j.error END                                                AS error,
       COALESCE(p.pid, j.pid)                                               AS pid,
       COALESCE(j.submitted_by, p.submitted_by::name)                       AS submitted_by,
       j.source,
       j.options,
       j.result
FROM neumf_job_runs j
FULL JOIN neumf_job_progress() p ON p.job_id = j.job_id;

-- Blocks until the job ends (or timeout passes) and returns its row from neumf_jobs.
CREATE FUNCTION neumf_wait(job_id bigint, timeout interval DEFAULT NULL)
RETURNS neumf_jobs
LANGUAGE plpgsql VOLATILE PARALLEL UNSAFE
AS $$
DECLARE
    found @extschema@.neumf_jobs;
BEGIN
    -- Each statement of a VOLATILE plpgsql function takes a fresh snapshot: the SELECT sees
    -- what the job wrote while _neumf_wait waited.
    PERFORM @extschema@._neumf_wait(neumf_wait.job_id, extract(epoch FROM timeout)::float8);
    SELECT * INTO found FROM @extschema@.neumf_jobs j WHERE j.job_id = neumf_wait.job_id;
    RETURN found;
END
$$;
