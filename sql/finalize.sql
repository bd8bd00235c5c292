-- Objects that need the Rust functions to exist first.

CREATE VIEW neumf_models AS
SELECT v.model,
       v.version,
       v.active,
       v.architecture,
       (v.hyperparameters ->> 'factors')::int          AS factors,
       ARRAY(SELECT jsonb_array_elements_text(v.hyperparameters -> 'layers'))::int[] AS layers,
       v.hyperparameters,
       v.user_id_type,
       v.item_id_type,
       v.n_users,
       v.n_items,
       v.n_interactions,
       v.rows_read,
       v.rows_skipped,
       v.metrics,
       v.final_loss,
       v.train_seconds,
       v.device,
       v.size_bytes,
       pg_size_pretty(v.size_bytes)                     AS size,
       v.source,
       v.trained_at,
       v.trained_by,
       v.owner
FROM neumf_model_versions v;

-- Every change to the version table (training, activation, drop, a restore, a manual UPDATE)
-- tells every backend's model cache at commit, through a relcache invalidation.
CREATE TRIGGER neumf_model_versions_changed
    AFTER INSERT OR UPDATE OR DELETE OR TRUNCATE ON neumf_model_versions
    FOR EACH STATEMENT EXECUTE FUNCTION neumf_model_versions_changed();

-- Row estimates for the planner (pgrx has no ROWS attribute).
ALTER FUNCTION neumf_rank(text, bigint, bigint[], integer) ROWS 10;
ALTER FUNCTION neumf_rank(text, text, text[], integer) ROWS 10;
ALTER FUNCTION neumf_recommend(text, bigint, integer, boolean, integer) ROWS 10;
ALTER FUNCTION neumf_recommend(text, text, integer, boolean, integer) ROWS 10;
ALTER FUNCTION neumf_item_vectors(text) ROWS 10000;
ALTER FUNCTION neumf_images() ROWS 10;

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
