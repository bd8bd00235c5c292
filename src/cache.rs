//! Per-backend cache of decoded models, keyed by model name and holding the active version.
//!
//! A warm call does no catalog or table query: every write to `neumf_model_versions` fires a
//! statement trigger that queues a relcache invalidation of that table; PostgreSQL delivers it
//! to every backend at commit (and to this backend at the end of the command), where
//! [`on_relcache_invalidation`] bumps a generation counter. An entry checked under an older
//! generation is re-validated with one small query; the weights are reloaded only if the active
//! version changed.

use crate::errors::OrRaise;
use crate::storage;
use neumf_core::codec::ModelArtifact;
use neumf_core::infer::ScoringModel;
use parking_lot::Mutex;
use pgrx::pg_sys;
use std::collections::BTreeMap;
use std::sync::atomic::{AtomicBool, AtomicU32, AtomicU64, Ordering};
use std::sync::Arc;

/// A decoded model and the version it is.
pub struct CachedModel {
    pub version: i32,
    pub scoring: ScoringModel,
}

struct Entry {
    model: Arc<CachedModel>,
    checked_generation: u64,
}

static GENERATION: AtomicU64 = AtomicU64::new(1);
/// OID of `neumf_model_versions` in this database; 0 until first looked up or after it changes.
static WATCHED_TABLE: AtomicU32 = AtomicU32::new(0);
static CALLBACK_REGISTERED: AtomicBool = AtomicBool::new(false);
static CACHE: Mutex<BTreeMap<String, Entry>> = Mutex::new(BTreeMap::new());

/// Runs inside PostgreSQL's invalidation processing: touch nothing but atomics here.
unsafe extern "C-unwind" fn on_relcache_invalidation(_arg: pg_sys::Datum, relid: pg_sys::Oid) {
    let watched = WATCHED_TABLE.load(Ordering::Relaxed);
    // InvalidOid means "everything" (e.g. after an invalidation queue overflow).
    if relid == pg_sys::InvalidOid || watched == 0 || relid.to_u32() == watched {
        WATCHED_TABLE.store(0, Ordering::Relaxed);
        GENERATION.fetch_add(1, Ordering::Relaxed);
    }
}

fn ensure_callback() {
    if !CALLBACK_REGISTERED.swap(true, Ordering::Relaxed) {
        // SAFETY: registering a plain function pointer; done once per backend, on first use
        // (not in _PG_init, which may run in the postmaster).
        unsafe {
            pg_sys::CacheRegisterRelcacheCallback(
                Some(on_relcache_invalidation),
                pg_sys::Datum::from(0),
            )
        };
    }
}

/// The active version of `model`, decoded; raises if the model does not exist.
pub fn get(model: &str) -> Arc<CachedModel> {
    ensure_callback();
    let generation = GENERATION.load(Ordering::Relaxed);
    if let Some(e) = CACHE.lock().get(model) {
        if e.checked_generation == generation {
            return e.model.clone();
        }
    }
    // Stale or missing. Note the generation before querying: an invalidation that arrives while
    // we query makes the next call check again.
    if WATCHED_TABLE.load(Ordering::Relaxed) == 0 {
        let oid = storage::versions_table_oid();
        WATCHED_TABLE.store(oid.to_u32(), Ordering::Relaxed);
    }
    let generation = GENERATION.load(Ordering::Relaxed);
    let version = storage::active_version(model);
    {
        let mut cache = CACHE.lock();
        if let Some(e) = cache.get_mut(model) {
            if e.model.version == version {
                e.checked_generation = generation;
                return e.model.clone();
            }
        }
    }
    let blob = storage::load_blob(model, version);
    let artifact = ModelArtifact::decode(&blob).or_raise(&format!(
        "decoding neumf model \"{model}\" version {version}"
    ));
    drop(blob);
    let scoring = ScoringModel::from_artifact(artifact).or_raise(&format!(
        "loading neumf model \"{model}\" version {version}"
    ));
    let loaded = Arc::new(CachedModel { version, scoring });
    CACHE.lock().insert(
        model.to_string(),
        Entry {
            model: loaded.clone(),
            checked_generation: generation,
        },
    );
    loaded
}
