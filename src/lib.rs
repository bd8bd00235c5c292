//! neumf: Neural Collaborative Filtering inside PostgreSQL.
//!
//! This crate is the thin pgrx layer; the algorithms live in `neumf-core` (no pgrx there), and
//! training runs in `trainer/`, a separate library loaded only by `neumf_train`, so this one
//! never links libtorch.
//! Where each SQL function's code is:
//!
//! | SQL                                             | file             |
//! |-------------------------------------------------|------------------|
//! | `neumf_train`                                   | `src/train.rs` (options → `neumf_core::options`, then read, train, record), `src/trainer.rs` → `trainer/` (libtorch, dlopen'ed; ABI in `neumf_core::abi`) |
//! | `neumf_train_async`, `neumf_cancel`, `neumf_wait` (`_neumf_wait`) | `src/jobs.rs`; the worker that runs jobs: `src/worker.rs` |
//! | `neumf_jobs` view, `neumf_job_progress`         | `sql/finalize.sql`, `src/job_progress.rs` (live progress files) |
//! | `neumf_score`, `neumf_rank`, `neumf_recommend`  | `src/serve.rs`   |
//! | `neumf_evaluate`                                | `src/evaluate.rs` |
//! | `neumf_activate`, `neumf_prune`, `neumf_drop`, `neumf_export`, `neumf_cache`, `neumf_models` | `src/admin.rs`, `sql/finalize.sql` |
//! | C symbols older versions' SQL still names       | `src/compat.rs`  |
//! | tables                                          | `sql/schema.sql`; released versions in `sql/install/`, upgrades in `sql/upgrade/` |
//! | errors and their SQLSTATEs                      | `src/errors.rs`  |
//! | `neumf_synthetic_interactions` (demo/bench data) | `sql/synthetic.sql` |
//! | per-backend model cache + invalidation          | `src/cache.rs`   |
//! | serving images shared by all backends (`neumf_images`) | `src/images.rs`, files in `neumf_core::image_store` |
//! | reading the training source through SPI         | `src/source.rs`  |
//! | model storage (version rows, bytea chunks)      | `src/storage.rs` |
//! | GUCs (`neumf.*`)                                | `src/guc.rs`     |

use pgrx::prelude::*;

mod admin;
mod cache;
mod compat;
mod errors;
mod evaluate;
mod guc;
mod images;
mod job_progress;
mod jobs;
mod serve;
mod source;
mod storage;
mod train;
mod trainer;
mod worker;

::pgrx::pg_module_magic!(name, version);

pgrx::extension_sql_file!("../sql/schema.sql", name = "schema", bootstrap);
pgrx::extension_sql_file!("../sql/synthetic.sql", name = "synthetic");
pgrx::extension_sql_file!("../sql/finalize.sql", name = "finalize", finalize);

/// Runs at load time, possibly in the postmaster (shared_preload_libraries): registers GUCs,
/// and when preloaded the job launcher (src/worker.rs), which starts no process before the
/// server is up. libtorch is not part of this library at all (see src/trainer.rs).
#[pg_guard]
pub extern "C-unwind" fn _PG_init() {
    guc::register();
    worker::register_launcher();
}

#[cfg(test)]
pub mod pg_test {
    pub fn setup(_options: Vec<&str>) {}

    #[must_use]
    pub fn postgresql_conf_options() -> Vec<&'static str> {
        vec![]
    }
}
