//! Training as a background job: `neumf_train_async` queues a row in `neumf_job_runs` in the
//! caller's transaction and, when that transaction commits, starts a dynamic background worker
//! (src/worker.rs) that runs the queue. `neumf_cancel`, `neumf_wait` (sql/finalize.sql, over
//! `_neumf_wait`) and the `neumf_jobs` view (the table joined with src/job_progress.rs) are
//! the controls. A job whose worker is gone without finishing (killed, crashed, server
//! restarted) shows as failed at once and is marked so by the next job function or worker.

use crate::errors::{invalid_argument_hint, raise, required, wrong_state, OrRaise};
use crate::train::{plan, TrainRow};
use crate::{guc, job_progress, storage};
use neumf_core::options::TrainOptions;
use pgrx::bgworkers::BackgroundWorkerBuilder;
use pgrx::prelude::*;
use pgrx::{JsonB, PgSqlErrorCode};
use serde_json::json;
use std::time::{Duration, Instant};

pub fn jobs_table() -> String {
    format!("{}.neumf_job_runs", storage::schema())
}

pub fn current_user() -> String {
    Spi::get_one::<String>("SELECT current_user::text").ok().flatten().unwrap_or_default()
}

/// The settings a job runs with: the submitter's, as they were when it was submitted.
/// The worker applies these keys only, as the submitter, whatever else a job row holds.
pub const CAPTURED_SETTINGS: [&str; 5] =
    ["search_path", "neumf.train_threads", "neumf.fetch_rows", "neumf.chunk_size", "neumf.keep_versions"];

const DEAD_WORKER: &str =
    "the job's worker exited before finishing (terminated, crashed, or the server restarted); submit it again";

/// Whether the current role holds `privilege` on the job table (submitters need not hold
/// UPDATE or DELETE: the runner, a superuser, does that housekeeping too).
fn may(privilege: &str) -> bool {
    Spi::get_one_with_args::<bool>(
        "SELECT pg_catalog.has_table_privilege(pg_catalog.to_regclass($1), $2)",
        &[jobs_table().into(), privilege.into()],
    )
    .or_raise("checking the job table's privileges")
        == Some(true)
}

/// Marks failed every job recorded as running whose worker is gone.
pub fn reap_dead_jobs() {
    if !may("UPDATE") {
        return;
    }
    let live = job_progress::live_job_ids();
    Spi::run_with_args(
        &format!(
            "UPDATE {} SET status = 'failed', finished_at = now(), error = $2 \
             WHERE status = 'running' AND job_id <> ALL($1) \
             AND pg_catalog.pg_has_role(current_user, submitted_by, 'MEMBER')",
            jobs_table()
        ),
        &[live.into(), DEAD_WORKER.into()],
    )
    .or_raise("marking jobs whose worker died");
}

/// Keeps the newest `neumf.job_history` finished jobs.
pub fn trim_history() {
    if !may("DELETE") {
        return;
    }
    Spi::run_with_args(
        &format!(
            "DELETE FROM {t} WHERE status IN ('succeeded', 'failed', 'cancelled') AND job_id < \
             (SELECT min(job_id) FROM (SELECT job_id FROM {t} ORDER BY job_id DESC LIMIT $1) newest) \
             AND pg_catalog.pg_has_role(current_user, submitted_by, 'MEMBER')",
            t = jobs_table()
        ),
        &[(guc::JOB_HISTORY.get() as i64).into()],
    )
    .or_raise("trimming the job history");
}

/// Starts a job runner for this database now. False when no background worker slot is free
/// (`max_worker_processes`): the queue then waits for the next submission, `neumf_wait`, or
/// a running job's end.
pub fn launch_runner() -> bool {
    // SAFETY: set when the backend connects.
    launch_runner_for(unsafe { pg_sys::MyDatabaseId })
}

/// Starts a job runner for `database` (src/worker.rs).
pub fn launch_runner_for(database: pg_sys::Oid) -> bool {
    BackgroundWorkerBuilder::new("neumf job runner")
        .set_type("neumf job runner")
        .set_library("neumf")
        .set_function("neumf_job_runner_main")
        .enable_spi_access()
        .set_argument(Some(pg_sys::Datum::from(database.to_u32())))
        .set_restart_time(None)
        .load_dynamic()
        .is_ok()
}

