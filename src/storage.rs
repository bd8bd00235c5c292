//! Model storage: a row per version in `neumf_model_versions`, the safetensors blob split into
//! `neumf_model_chunks` (bytea values are limited to 1 GB, models need not be). Everything is
//! written through SPI inside the caller's transaction, so a failed or cancelled training
//! leaves nothing behind.

use crate::errors::{invalid_argument_hint, undefined_model, wrong_state, OrRaise};
use pgrx::datum::DatumWithOid;
use pgrx::prelude::*;
use pgrx::spi::quote_identifier;
use pgrx::JsonB;

/// The first column of the first row of `sql`, or None when there is no row or it is NULL.
/// (`Spi::get_one` treats "no row" as an error.)
pub fn optional_row<T: pgrx::FromDatum + pgrx::IntoDatum>(sql: &str, args: &[DatumWithOid]) -> Option<T> {
    Spi::connect(|client| -> Result<Option<T>, pgrx::spi::Error> {
        let table = client.select(sql, Some(1), args)?;
        if table.is_empty() {
            return Ok(None);
        }
        table.first().get_one::<T>()
    })
    .or_raise("querying neumf's tables")
}

/// Where the extension's tables live in this database, looked up once per backend (one query)
/// and dropped by [`forget_catalog`] when the version table's relcache entry is invalidated
/// (DROP / CREATE EXTENSION change both).
#[derive(Clone)]
struct Catalog {
    /// The extension's schema, quoted, so queries work whatever the caller's search_path.
    schema: String,
    /// `neumf_model_versions`, which the serving cache watches for invalidations.
    versions_oid: pg_sys::Oid,
    /// Whether models have owners (SQL 0.4.0 on); a database still on older SQL has none.
    has_owners: bool,
}

static CATALOG: parking_lot::Mutex<Option<Catalog>> = parking_lot::Mutex::new(None);
static CATALOG_STALE: std::sync::atomic::AtomicBool = std::sync::atomic::AtomicBool::new(false);

/// Safe to call from an invalidation callback: touches only an atomic.
pub fn forget_catalog() {
    CATALOG_STALE.store(true, std::sync::atomic::Ordering::Relaxed);
}

fn catalog() -> Catalog {
    if CATALOG_STALE.swap(false, std::sync::atomic::Ordering::Relaxed) {
        *CATALOG.lock() = None;
    }
    if let Some(c) = CATALOG.lock().clone() {
        return c;
    }
    // One small query for the schema; the rest from the syscache, so a new connection's first
    // call plans as little as possible.
    let namespace = Spi::connect(|client| -> Result<Option<pg_sys::Oid>, pgrx::spi::Error> {
        let rows =
            client.select("SELECT extnamespace FROM pg_catalog.pg_extension WHERE extname = 'neumf'", Some(1), &[])?;
        if rows.is_empty() {
            return Ok(None);
        }
        rows.first().get::<pg_sys::Oid>(1)
    })
    .or_raise("looking up the neumf extension's schema");
    let found = namespace.map(|nsp_oid| {
        // SAFETY: syscache lookups with valid arguments inside a transaction; the name is
        // palloc'd in the current memory context and copied at once.
        unsafe {
            let name = pg_sys::get_namespace_name(nsp_oid);
            let nsp = if name.is_null() {
                String::new()
            } else {
                std::ffi::CStr::from_ptr(name).to_string_lossy().into_owned()
            };
            let versions_oid = pg_sys::get_relname_relid(c"neumf_model_versions".as_ptr(), nsp_oid);
            let has_owners =
                versions_oid != pg_sys::InvalidOid && pg_sys::get_attnum(versions_oid, c"owner".as_ptr()) > 0;
            (nsp, versions_oid, has_owners)
        }
    });
    let (nsp, versions_oid, has_owners) = found
        .unwrap_or_else(|| wrong_state("extension neumf is not installed in this database", "CREATE EXTENSION neumf;"));
    let c = Catalog { schema: quote_identifier(nsp), versions_oid, has_owners };
    *CATALOG.lock() = Some(c.clone());
    c
}

pub fn schema() -> String {
    catalog().schema
}

pub fn versions_table() -> String {
    format!("{}.neumf_model_versions", schema())
}

fn chunks_table() -> String {
    format!("{}.neumf_model_chunks", schema())
}

/// OID of the version table, which the serving cache watches for invalidations.
pub fn versions_table_oid() -> pg_sys::Oid {
    catalog().versions_oid
}

