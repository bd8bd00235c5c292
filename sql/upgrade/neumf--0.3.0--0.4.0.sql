-- neumf 0.3.0 → 0.4.0: who may change a model (README "Privileges").
--   neumf_model_versions gains owner (existing models: whoever trained their oldest stored
--   version); the role neumf_admin (created if missing); neumf_may_change(); the owner trigger;
--   row-level security on both model tables; neumf_models shows owner;
--   neumf_synthetic_interactions raises 22023 (was P0001) for bad arguments. No function's
--   signature changes; models, their scores and the job queue are untouched.

\echo Use "ALTER EXTENSION neumf UPDATE TO '0.4.0'" to load this file. \quit

ALTER TABLE neumf_model_versions ADD COLUMN owner name NOT NULL DEFAULT current_user;
UPDATE neumf_model_versions v SET owner = first.trained_by
FROM (SELECT DISTINCT ON (model) model, trained_by FROM neumf_model_versions ORDER BY model, version) AS first
WHERE v.model = first.model;

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

CREATE OR REPLACE VIEW neumf_models AS
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

CREATE OR REPLACE FUNCTION neumf_synthetic_interactions(
    users      integer,
    items      integer,
    per_user   integer DEFAULT 20,
    clusters   integer DEFAULT 8,
    in_cluster float8  DEFAULT 0.8,
    skew       float8  DEFAULT 2.0,
    seed       float8  DEFAULT 0.42
) RETURNS TABLE (user_id bigint, item_id bigint, rating integer, ts timestamptz)
LANGUAGE plpgsql VOLATILE AS $$
BEGIN
    IF users < 1 OR items < clusters OR per_user < 1 OR clusters < 1 THEN
        RAISE EXCEPTION 'neumf_synthetic_interactions: need users >= 1, per_user >= 1, clusters >= 1 and items >= clusters'
            USING ERRCODE = '22023',
                  HINT = pg_catalog.format('Got users %s, items %s, per_user %s, clusters %s.', users, items, per_user, clusters);
    END IF;
    IF in_cluster < 0 OR in_cluster > 1 OR skew < 1 THEN
        RAISE EXCEPTION 'neumf_synthetic_interactions: in_cluster must be in [0, 1] and skew >= 1'
            USING ERRCODE = '22023', HINT = pg_catalog.format('Got in_cluster %s, skew %s.', in_cluster, skew);
    END IF;
    PERFORM setseed(seed);
    RETURN QUERY
    WITH activity AS (
        SELECT u, greatest(1, round(per_user * (0.25 + 1.5 * random())))::int AS n
        FROM generate_series(0, users - 1) AS u
    ), draws AS (
        SELECT a.u, k, random() < in_cluster AS own, random() AS r
        FROM activity a, generate_series(1, a.n) AS k
    )
    SELECT d.u::bigint + 1,
           CASE WHEN d.own
                THEN (floor(power(d.r, skew) * (items / clusters))::bigint * clusters + d.u % clusters) % items + 1
                ELSE floor(power(d.r, skew) * items)::bigint + 1
           END,
           CASE WHEN d.own THEN 4 + (random() < 0.5)::int ELSE 1 + floor(random() * 5)::int END,
           timestamptz '2020-01-01' + d.k * interval '1 hour' + d.u * interval '1 second'
    FROM draws d;
END
$$;