/// A runner starts when this transaction commits (and never if it rolls back).
fn launch_runner_at_commit() {
    static REGISTERED: std::sync::atomic::AtomicBool = std::sync::atomic::AtomicBool::new(false);
    // One runner per committing transaction is enough, however many jobs it queued.
    if REGISTERED.swap(true, std::sync::atomic::Ordering::Relaxed) {
        return;
    }
    pgrx::register_xact_callback(pgrx::PgXactCallbackEvent::Commit, || {
        REGISTERED.store(false, std::sync::atomic::Ordering::Relaxed);
        if !launch_runner() {
            pgrx::log!(
                "neumf: no background worker slot free for the job runner (max_worker_processes); the job stays queued"
            );
        }
    });
    pgrx::register_xact_callback(pgrx::PgXactCallbackEvent::Abort, || {
        REGISTERED.store(false, std::sync::atomic::Ordering::Relaxed);
    });
}

/// Queues a training of `model` from `source` as a background job and returns its id at
/// once. The job starts when this transaction commits; `neumf_jobs` shows it, `neumf_wait`
/// waits for it, `neumf_cancel` stops it. Same arguments as `neumf_train`; the job runs as
/// the calling role, with its search_path and neumf.* settings as they are now.
#[allow(clippy::too_many_arguments)]
#[pg_extern(volatile, parallel_unsafe)]
fn neumf_train_async(
    model: Option<&str>,
    source: Option<&str>,
    architecture: default!(Option<&str>, "NULL"),
    factors: default!(Option<i32>, "NULL"),
    layers: default!(Option<Vec<i32>>, "NULL"),
    epochs: default!(Option<i32>, "NULL"),
    batch_size: default!(Option<i32>, "NULL"),
    learning_rate: default!(Option<f64>, "NULL"),
    negatives: default!(Option<i32>, "NULL"),
    min_rating: default!(Option<f64>, "NULL"),
    seed: default!(Option<i64>, "NULL"),
    device: default!(Option<&str>, "NULL"),
    activate: default!(Option<bool>, "NULL"),
    sampling: default!(Option<&str>, "NULL"),
    popularity_exponent: default!(Option<f64>, "NULL"),
    hard_pool: default!(Option<i32>, "NULL"),
    hard_share: default!(Option<f64>, "NULL"),
    weight_decay: default!(Option<f64>, "NULL"),
    dropout: default!(Option<f64>, "NULL"),
    lr_schedule: default!(Option<&str>, "NULL"),
    validation: default!(Option<bool>, "NULL"),
    patience: default!(Option<i32>, "NULL"),
    pretrain: default!(Option<bool>, "NULL"),
    refit: default!(Option<bool>, "NULL"),
    recency_weight: default!(Option<f64>, "NULL"),
    recency_half_life: default!(Option<f64>, "NULL"),
    mixed_precision: default!(Option<bool>, "NULL"),
    warm_start: default!(Option<bool>, "NULL"),
) -> i64 {
    let options = TrainOptions {
        architecture,
        factors,
        layers,
        epochs,
        batch_size,
        learning_rate,
        negatives,
        min_rating,
        seed,
        device,
        sampling,
        popularity_exponent,
        hard_pool,
        hard_share,
        weight_decay,
        dropout,
        lr_schedule,
        validation,
        patience,
        pretrain,
        refit,
        recency_weight,
        recency_half_life,
        mixed_precision,
        activate,
        warm_start,
        threads: guc::TRAIN_THREADS.get() as usize,
    };
    let (model, source) = (required(model, "model"), required(source, "source"));
    // Refused now, not when the job runs.
    plan(model, &options);
    if source.trim().is_empty() {
        invalid_argument_hint("source is empty", "Pass a table name or a query returning user_id, item_id.");
    }
    reap_dead_jobs();
    let options = serde_json::to_value(&options).or_raise("recording the job's options");
    let settings = Spi::get_one::<JsonB>(&format!(
        "SELECT jsonb_build_object({})",
        CAPTURED_SETTINGS.iter().map(|s| format!("'{s}', current_setting('{s}')")).collect::<Vec<_>>().join(", ")
    ))
    .or_raise("recording the job's settings")
    .map_or(json!({}), |j| j.0);
    // The id first, then a plain INSERT: RETURNING would need SELECT on the table, and
    // submitting needs only INSERT and the sequence.
    let job_id = Spi::get_one::<i64>(&format!(
        "SELECT pg_catalog.nextval(pg_catalog.pg_get_serial_sequence('{}', 'job_id'))",
        jobs_table()
    ))
    .or_raise("numbering the job")
    .unwrap_or_else(|| raise(PgSqlErrorCode::ERRCODE_INTERNAL_ERROR, "numbering the job returned no id", None));
    Spi::run_with_args(
        &format!(
            "INSERT INTO {} (job_id, model, source, options, settings, status) VALUES ($1, $2, $3, $4, $5, 'queued')",
            jobs_table()
        ),
        &[job_id.into(), model.into(), source.trim().into(), JsonB(options).into(), JsonB(settings).into()],
    )
    .or_raise("queueing the job");
    launch_runner_at_commit();
    job_id
}