/// Takes the per-model training lock for this transaction, or raises if another session has it.
/// The advisory-lock key of model `$1`'s training: `neumf_train` holds it for its transaction,
/// a job's worker for the job's session (src/worker.rs), so the two exclude each other.
pub const TRAINING_LOCK_KEY: &str = "pg_catalog.hashtextextended('neumf/train/' || $1, 0)";

pub fn lock_for_training(model: &str) {
    let got = Spi::get_one_with_args::<bool>(
        &format!("SELECT pg_catalog.pg_try_advisory_xact_lock({TRAINING_LOCK_KEY})"),
        &[model.into()],
    )
    .or_raise("taking the training lock");
    if got != Some(true) {
        crate::errors::raise(
            pgrx::PgSqlErrorCode::ERRCODE_OBJECT_IN_USE,
            format!("neumf model \"{model}\" is already being trained by another session"),
            Some("Wait for that training to finish, or cancel it with pg_cancel_backend()."),
        );
    }
}

pub fn next_version(model: &str) -> i32 {
    Spi::get_one_with_args::<i32>(
        &format!("SELECT COALESCE(max(version), 0) + 1 FROM {} WHERE model = $1", versions_table()),
        &[model.into()],
    )
    .or_raise("choosing the next version")
    .unwrap_or(1)
}

/// A version row as `neumf_train` writes it.
pub struct NewVersion<'a> {
    pub model: &'a str,
    pub version: i32,
    pub architecture: &'a str,
    pub hyperparameters: serde_json::Value,
    pub user_id_type: &'a str,
    pub item_id_type: &'a str,
    pub n_users: i64,
    pub n_items: i64,
    pub n_interactions: i64,
    pub rows_read: i64,
    pub rows_skipped: serde_json::Value,
    pub metrics: serde_json::Value,
    pub final_loss: f64,
    pub train_seconds: f64,
    pub device: &'a str,
    pub source: &'a str,
}

/// Writes the version row and its chunks (inactive; see [`activate`]).
pub fn insert_version(v: &NewVersion<'_>, blob: &[u8]) {
    let sql = format!(
        "INSERT INTO {} (model, version, architecture, hyperparameters, user_id_type, item_id_type, \
         n_users, n_items, n_interactions, rows_read, rows_skipped, metrics, final_loss, train_seconds, \
         device, size_bytes, source, trained_at) \
         VALUES ($1,$2,$3,$4,$5,$6,$7,$8,$9,$10,$11,$12,$13,$14,$15,$16,$17, pg_catalog.clock_timestamp())",
        versions_table()
    );
    let args: Vec<DatumWithOid> = vec![
        v.model.into(),
        v.version.into(),
        v.architecture.into(),
        JsonB(v.hyperparameters.clone()).into(),
        v.user_id_type.into(),
        v.item_id_type.into(),
        v.n_users.into(),
        v.n_items.into(),
        v.n_interactions.into(),
        v.rows_read.into(),
        JsonB(v.rows_skipped.clone()).into(),
        JsonB(v.metrics.clone()).into(),
        v.final_loss.into(),
        v.train_seconds.into(),
        v.device.into(),
        (blob.len() as i64).into(),
        v.source.into(),
    ];
    Spi::connect_mut(|client| -> Result<(), pgrx::spi::Error> {
        client.update(&sql, None, &args)?;
        let insert_chunk =
            format!("INSERT INTO {} (model, version, chunk_no, data) VALUES ($1, $2, $3, $4)", chunks_table());
        let chunk_bytes = crate::guc::CHUNK_KB.get() as usize * 1024;
        for (n, chunk) in blob.chunks(chunk_bytes).enumerate() {
            pg_sys::check_for_interrupts!();
            client.update(&insert_chunk, None, &[v.model.into(), v.version.into(), (n as i32).into(), chunk.into()])?;
        }
        Ok(())
    })
    .or_raise("storing the model");
}

/// Makes `version` the one serving reads; every backend's cache hears of it at commit.
pub fn activate(model: &str, version: i32) {
    let table = versions_table();
    let found = Spi::connect_mut(|client| -> Result<bool, pgrx::spi::Error> {
        let found = client
            .update(
                &format!("SELECT 1 FROM {table} WHERE model = $1 AND version = $2 FOR UPDATE"),
                None,
                &[model.into(), version.into()],
            )?
            .len();
        if found == 0 {
            return Ok(false);
        }
        // Two statements: the unique index on active rows is checked row by row.
        client.update(
            &format!("UPDATE {table} SET active = false WHERE model = $1 AND active AND version <> $2"),
            None,
            &[model.into(), version.into()],
        )?;
        client.update(
            &format!("UPDATE {table} SET active = true WHERE model = $1 AND version = $2 AND NOT active"),
            None,
            &[model.into(), version.into()],
        )?;
        Ok(true)
    })
    .or_raise("activating the model");
    if !found {
        no_such_version(model, version);
    }
    crate::images::remove_at_commit(model, Some(version));
}

