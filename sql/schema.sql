-- neumf storage: one row per trained model version, the weights in bytea chunks beside it.
-- Both tables are extension configuration tables, so pg_dump carries their rows.

CREATE TABLE neumf_model_versions (
    model            text        NOT NULL CHECK (model <> ''),
    version          integer     NOT NULL CHECK (version > 0),
    active           boolean     NOT NULL DEFAULT false,
    architecture     text        NOT NULL,
    hyperparameters  jsonb       NOT NULL,
    user_id_type     text        NOT NULL,
    item_id_type     text        NOT NULL,
    n_users          bigint      NOT NULL,
    n_items          bigint      NOT NULL,
    n_interactions   bigint      NOT NULL,
    rows_read        bigint      NOT NULL,
    rows_skipped     jsonb       NOT NULL,
    metrics          jsonb       NOT NULL DEFAULT '{}',
    final_loss       float8,
    train_seconds    float8      NOT NULL,
    device           text        NOT NULL,
    size_bytes       bigint      NOT NULL,
    source           text        NOT NULL,
    trained_at       timestamptz NOT NULL DEFAULT now(),
    trained_by       name        NOT NULL DEFAULT current_user,
    -- The role that first trained the model (see "Who may change a model" below).
    owner            name        NOT NULL DEFAULT current_user,
    PRIMARY KEY (model, version)
);
-- At most one active version per model; serving reads that one.
CREATE UNIQUE INDEX neumf_model_versions_one_active ON neumf_model_versions (model) WHERE active;

CREATE TABLE neumf_model_chunks (
    model     text    NOT NULL,
    version   integer NOT NULL,
    chunk_no  integer NOT NULL CHECK (chunk_no >= 0),
    data      bytea   NOT NULL,
    PRIMARY KEY (model, version, chunk_no),
    -- Chunks belong to their version: deleting the version deletes them, none is orphaned.
    FOREIGN KEY (model, version) REFERENCES neumf_model_versions (model, version) ON DELETE CASCADE
);
-- Float weights barely compress; skip pglz and store out of line directly.
ALTER TABLE neumf_model_chunks ALTER COLUMN data SET STORAGE EXTERNAL;

SELECT pg_catalog.pg_extension_config_dump('neumf_model_versions', '');
SELECT pg_catalog.pg_extension_config_dump('neumf_model_chunks', '');

-- Who may change a model. Its owner is the role that first trained it; the owner, members of
-- the owner role and members of neumf_admin may retrain, activate, prune or drop it. Serving,
-- listing and export need only SELECT. The functions check first and raise 42501 naming the
-- owner (src/storage.rs); row-level security holds the same rule for direct DML on the model
-- tables (superusers and the tables' owner bypass it, as everywhere in PostgreSQL).
DO $$
BEGIN
    IF NOT EXISTS (SELECT FROM pg_catalog.pg_roles WHERE rolname = 'neumf_admin') THEN
        CREATE ROLE neumf_admin NOLOGIN;
    END IF;
END
$$;
-- Whether the current role may change the models `owner` owns; a dropped owner role leaves
-- its models to neumf_admin.
CREATE FUNCTION neumf_may_change(owner name) RETURNS boolean
LANGUAGE sql STABLE PARALLEL SAFE
RETURN EXISTS (SELECT FROM pg_catalog.pg_roles r
               WHERE r.rolname IN (owner, 'neumf_admin') AND pg_catalog.pg_has_role(r.oid, 'MEMBER'));
-- A new version belongs to its model's owner, and a new model to whoever inserts its first
-- version, unless a member of neumf_admin (or a restore, run as superuser) names the owner.
-- Only neumf_admin members may give a model to another role.
CREATE FUNCTION neumf_model_versions_owner() RETURNS trigger
LANGUAGE plpgsql
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    admin boolean := EXISTS (SELECT FROM pg_catalog.pg_roles r
                             WHERE r.rolname = 'neumf_admin' AND pg_catalog.pg_has_role(r.oid, 'MEMBER'));
    current_owner name;
BEGIN
    IF TG_OP = 'INSERT' THEN
        -- Two first versions of a new name inserted at once must not get two owners.
        PERFORM pg_advisory_xact_lock(hashtextextended('neumf/owner/' || NEW.model, 0));
        SELECT v.owner INTO current_owner FROM @extschema@.neumf_model_versions v
        WHERE v.model = NEW.model ORDER BY v.version LIMIT 1;
        IF current_owner IS NOT NULL THEN
            NEW.owner := current_owner;
        ELSIF NEW.owner IS NULL OR NOT admin THEN
            NEW.owner := current_user;
        END IF;
    ELSIF (NEW.model, NEW.version) IS DISTINCT FROM (OLD.model, OLD.version) AND NOT admin THEN
        -- Moving a version under another name would put it in a model its owner does not own.
        RAISE EXCEPTION 'permission denied to rename or renumber version % of neumf model "%"', OLD.version, OLD.model
            USING ERRCODE = '42501', HINT = 'Train under the other name instead; only members of neumf_admin may move versions.';
    ELSIF NEW.owner IS DISTINCT FROM OLD.owner AND NOT admin THEN
        RAISE EXCEPTION 'permission denied to change the owner of neumf model "%"', OLD.model
            USING ERRCODE = '42501', HINT = 'Only members of neumf_admin may give a model to another role.';
    END IF;
    RETURN NEW;
END
$$;
CREATE TRIGGER neumf_model_versions_owner
    BEFORE INSERT OR UPDATE ON neumf_model_versions
    FOR EACH ROW EXECUTE FUNCTION neumf_model_versions_owner();
ALTER TABLE neumf_model_versions ENABLE ROW LEVEL SECURITY;
CREATE POLICY neumf_read ON neumf_model_versions FOR SELECT USING (true);
CREATE POLICY neumf_insert ON neumf_model_versions FOR INSERT
    WITH CHECK (@extschema@.neumf_may_change(owner));
CREATE POLICY neumf_update ON neumf_model_versions FOR UPDATE
    USING (@extschema@.neumf_may_change(owner)) WITH CHECK (@extschema@.neumf_may_change(owner));
CREATE POLICY neumf_delete ON neumf_model_versions FOR DELETE
    USING (@extschema@.neumf_may_change(owner));
-- A chunk may be written or deleted by whoever may change its version.
ALTER TABLE neumf_model_chunks ENABLE ROW LEVEL SECURITY;
CREATE POLICY neumf_read ON neumf_model_chunks FOR SELECT USING (true);
CREATE POLICY neumf_insert ON neumf_model_chunks FOR INSERT
    WITH CHECK (EXISTS (SELECT FROM @extschema@.neumf_model_versions v
                        WHERE v.model = neumf_model_chunks.model AND v.version = neumf_model_chunks.version
                          AND @extschema@.neumf_may_change(v.owner)));
CREATE POLICY neumf_update ON neumf_model_chunks FOR UPDATE
    USING (EXISTS (SELECT FROM @extschema@.neumf_model_versions v
                   WHERE v.model = neumf_model_chunks.model AND v.version = neumf_model_chunks.version
                     AND @extschema@.neumf_may_change(v.owner)));
CREATE POLICY neumf_delete ON neumf_model_chunks FOR DELETE
    USING (EXISTS (SELECT FROM @extschema@.neumf_model_versions v
                   WHERE v.model = neumf_model_chunks.model AND v.version = neumf_model_chunks.version
                     AND @extschema@.neumf_may_change(v.owner)));

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