/// Who submitted a job and its state, locked against concurrent changes.
fn job_for_update(job_id: i64) -> (String, String) {
    let row = Spi::connect_mut(|client| -> Result<Option<(String, String)>, pgrx::spi::Error> {
        let t = client.update(
            &format!("SELECT status, submitted_by::text FROM {} WHERE job_id = $1 FOR UPDATE", jobs_table()),
            Some(1),
            &[job_id.into()],
        )?;
        if t.is_empty() {
            return Ok(None);
        }
        let r = t.first();
        Ok(Some((r.get::<String>(1)?.unwrap_or_default(), r.get::<String>(2)?.unwrap_or_default())))
    })
    .or_raise("looking up the job");
    row.unwrap_or_else(|| no_such_job(job_id))
}

fn no_such_job(job_id: i64) -> ! {
    raise(
        PgSqlErrorCode::ERRCODE_UNDEFINED_OBJECT,
        format!("neumf job {job_id} does not exist"),
        Some("SELECT job_id, model, status FROM neumf_jobs lists the jobs (finished ones beyond neumf.job_history are forgotten)."),
    )
}

/// Stops a queued or running job: a queued one is cancelled in this transaction, a running
/// one is interrupted (its worker marks it cancelled within a second; the model's versions
/// are untouched). Returns false when the job had already ended. Only a member of the role
/// that submitted the job may cancel it.
#[pg_extern(volatile, parallel_unsafe, strict)]
fn neumf_cancel(job_id: i64) -> bool {
    reap_dead_jobs();
    let (status, owner) = job_for_update(job_id);
    let allowed = Spi::get_one_with_args::<bool>(
        "SELECT pg_catalog.pg_has_role(current_user, $1::name, 'MEMBER')",
        &[owner.clone().into()],
    )
    .or_raise("checking the job's owner")
    .unwrap_or(false);
    if !allowed {
        raise(
            PgSqlErrorCode::ERRCODE_INSUFFICIENT_PRIVILEGE,
            format!("permission denied to cancel neumf job {job_id}"),
            Some(&format!("Only members of role \"{owner}\", which submitted it, may cancel it.")),
        );
    }
    match status.as_str() {
        "queued" => {
            Spi::run_with_args(
                &format!(
                    "UPDATE {} SET status = 'cancelled', finished_at = now(), \
                     error = 'cancelled by ' || current_user || ' before it started' WHERE job_id = $1",
                    jobs_table()
                ),
                &[job_id.into()],
            )
            .or_raise("cancelling the job");
            true
        }
        "running" => match job_progress::worker_of(job_id) {
            Some(pid) => {
                // The worker's SIGINT handler is PostgreSQL's query cancel: the training stops at
                // its next batch and the worker records the job as cancelled.
                // SAFETY: pid is the live worker running this job (job_progress checked it).
                unsafe { libc::kill(pid, libc::SIGINT) };
                true
            }
            None => false,
        },
        _ => false,
    }
}

