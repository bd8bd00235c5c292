-- neumf 0.1.0 → 0.2.0. Run by ALTER EXTENSION neumf UPDATE; keeps every stored model.
\echo Use "ALTER EXTENSION neumf UPDATE TO '0.2.0'" to load this file. \quit

-- Chunks belong to their version: deleting a version deletes its chunks. Chunks without a
-- version could never be read (0.1.0 left them only after a manual DELETE); they go first.
DELETE FROM neumf_model_chunks c
WHERE NOT EXISTS (SELECT 1 FROM neumf_model_versions v WHERE v.model = c.model AND v.version = c.version);
ALTER TABLE neumf_model_chunks
    ADD FOREIGN KEY (model, version) REFERENCES neumf_model_versions (model, version) ON DELETE CASCADE;

-- neumf_evaluate runs the caller's query, which may be volatile or parallel unsafe.
ALTER FUNCTION neumf_evaluate(text, text, integer) VOLATILE PARALLEL UNSAFE;

-- Retention by hand (neumf_train prunes after each training, keeping neumf.keep_versions).
CREATE FUNCTION "neumf_prune"(
	"model" TEXT,
	"keep" INT
) RETURNS bigint
STRICT VOLATILE PARALLEL UNSAFE
LANGUAGE c
AS 'MODULE_PATHNAME', 'neumf_prune_wrapper';

-- Every option of neumf_train defaults to NULL: the defaults live in the library
-- (TrainConfig::recommended), so a new default needs no new SQL.
CREATE OR REPLACE FUNCTION "neumf_train"(
	"model" TEXT,
	"source" TEXT,
	"architecture" TEXT DEFAULT NULL,
	"factors" INT DEFAULT NULL,
	"layers" INT[] DEFAULT NULL,
	"epochs" INT DEFAULT NULL,
	"batch_size" INT DEFAULT NULL,
	"learning_rate" double precision DEFAULT NULL,
	"negatives" INT DEFAULT NULL,
	"min_rating" double precision DEFAULT NULL,
	"seed" bigint DEFAULT NULL,
	"device" TEXT DEFAULT NULL,
	"activate" bool DEFAULT NULL,
	"sampling" TEXT DEFAULT NULL,
	"popularity_exponent" double precision DEFAULT NULL,
	"hard_pool" INT DEFAULT NULL,
	"hard_share" double precision DEFAULT NULL,
	"weight_decay" double precision DEFAULT NULL,
	"dropout" double precision DEFAULT NULL,
	"lr_schedule" TEXT DEFAULT NULL,
	"validation" bool DEFAULT NULL,
	"patience" INT DEFAULT NULL,
	"pretrain" bool DEFAULT NULL,
	"refit" bool DEFAULT NULL,
	"recency_weight" double precision DEFAULT NULL,
	"recency_half_life" double precision DEFAULT NULL,
	"mixed_precision" bool DEFAULT NULL
) RETURNS TABLE (
	"model_name" TEXT,
	"version" INT,
	"active" bool,
	"device_used" TEXT,
	"users" bigint,
	"items" bigint,
	"interactions" bigint,
	"rows_read" bigint,
	"skipped_null_ids" bigint,
	"skipped_below_min_rating" bigint,
	"duplicates" bigint,
	"epochs_run" INT,
	"best_epoch" INT,
	"validation_hr" double precision,
	"validation_ndcg" double precision,
	"final_loss" double precision,
	"train_seconds" double precision,
	"samples_per_second" double precision,
	"size_bytes" bigint
)
VOLATILE PARALLEL UNSAFE
LANGUAGE c
AS 'MODULE_PATHNAME', 'neumf_train_wrapper';

-- The view no longer sorts: a view's ORDER BY costs every query that filters or joins it.
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
       v.trained_by
FROM neumf_model_versions v;
