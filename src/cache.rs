//! Per-backend cache of the models this backend serves, keyed by model name and holding the
//! active version. Each entry is a serving image mapped read-only (`src/images.rs`): one copy
//! per server, shared by every backend, so attaching costs no per-item work and no private
//! memory. With `neumf.serving_images = off`, or when an image cannot be written, the entry
//! is a private decoded copy instead.
//!
//! A warm call does no catalog or table query: every write to `neumf_model_versions` fires a
//! statement trigger that queues a relcache invalidation of that table; PostgreSQL delivers it
//! to every backend at commit (and to this backend at the end of the command), where
//! [`on_relcache_invalidation`] bumps a generation counter. An entry checked under an older
//! generation is re-validated with one small query; the weights are reloaded only if the active
//! version changed. `neumf.model_cache_size` bounds the bytes one backend keeps attached (LRU):
//! for images that is address space over shared pages, for private copies real memory.

use crate::{images, storage};
use neumf_core::codec::ModelArtifact;
use neumf_core::image::ImageIdentity;
use neumf_core::image_store::Attach;
use neumf_core::infer::ScoringModel;
use parking_lot::Mutex;
use pgrx::pg_sys;
use std::collections::BTreeMap;
use std::sync::atomic::{AtomicBool, AtomicU32, AtomicU64, AtomicUsize, Ordering};
use std::sync::Arc;

/// A model ready to serve and the version it is.
pub struct CachedModel {
    pub version: i32,
    /// The version row's trained_at (µs): tells apart a version number reused after a drop.
    pub stamp: i64,
    pub scoring: ScoringModel,
    /// Whether `scoring` is a mapped serving image (else a private copy).
    pub shared: bool,
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
    let cached = CACHE.lock().get(model).map(|e| (e.model.version, e.model.stamp));
    // One small query: which version is active, and which training made it.
    let (version, stamp) = storage::active_identity(model);
    if cached == Some((version, stamp)) {
        let mut cache = CACHE.lock();
        if let Some(e) = cache.get_mut(model) {
            e.checked_generation = generation;
            e.last_used = tick();
            return e.model.clone();
        }
    }
    let (scoring, bytes, shared) = load(model, version, stamp);
    let loaded = Arc::new(CachedModel { version, stamp, scoring, shared });
    let mut cache = CACHE.lock();
    let entry = Entry { model: loaded.clone(), checked_generation: generation, bytes, last_used: tick() };
    CACHED_BYTES.fetch_add(bytes, Ordering::Relaxed);
    if let Some(old) = cache.insert(model.to_string(), entry) {
        CACHED_BYTES.fetch_sub(old.bytes, Ordering::Relaxed);
    }
    evict(&mut cache, model);
    loaded
}

/// Decodes a stored version into a private copy, raising XX001 if it is damaged.
fn decode(model: &str, version: i32) -> ScoringModel {
    let scoring = storage::with_version_blob(model, version, |blob| {
        ModelArtifact::decode(blob)
            .map_err(|e| (format!("decoding neumf model \"{model}\" version {version}"), e))
            .and_then(|artifact| {
                ScoringModel::from_artifact(artifact)
                    .map_err(|e| (format!("loading neumf model \"{model}\" version {version}"), e))
            })
    });
    scoring.unwrap_or_else(|(context, e)| crate::errors::corrupted(&context, &e))
}

/// The version as (model, bytes attached, shared): its serving image, built by this backend if
/// no other has yet; a private copy when images are off or cannot be written.
fn load(model: &str, version: i32, stamp: i64) -> (ScoringModel, usize, bool) {
    if !crate::guc::SERVING_IMAGES.get() {
        let scoring = decode(model, version);
        let bytes = scoring.memory_bytes();
        return (scoring, bytes, false);
    }
    let id = ImageIdentity { database: images::database(), model: model.to_string(), version, stamp };
    let store = images::store();
    let started = std::time::Instant::now();
    let built = store.attach_or_build(&id, images::server_start(), &mut images::check_interrupts, &mut || {
        images::test_build_delay();
        Ok(decode(model, version))
    });
    match built {
        Ok(attached) => {
            let (bytes, ms) = (attached.bytes, started.elapsed().as_secs_f64() * 1e3);
            match &attached.how {
                Attach::Mapped => {}
                Attach::Built => pgrx::log!(
                    "neumf built the serving image of model \"{model}\" version {version} ({bytes} bytes, {ms:.0} ms)"
                ),
                Attach::Verified => pgrx::log!(
                    "neumf verified the serving image of model \"{model}\" version {version} after a server start ({bytes} bytes, {ms:.0} ms)"
                ),
                Attach::Rebuilt(why) => pgrx::warning!(
                    "neumf serving image of model \"{model}\" version {version} was damaged ({why}); rebuilt it from the stored model"
                ),
            }
            if attached.how != Attach::Mapped {
                // Images of versions older than this one: superseded, whoever activated it. (Not
                // newer ones: this backend's snapshot may predate their activation.)
                store.remove_older(model, version);
                // A build decoded the whole model in this backend: hand the freed heap back to
                // the system rather than keep it as this backend's private memory.
                // SAFETY: glibc's malloc_trim only releases free memory.
                unsafe { libc::malloc_trim(0) };
            }
            (attached.model, attached.bytes, true)
        }
        Err(e) => {
            pgrx::warning!(
                "neumf could not use a serving image for model \"{model}\" version {version} in {}: {e:#}; serving from a private copy",
                store.dir().display()
            );
            let scoring = decode(model, version);
            let bytes = scoring.memory_bytes();
            (scoring, bytes, false)
        }
    }
}

/// What this backend has attached: (model, version, bytes, shared), most recently used first.
pub fn snapshot() -> Vec<(String, i32, i64, bool)> {
    let cache = CACHE.lock();
    let mut rows: Vec<_> = cache
        .iter()
        .map(|(name, e)| (e.last_used, name.clone(), e.model.version, e.bytes as i64, e.model.shared))
        .collect();
    rows.sort_by_key(|r| std::cmp::Reverse(r.0));
    rows.into_iter().map(|(_, name, version, bytes, shared)| (name, version, bytes, shared)).collect()
}