/// Waits until job `job_id` ends or `timeout_seconds` pass (NULL: no limit); true when it
/// ended. Behind `neumf_wait`, which returns the job's row.
#[pg_extern(volatile, parallel_unsafe, name = "_neumf_wait")]
fn wait_for_job(job_id: Option<i64>, timeout_seconds: Option<f64>) -> bool {
    let job_id = required(job_id, "job_id");
    if let Some(t) = timeout_seconds {
        if t.is_nan() || t < 0.0 {
            invalid_argument_hint(
                format!("timeout must not be negative, got {t} s"),
                "Pass NULL to wait without limit.",
            );
        }
    }
    // SAFETY: plain read of the session's isolation level.
    if unsafe { pg_sys::XactIsoLevel } >= pg_sys::XACT_REPEATABLE_READ as i32 {
        wrong_state(
            "neumf_wait needs READ COMMITTED: a repeatable-read snapshot would never see the job end",
            "Call it outside a REPEATABLE READ or SERIALIZABLE transaction.",
        );
    }
    let deadline = timeout_seconds.map(|t| Instant::now() + Duration::from_secs_f64(t.min(1e9)));
    let mut launched = false;
    loop {
        // Through `update` (not read-only), so each look takes a fresh snapshot and sees the
        // job's commits.
        let row = Spi::connect_mut(|client| -> Result<Option<(String, bool)>, pgrx::spi::Error> {
            let t = client.update(
                &format!("SELECT status, xmin::text::bigint FROM {} WHERE job_id = $1", jobs_table()),
                Some(1),
                &[job_id.into()],
            )?;
            if t.is_empty() {
                return Ok(None);
            }
            let r = t.first();
            let xmin = r.get::<i64>(2)?.unwrap_or(0) as u32;
            // SAFETY: a plain check against this backend's transaction state.
            let mine = unsafe { pg_sys::TransactionIdIsCurrentTransactionId(pg_sys::TransactionId::from(xmin)) };
            Ok(Some((r.get::<String>(1)?.unwrap_or_default(), mine)))
        })
        .or_raise("reading the job's status");
        let Some((status, mine)) = row else { no_such_job(job_id) };
        match status.as_str() {
            "queued" if mine => wrong_state(
                format!("neumf job {job_id} was queued by this transaction and starts only when it commits"),
                "COMMIT, then call neumf_wait.",
            ),
            "queued" if !launched => {
                // After a restart, or when no worker slot was free at submission, nobody may be
                // running the queue; a runner that finds it served exits at once.
                launched = launch_runner();
            }
            "running" if job_progress::worker_of(job_id).is_none() => reap_dead_jobs(),
            "succeeded" | "failed" | "cancelled" => return true,
            _ => {}
        }
        if deadline.is_some_and(|d| Instant::now() >= d) {
            return false;
        }
        pause(100);
    }
}

/// Sleeps up to `milliseconds` on this process's latch, then honours any interrupt (cancel,
/// termination): the waits of `neumf_wait` and of the job runner.
pub fn pause(milliseconds: i64) {
    // SAFETY: waits on this process's own latch.
    unsafe {
        pg_sys::WaitLatch(
            pg_sys::MyLatch,
            (pg_sys::WL_LATCH_SET | pg_sys::WL_TIMEOUT | pg_sys::WL_EXIT_ON_PM_DEATH) as i32,
            milliseconds,
            pg_sys::PG_WAIT_EXTENSION,
        );
        pg_sys::ResetLatch(pg_sys::MyLatch);
    }
    pg_sys::check_for_interrupts!();
}

/// A successful synchronous `neumf_train` leaves a row in the job history too (in the
/// caller's transaction, so a rolled-back training leaves none). Skipped when the caller may
/// not write the job table, or it does not exist.
pub fn record_synchronous_run(model: &str, source: &str, options: &TrainOptions<'_>, started: f64, row: &TrainRow) {
    let table = jobs_table();
    // (Under an older version's SQL the table does not exist yet.)
    let allowed = Spi::get_one_with_args::<bool>(
        "SELECT CASE WHEN pg_catalog.to_regclass($1) IS NULL THEN false \
                ELSE pg_catalog.has_table_privilege(pg_catalog.to_regclass($1), 'INSERT') END",
        &[table.clone().into()],
    )
    .or_raise("checking the job table's privileges")
    .unwrap_or(false);
    if !allowed {
        return;
    }
    let options = serde_json::to_value(options).or_raise("recording the options");
    Spi::run_with_args(
        &format!(
            "INSERT INTO {table} (model, source, options, synchronous, status, queued_at, started_at, finished_at, pid, version, result) \
             VALUES ($1, $2, $3, true, 'succeeded', to_timestamp($4), to_timestamp($4), clock_timestamp(), pg_backend_pid(), $5, $6)"
        ),
        &[
            model.into(),
            source.trim().into(),
            JsonB(options).into(),
            started.into(),
            row.1.into(),
            JsonB(result_json(row)).into(),
        ],
    )
    .or_raise("recording the training in the job history");
    trim_history();
}

/// What a finished job's row keeps about its training.
pub fn result_json(row: &TrainRow) -> serde_json::Value {
    json!({
        "device": row.3, "users": row.4, "items": row.5, "interactions": row.6,
        "epochs_run": row.11, "best_epoch": row.12,
        "validation_hr": row.13, "validation_ndcg": row.14, "final_loss": row.15,
        "train_seconds": row.16, "samples_per_second": row.17, "size_bytes": row.18,
    })
}
