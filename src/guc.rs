//! `neumf.*` settings.

use pgrx::{GucContext, GucFlags, GucRegistry, GucSetting};

/// libtorch intra-op threads while training on CPU. 1 by default: inside a backend libtorch's
/// default (one per core) makes small steps tens of times slower, and it competes with the
/// other backends for the machine.
pub static TRAIN_THREADS: GucSetting<i32> = GucSetting::<i32>::new(1);

/// Rows fetched per round trip when reading the training source through a cursor.
pub static FETCH_ROWS: GucSetting<i32> = GucSetting::<i32>::new(50_000);

/// Size of each bytea chunk a stored model is split into, in kB. bytea values are limited to
/// 1 GB, so chunking is what lets larger models be stored; smaller chunks only cost rows.
pub static CHUNK_KB: GucSetting<i32> = GucSetting::<i32>::new(16 * 1024);

/// Upper bound on the decoded models one backend keeps, in kB; least recently used go first.
pub static MODEL_CACHE_KB: GucSetting<i32> = GucSetting::<i32>::new(1024 * 1024);

/// Whether backends serve from one shared serving image per model version (else each decodes
/// a private copy).
pub static SERVING_IMAGES: GucSetting<bool> = GucSetting::<bool>::new(true);

/// Milliseconds a serving-image build sleeps after creating its temporary file: lets tests
/// strike a backend mid-build. Not for production; superuser only, hidden.
pub static TEST_IMAGE_BUILD_DELAY_MS: GucSetting<i32> = GucSetting::<i32>::new(0);

/// Versions of a model kept after a successful training: older inactive ones are pruned
/// (the active version never is). 0 keeps every version.
pub static KEEP_VERSIONS: GucSetting<i32> = GucSetting::<i32>::new(5);

/// Training jobs (`neumf_train_async`) running at once in one database; the rest wait queued.
pub static MAX_JOBS: GucSetting<i32> = GucSetting::<i32>::new(1);

/// Finished jobs kept in `neumf_job_runs` (per database); older ones are deleted as jobs finish.
pub static JOB_HISTORY: GucSetting<i32> = GucSetting::<i32>::new(1000);

pub fn register() {
    GucRegistry::define_int_guc(
        c"neumf.max_jobs",
        c"Training jobs that run at once in each database.",
        c"Jobs submitted with neumf_train_async beyond this many wait as queued, oldest first. Each running job uses one background worker (max_worker_processes).",
        &MAX_JOBS,
        1,
        1024,
        GucContext::Sighup,
        GucFlags::default(),
    );
    GucRegistry::define_int_guc(
        c"neumf.job_history",
        c"Finished training jobs kept in the job history.",
        c"neumf_jobs shows queued and running jobs and this many finished ones; older finished jobs are deleted when a job or a synchronous training finishes.",
        &JOB_HISTORY,
        0,
        i32::MAX,
        GucContext::Suset,
        GucFlags::default(),
    );
    GucRegistry::define_int_guc(
        c"neumf.keep_versions",
        c"Versions of a model kept after each successful training.",
        c"After neumf_train stores a version, the oldest inactive versions beyond this many are deleted (the active version is always kept). 0 keeps every version.",
        &KEEP_VERSIONS,
        0,
        1_000_000,
        GucContext::Userset,
        GucFlags::default(),
    );
    GucRegistry::define_int_guc(
        c"neumf.model_cache_size",
        c"Size of the models each backend keeps attached.",
        c"Least recently used models are let go beyond this; the model being served is always kept (0 keeps only that one). Serving images count as the size mapped (shared pages, not private memory); private copies as the memory they use.",
        &MODEL_CACHE_KB,
        0,
        i32::MAX,
        GucContext::Userset,
        GucFlags::UNIT_KB,
    );
    GucRegistry::define_bool_guc(
        c"neumf.serving_images",
        c"Serve models from one shared, read-only image per server.",
        c"The first backend that serves a model version writes its serving image under $PGDATA/neumf_images; every backend then maps that one copy. Off: each backend decodes a private copy, as before 0.5.",
        &SERVING_IMAGES,
        GucContext::Userset,
        GucFlags::default(),
    );
    GucRegistry::define_int_guc(
        c"neumf.test_image_build_delay",
        c"Testing only: pause inside each serving-image build.",
        c"",
        &TEST_IMAGE_BUILD_DELAY_MS,
        0,
        600_000,
        GucContext::Suset,
        GucFlags::NO_SHOW_ALL | GucFlags::UNIT_MS,
    );
    GucRegistry::define_int_guc(
        c"neumf.chunk_size",
        c"Size of the bytea chunks a stored model is split into.",
        c"Models are stored as a sequence of bytea rows of at most this size (kB); values cap at 512 MB because bytea cannot exceed 1 GB.",
        &CHUNK_KB,
        1,
        512 * 1024,
        GucContext::Userset,
        GucFlags::UNIT_KB,
    );
    GucRegistry::define_int_guc(
        c"neumf.train_threads",
        c"CPU threads libtorch uses while training.",
        c"Intra-op threads for CPU training inside this backend. Raise it for large batches on a machine with idle cores.",
        &TRAIN_THREADS,
        1,
        1024,
        GucContext::Userset,
        GucFlags::default(),
    );
    GucRegistry::define_int_guc(
        c"neumf.fetch_rows",
        c"Rows fetched per cursor round trip when reading a training source.",
        c"",
        &FETCH_ROWS,
        100,
        10_000_000,
        GucContext::Userset,
        GucFlags::default(),
    );
    // Any other neumf.* setting is a typo: refuse it instead of keeping it as a placeholder.
    // SAFETY: called from _PG_init with a static, NUL-terminated prefix.
    unsafe { pgrx::pg_sys::MarkGUCPrefixReserved(c"neumf".as_ptr()) };
}
