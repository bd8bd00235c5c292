//! Operating models: `neumf_activate`, `neumf_prune`, `neumf_drop`, and the trigger that keeps every
//! backend's cache current. (`neumf_models` is a view, in sql/finalize.sql.)

use crate::errors::undefined_model;
use crate::storage;
use pgrx::prelude::*;

/// Makes `version` the active (served) version of `model`, atomically; returns it.
#[pg_extern(volatile, parallel_unsafe, strict)]
fn neumf_activate(model: &str, version: i32) -> i32 {
    storage::check_may_change(model, "activate a version of");
    storage::activate(model, version);
    version
}

/// Deletes the inactive versions of `model` older than its `keep` newest (at least 1, so the
/// newest version stays and version numbers are never reused); the active version is never
/// deleted. Returns how many were deleted. (`neumf_train` does this after each training
/// with `keep` = `neumf.keep_versions`.)
#[pg_extern(volatile, parallel_unsafe, strict)]
fn neumf_prune(model: &str, keep: i32) -> i64 {
    // The newest version always stays, so version numbers are never reused.
    if keep < 1 {
        crate::errors::invalid_argument_hint(
            format!("keep must be at least 1 version, got {keep}"),
            "neumf_prune(model, 1) keeps the newest version and the active one; neumf_drop(model) deletes them all.",
        );
    }
    if !storage::model_exists(model) {
        undefined_model(model);
    }
    storage::check_may_change(model, "prune");
    storage::prune(model, keep as i64)
}

/// Deletes every version of `model`; returns how many were deleted.
#[pg_extern(volatile, parallel_unsafe, strict)]
fn neumf_drop(model: &str, if_exists: default!(bool, false)) -> i64 {
    storage::check_may_change(model, "drop");
    let deleted = storage::drop_model(model);
    if deleted == 0 && !if_exists {
        undefined_model(model);
    }
    deleted
}

/// The stored safetensors blob of a version (the active one by default), e.g. to load it in
/// PyTorch with `safetensors.torch.load(blob)`.
#[pg_extern(stable, parallel_safe)]
fn neumf_export(model: Option<&str>, version: default!(Option<i32>, "NULL")) -> Vec<u8> {
    let model = crate::errors::required(model, "model");
    let version = version.unwrap_or_else(|| storage::active_version(model));
    storage::load_blob(model, version)
}

/// The models this backend has attached, most recently used first: `bytes` is the size of
/// the mapped serving image (shared with every backend; `shared`) or of a private copy.
#[pg_extern(name = "neumf_cache", volatile, parallel_unsafe)]
fn neumf_cache_attached(
) -> TableIterator<'static, (name!(model, String), name!(version, i32), name!(bytes, i64), name!(shared, bool))> {
    TableIterator::new(crate::cache::snapshot())
}

/// The serving images of this database on this server ($PGDATA/pgsql_tmp_neumf/<database oid>):
/// `verified` once their checksum has been checked under the current server start; `model` is
/// NULL for a file whose header is damaged (it is rebuilt on next use).
#[allow(clippy::type_complexity)]
#[pg_extern(volatile, parallel_unsafe)]
fn neumf_images() -> TableIterator<
    'static,
    (
        name!(model, Option<String>),
        name!(version, Option<i32>),
        name!(bytes, i64),
        name!(verified, bool),
        name!(built_at, Option<pgrx::datum::TimestampWithTimeZone>),
        name!(path, String),
    ),
> {
    let files = crate::images::store().list(crate::images::server_start());
    TableIterator::new(files.into_iter().map(|f| {
        // PostgreSQL timestamps count µs from 2000-01-01.
        let built_at = f.modified.duration_since(std::time::UNIX_EPOCH).ok().and_then(|d| {
            let pg_micros = d.as_micros() as i64 - 946_684_800_000_000;
            pgrx::datum::TimestampWithTimeZone::try_from(pg_micros).ok()
        });
        (
            f.identity.as_ref().map(|i| i.model.clone()),
            f.identity.as_ref().map(|i| i.version),
            f.bytes as i64,
            f.verified,
            built_at,
            f.path.display().to_string(),
        )
    }))
}

/// Statement trigger on neumf_model_versions: queue a relcache invalidation of the table, which
/// PostgreSQL sends to every backend at commit (see src/cache.rs).
#[pg_trigger]
fn neumf_model_versions_changed<'a>(
    trigger: &'a PgTrigger<'a>,
) -> Result<Option<PgHeapTuple<'a, AllocatedByPostgres>>, PgTriggerError> {
    let relid = trigger.relation()?.oid();
    // SAFETY: plain catalog call on a valid relation OID, inside a transaction.
    unsafe { pg_sys::CacheInvalidateRelcacheByRelid(relid) };
    Ok(None)
}