/// Raises the precise error for a `version` of `model` that is not stored: the model does not
/// exist (42704), or it has no such version (22023).
fn no_such_version(model: &str, version: i32) -> ! {
    if !model_exists(model) {
        undefined_model(model);
    }
    invalid_argument_hint(
        format!("neumf model \"{model}\" has no version {version}"),
        "SELECT version FROM neumf_models WHERE model = '…' lists its versions.",
    )
}

/// The active version of `model`, raising if the model does not exist.
pub fn active_version(model: &str) -> i32 {
    let table = versions_table();
    let active =
        optional_row::<i32>(&format!("SELECT version FROM {table} WHERE model = $1 AND active"), &[model.into()]);
    match active {
        Some(v) => v,
        None => {
            if model_exists(model) {
                wrong_state(
                    format!("neumf model \"{model}\" has no active version"),
                    "Activate one with neumf_activate(model, version); neumf_models lists the versions.",
                )
            }
            undefined_model(model)
        }
    }
}

/// The active version of `model` and its trained_at in µs (which tells apart a version number
/// reused after the model was dropped), raising as [`active_version`] does.
pub fn active_identity(model: &str) -> (i32, i64) {
    let sql = format!("SELECT version, trained_at FROM {} WHERE model = $1 AND active", versions_table());
    let row = Spi::connect(|client| -> Result<Option<(i32, i64)>, pgrx::spi::Error> {
        let rows = client.select(&sql, Some(1), &[model.into()])?;
        match rows.into_iter().next() {
            Some(row) => {
                let trained_at = row.get::<pgrx::datum::TimestampWithTimeZone>(2)?.map(i64::from);
                Ok(Some((row.get::<i32>(1)?.unwrap_or_default(), trained_at.unwrap_or_default())))
            }
            None => Ok(None),
        }
    })
    .or_raise("looking up the active version");
    match row {
        Some(identity) => identity,
        None => {
            active_version(model);
            unreachable!("active_version raises when there is no active version")
        }
    }
}

/// Reads `version` of `model` and hands its blob to `decode` (see [`with_active_blob`]).
pub fn with_version_blob<R>(model: &str, version: i32, decode: impl FnOnce(&[u8]) -> R) -> R {
    with_blob(model, Some(version), |_, blob| decode(blob))
}

/// Reassembles a stored blob (one query: the version's size and its chunks in order).
pub fn load_blob(model: &str, version: i32) -> Vec<u8> {
    with_blob(model, Some(version), |_, bytes| bytes.to_vec())
}

/// Reads the active version of `model` and hands its blob to `decode`, in one query. The blob
/// is passed straight from the fetched value when it is stored as one chunk (the usual case),
/// so loading a model copies its bytes once less.
pub fn with_active_blob<R>(model: &str, decode: impl FnOnce(i32, &[u8]) -> R) -> R {
    with_blob(model, None, decode)
}

