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
       v.trained_by
FROM neumf_model_versions v;

-- Every change to the version table (training, activation, drop, a restore, a manual UPDATE)
-- tells every backend's model cache at commit, through a relcache invalidation.
CREATE TRIGGER neumf_model_versions_changed
    AFTER INSERT OR UPDATE OR DELETE OR TRUNCATE ON neumf_model_versions
    FOR EACH STATEMENT EXECUTE FUNCTION neumf_model_versions_changed();

-- Row estimates for the planner (pgrx has no ROWS attribute).
ALTER FUNCTION neumf_rank(text, bigint, bigint[], integer) ROWS 10;
ALTER FUNCTION neumf_rank(text, text, text[], integer) ROWS 10;
ALTER FUNCTION neumf_recommend(text, bigint, integer, boolean) ROWS 10;
ALTER FUNCTION neumf_recommend(text, text, integer, boolean) ROWS 10;
