//! Per-backend cache of decoded models, keyed by model name and holding the active version.
//!
//! A warm call does no catalog or table query: every write to `neumf_model_versions` fires a
//! statement trigger that queues a relcache invalidation of that table; PostgreSQL delivers it
//! to every backend at commit (and to this backend at the end of the command), where
//! [`on_relcache_invalidation`] bumps a generation counter. An entry checked under an older
//! generation is re-validated with one small query; the weights are reloaded only if the active
//! version changed. The cache is bounded by `neumf.model_cache_size` (LRU).

use crate::storage;
use neumf_core::codec::ModelArtifact;
use neumf_core::infer::ScoringModel;
use parking_lot::Mutex;
use pgrx::pg_sys;
use std::collections::BTreeMap;
use std::sync::atomic::{AtomicBool, AtomicU32, AtomicU64, AtomicUsize, Ordering};
use std::sync::Arc;

/// A decoded model and the version it is.
pub struct CachedModel {
    pub version: i32,
    pub scoring: ScoringModel,
}

struct Entry {
    model: Arc<CachedModel>,
    checked_generation: u64,
    bytes: usize,
    /// Tick of the last use, for LRU eviction.
    last_used: u64,
}

static TICK: AtomicU64 = AtomicU64::new(0);
/// Sum of `bytes` over the cache, kept so a hit can tell cheaply whether to evict.
static CACHED_BYTES: AtomicUsize = AtomicUsize::new(0);

fn cache_limit() -> usize {
    crate::guc::MODEL_CACHE_KB.get() as usize * 1024
}

fn tick() -> u64 {
    TICK.fetch_add(1, Ordering::Relaxed)
}

/// Evicts least recently used entries until the cache fits `neumf.model_cache_size`, keeping
/// `keep` (the model just asked for) whatever its size.
fn evict(cache: &mut BTreeMap<String, Entry>, keep: &str) {
    let limit = cache_limit();
    while CACHED_BYTES.load(Ordering::Relaxed) > limit {
        let victim = cache
            .iter()
            .filter(|(name, _)| name.as_str() != keep)
            .min_by_key(|(_, e)| e.last_used)
            .map(|(name, _)| name.clone());
        let Some(name) = victim else { break };
        if let Some(e) = cache.remove(&name) {
            CACHED_BYTES.fetch_sub(e.bytes, Ordering::Relaxed);
        }
    }
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
        storage::forget_catalog();
    }
}

fn ensure_callback() {
    if !CALLBACK_REGISTERED.swap(true, Ordering::Relaxed) {
        // SAFETY: registering a plain function pointer; done once per backend, on first use
        // (not in _PG_init, which may run in the postmaster).
        unsafe { pg_sys::CacheRegisterRelcacheCallback(Some(on_relcache_invalidation), pg_sys::Datum::from(0)) };
    }
}

/// The active version of `model`, decoded; raises if the model does not exist.
pub fn get(model: &str) -> Arc<CachedModel> {
    ensure_callback();
    let generation = GENERATION.load(Ordering::Relaxed);
    {
        let mut cache = CACHE.lock();
        if let Some(e) = cache.get_mut(model) {
            if e.checked_generation == generation {
                e.last_used = tick();
                let hit = e.model.clone();
                if CACHED_BYTES.load(Ordering::Relaxed) > cache_limit() {
                    evict(&mut cache, model);
                }
                return hit;
            }
        }
    }
    // Stale or missing. Note the generation before querying: an invalidation that arrives while
    // we query makes the next call check again.
    if WATCHED_TABLE.load(Ordering::Relaxed) == 0 {
        let oid = storage::versions_table_oid();
        WATCHED_TABLE.store(oid.to_u32(), Ordering::Relaxed);
    }
    let generation = GENERATION.load(Ordering::Relaxed);
    let cached_version = CACHE.lock().get(model).map(|e| e.model.version);
    if let Some(cached_version) = cached_version {
        // Stale: one small query says whether the weights we hold are still the active ones.
        if storage::active_version(model) == cached_version {
            let mut cache = CACHE.lock();
            if let Some(e) = cache.get_mut(model) {
                e.checked_generation = generation;
                e.last_used = tick();
                return e.model.clone();
            }
        }
    }
    // Missing or replaced: the active version and its weights, in one query.
    let (version, scoring) = storage::with_active_blob(model, |version, blob| {
        let scoring = ModelArtifact::decode(blob)
            .map_err(|e| (format!("decoding neumf model \"{model}\" version {version}"), e))
            .and_then(|artifact| {
                ScoringModel::from_artifact(artifact)
                    .map_err(|e| (format!("loading neumf model \"{model}\" version {version}"), e))
            });
        (version, scoring)
    });
    let scoring = scoring.unwrap_or_else(|(context, e)| crate::errors::corrupted(&context, &e));
    let bytes = scoring.memory_bytes();
    let loaded = Arc::new(CachedModel { version, scoring });
    let mut cache = CACHE.lock();
    let entry = Entry { model: loaded.clone(), checked_generation: generation, bytes, last_used: tick() };
    CACHED_BYTES.fetch_add(bytes, Ordering::Relaxed);
    if let Some(old) = cache.insert(model.to_string(), entry) {
        CACHED_BYTES.fetch_sub(old.bytes, Ordering::Relaxed);
    }
    evict(&mut cache, model);
    loaded
}

/// What this backend has cached: (model, version, bytes), most recently used first.
pub fn snapshot() -> Vec<(String, i32, i64)> {
    let cache = CACHE.lock();
    let mut rows: Vec<_> =
        cache.iter().map(|(name, e)| (e.last_used, name.clone(), e.model.version, e.bytes as i64)).collect();
    rows.sort_by_key(|r| std::cmp::Reverse(r.0));
    rows.into_iter().map(|(_, name, version, bytes)| (name, version, bytes)).collect()
}