/// Fetches `version` of `model` (the active one when None) with its chunks in one query and
/// passes the reassembled blob to `decode`, checking its size; raises the precise error when
/// nothing came back.
fn with_blob<R>(model: &str, version: Option<i32>, decode: impl FnOnce(i32, &[u8]) -> R) -> R {
    let sql = format!(
        "SELECT v.version, v.size_bytes, c.data FROM {} v JOIN {} c ON c.model = v.model AND c.version = v.version \
         WHERE v.model = $1 AND {} ORDER BY c.chunk_no",
        versions_table(),
        chunks_table(),
        if version.is_some() { "v.version = $2" } else { "v.active" }
    );
    let args: Vec<DatumWithOid> = match version {
        Some(v) => vec![model.into(), v.into()],
        None => vec![model.into()],
    };
    struct Read<R> {
        version: i32,
        expected: usize,
        got: usize,
        decoded: Option<R>,
    }
    let read = Spi::connect(|client| -> Result<Option<Read<R>>, pgrx::spi::Error> {
        let rows = client.select(&sql, None, &args)?;
        let one_chunk = rows.len() == 1;
        let mut blob = Vec::new();
        let mut head: Option<(i32, usize)> = None;
        for row in rows {
            let (version, expected) = match head {
                Some(h) => h,
                None => *head
                    .insert((row.get::<i32>(1)?.unwrap_or_default(), row.get::<i64>(2)?.unwrap_or_default() as usize)),
            };
            let bytes = row.get::<&[u8]>(3)?.unwrap_or_default();
            if one_chunk {
                // Decoded in place: the fetched value lives until this SPI connection ends.
                let got = bytes.len();
                let decoded = (got == expected).then(|| decode(version, bytes));
                return Ok(Some(Read { version, expected, got, decoded }));
            }
            blob.reserve(expected.saturating_sub(blob.len()));
            blob.extend_from_slice(bytes);
        }
        Ok(head.map(|(version, expected)| {
            let got = blob.len();
            let decoded = (got == expected).then(|| decode(version, &blob));
            Read { version, expected, got, decoded }
        }))
    })
    .or_raise("reading the model");
    let (version, expected, got) = match read {
        Some(Read { decoded: Some(result), .. }) => return result,
        Some(Read { version, expected, got, .. }) => (version, expected, got),
        None => {
            // No chunk joined: the model, its active version or that version's chunks are missing.
            let version = version.unwrap_or_else(|| active_version(model));
            let expected = optional_row::<i64>(
                &format!("SELECT size_bytes FROM {} WHERE model = $1 AND version = $2", versions_table()),
                &[model.into(), version.into()],
            )
            .unwrap_or_else(|| no_such_version(model, version));
            (version, expected as usize, 0)
        }
    };
    crate::errors::raise(
        pgrx::PgSqlErrorCode::ERRCODE_DATA_CORRUPTED,
        format!("neumf model \"{model}\" version {version} is incomplete: {got} of {expected} bytes stored"),
        Some("Retrain the model, or activate another version with neumf_activate()."),
    )
}

/// Deletes the inactive versions of `model` older than its `keep` newest (the active version
/// is never deleted; chunks follow by ON DELETE CASCADE); returns how many were deleted.
pub fn prune(model: &str, keep: i64) -> i64 {
    let table = versions_table();
    Spi::connect_mut(|client| -> Result<i64, pgrx::spi::Error> {
        let deleted = client.update(
            &format!(
                "DELETE FROM {table} WHERE model = $1 AND NOT active AND version NOT IN \
                 (SELECT version FROM {table} WHERE model = $1 ORDER BY version DESC LIMIT $2)"
            ),
            None,
            &[model.into(), keep.into()],
        )?;
        Ok(deleted.len() as i64)
    })
    .or_raise("pruning old versions")
}

/// Raises 42501 unless the current role may change `model`: its owner (the role that first
/// trained it), members of the owner role and members of neumf_admin may (sql/schema.sql,
/// "Who may change a model"). A model that does not exist yet may be created by any role that
/// may write the model tables. Row-level security enforces the same rule on direct DML; this
/// check comes first so that the error names the owner, before any work is done.
pub fn check_may_change(model: &str, action: &str) {
    if !catalog().has_owners {
        return; // SQL older than 0.4.0, until ALTER EXTENSION neumf UPDATE: no owners yet
    }
    let denied_owner = optional_row::<String>(
        &format!(
            "SELECT owner::text FROM {} WHERE model = $1 AND NOT {}.neumf_may_change(owner) LIMIT 1",
            versions_table(),
            schema()
        ),
        &[model.into()],
    );
    if let Some(owner) = denied_owner {
        crate::errors::raise_full(
            pgrx::PgSqlErrorCode::ERRCODE_INSUFFICIENT_PRIVILEGE,
            format!("permission denied to {action} neumf model \"{model}\""),
            Some(format!("The model is owned by role \"{owner}\".")),
            Some("Only members of the owner role or of neumf_admin may retrain, activate, prune or drop a model; train under another name, or ask its owner."),
        );
    }
}

/// Whether `model` has any version.
pub fn model_exists(model: &str) -> bool {
    Spi::get_one_with_args::<bool>(
        &format!("SELECT EXISTS (SELECT 1 FROM {} WHERE model = $1)", versions_table()),
        &[model.into()],
    )
    .or_raise("looking up the model")
        == Some(true)
}

/// Deletes every version of `model` (their chunks follow by ON DELETE CASCADE); returns how
/// many there were.
pub fn drop_model(model: &str) -> i64 {
    let deleted = Spi::connect_mut(|client| -> Result<i64, pgrx::spi::Error> {
        let deleted =
            client.update(&format!("DELETE FROM {} WHERE model = $1", versions_table()), None, &[model.into()])?;
        Ok(deleted.len() as i64)
    })
    .or_raise("dropping the model");
    crate::images::remove_at_commit(model, None);
    deleted
}
