-- neumf 0.4.0 → 0.5.0: serving at production scale (README "Serving images").
--   Models are served from one shared, read-only serving image per server ($PGDATA/
--   neumf_images); nothing in the tables changes, and stored models are untouched.
--   neumf_recommend gains candidates => N (two stages for large catalogues); it is no longer
--   STRICT only so that candidates may be NULL (other NULL arguments still return no rows).
--   neumf_cache() gains a shared column. New: neumf_images(), neumf_item_vectors(model),
--   neumf_user_vector(model, user_id).

\echo Use "ALTER EXTENSION neumf UPDATE TO '0.5.0'" to load this file. \quit

DROP FUNCTION neumf_recommend(text, bigint, integer, boolean);
DROP FUNCTION neumf_recommend(text, text, integer, boolean);
DROP FUNCTION neumf_cache();

-- neumf::admin::neumf_cache
CREATE  FUNCTION "neumf_cache"() RETURNS TABLE (
	"model" TEXT,  /* String */
	"version" INT,  /* i32 */
	"bytes" bigint,  /* i64 */
	"shared" bool  /* bool */
)
STRICT VOLATILE PARALLEL UNSAFE 
LANGUAGE c /* Rust */
AS 'MODULE_PATHNAME', 'neumf_cache_attached_wrapper';

-- neumf::admin::neumf_images
CREATE  FUNCTION "neumf_images"() RETURNS TABLE (
	"model" TEXT,  /* Option < String > */
	"version" INT,  /* Option < i32 > */
	"bytes" bigint,  /* i64 */
	"verified" bool,  /* bool */
	"built_at" timestamp with time zone,  /* Option < pgrx :: datum :: TimestampWithTimeZone > */
	"path" TEXT  /* String */
)
STRICT VOLATILE PARALLEL UNSAFE
LANGUAGE c /* Rust */
AS 'MODULE_PATHNAME', 'neumf_images_wrapper';

-- neumf::serve::neumf_item_vectors
CREATE  FUNCTION "neumf_item_vectors"(
	"model" TEXT /* & str */
) RETURNS TABLE (
	"item_id" TEXT,  /* String */
	"vector" real[]  /* Vec < f32 > */
)
STRICT STABLE PARALLEL SAFE
LANGUAGE c /* Rust */
AS 'MODULE_PATHNAME', 'neumf_item_vectors_wrapper';

-- neumf::serve::neumf_recommend
CREATE  FUNCTION "neumf_recommend"(
	"model" TEXT, /* Option < & str > */
	"user_id" bigint, /* Option < i64 > */
	"k" INT DEFAULT 10, /* Option < i32 > */
	"exclude_seen" bool DEFAULT true, /* Option < bool > */
	"candidates" INT DEFAULT NULL /* Option < i32 > */
) RETURNS TABLE (
	"item_id" bigint,  /* i64 */
	"score" double precision,  /* f64 */
	"rank" INT,  /* i32 */
	"source" TEXT  /* & '_ str */
)
STABLE PARALLEL SAFE 
LANGUAGE c /* Rust */
AS 'MODULE_PATHNAME', 'neumf_recommend_items_wrapper';

-- neumf::serve::neumf_recommend
CREATE  FUNCTION "neumf_recommend"(
	"model" TEXT, /* Option < & str > */
	"user_id" TEXT, /* Option < & str > */
	"k" INT DEFAULT 10, /* Option < i32 > */
	"exclude_seen" bool DEFAULT true, /* Option < bool > */
	"candidates" INT DEFAULT NULL /* Option < i32 > */
) RETURNS TABLE (
	"item_id" TEXT,  /* String */
	"score" double precision,  /* f64 */
	"rank" INT,  /* i32 */
	"source" TEXT  /* & '_ str */
)
STABLE PARALLEL SAFE 
LANGUAGE c /* Rust */
AS 'MODULE_PATHNAME', 'neumf_recommend_items_text_wrapper';

-- neumf::serve::neumf_user_vector
CREATE  FUNCTION "neumf_user_vector"(
	"model" TEXT, /* & str */
	"user_id" bigint /* i64 */
) RETURNS real[] /* :: std :: option :: Option < Vec < f32 > > */
STRICT STABLE PARALLEL SAFE
LANGUAGE c /* Rust */
AS 'MODULE_PATHNAME', 'neumf_user_vector_wrapper';

-- neumf::serve::neumf_user_vector
CREATE  FUNCTION "neumf_user_vector"(
	"model" TEXT, /* & str */
	"user_id" TEXT /* & str */
) RETURNS real[] /* :: std :: option :: Option < Vec < f32 > > */
STRICT STABLE PARALLEL SAFE 
LANGUAGE c /* Rust */
AS 'MODULE_PATHNAME', 'neumf_user_vector_text_wrapper';

-- Row estimates for the planner (as in sql/finalize.sql).
ALTER FUNCTION neumf_recommend(text, bigint, integer, boolean, integer) ROWS 10;
ALTER FUNCTION neumf_recommend(text, text, integer, boolean, integer) ROWS 10;
ALTER FUNCTION neumf_item_vectors(text) ROWS 10000;
ALTER FUNCTION neumf_images() ROWS 10;
