//! The background worker that runs training jobs (src/jobs.rs queues them). A runner takes one
//! of `neumf.max_jobs` slots in its database, claims the oldest queued job, runs it and
//! exits, so its memory (and a GPU's) goes back to the system; it starts the next runner
//! when more jobs wait.
//!
//! No transaction, and so no snapshot, is open while the model trains: the source is read in
//! one transaction, the version is written in another. Reading and writing run as the role
//! that submitted the job, with the settings it had then; the runner's own bookkeeping runs
//! as the bootstrap superuser with `search_path = pg_catalog`.

use crate::errors::OrRaise;
use crate::job_progress::Progress;
use crate::jobs::{jobs_table, launch_runner, pause, reap_dead_jobs, result_json, CAPTURED_SETTINGS};
use crate::train::{plan, planned_phases, prepare, record, result_row};
use crate::trainer;
use neumf_core::codec::ModelArtifact;
use neumf_core::options::TrainOptions;
use pgrx::bgworkers::{BackgroundWorker, BackgroundWorkerBuilder, BgWorkerStartTime, SignalWakeFlags};
use pgrx::pg_sys::panic::CaughtError;
use pgrx::prelude::*;
use pgrx::JsonB;
use serde::Deserialize;

extern "C-unwind" {
    /// PostgreSQL's SIGTERM handler for backends (sets ProcDiePending, honoured at the next
    /// interrupt check); pgrx's `pg_sys::die` is a Rust wrapper, not a signal handler.
    fn die(signal: std::ffi::c_int);
}

/// Entry point of the `neumf job runner` background worker; its argument is the database OID.
#[pg_guard]
#[no_mangle]
pub extern "C-unwind" fn neumf_job_runner_main(argument: pg_sys::Datum) {
    // SAFETY: signal setup at worker start, before anything else runs.
    unsafe {
        // Terminate (pg_terminate_backend, server shutdown) at the next batch, like a backend;
        // cancel (neumf_cancel) is PostgreSQL's statement cancel, set up for workers with a
        // database connection.
        pg_sys::pqsignal(pg_sys::SIGTERM as i32, Some(die));
        pg_sys::BackgroundWorkerUnblockSignals();
    }
    let database = pg_sys::Oid::from(argument.value() as u32);
    BackgroundWorker::connect_worker_to_spi_by_oid(Some(database), None);
    let outcome = PgTryBuilder::new(run_queue).catch_others(|e| Err(describe(&e))).execute();
    if let Err(e) = outcome {
        abort_open_transaction();
        pgrx::log!("neumf job runner: {e}");
    }
}

struct Job {
    id: i64,
    model: String,
    source: String,
    options: serde_json::Value,
    settings: serde_json::Value,
    role: pg_sys::Oid,
}

fn transaction<R>(body: impl FnOnce() -> R) -> R {
    // SAFETY: the standard sequence for a transaction in a background worker.
    unsafe {
        pg_sys::SetCurrentStatementStartTimestamp();
        pg_sys::StartTransactionCommand();
        pg_sys::PushActiveSnapshot(pg_sys::GetTransactionSnapshot());
    }
    let result = body();
    // SAFETY: pairs with the calls above.
    unsafe {
        pg_sys::PopActiveSnapshot();
        pg_sys::CommitTransactionCommand();
    }
    result
}

fn abort_open_transaction() {
    // SAFETY: cleans up after an error caught outside PostgreSQL's own error handling.
    unsafe {
        if pg_sys::IsTransactionState() || pg_sys::IsAbortedTransactionBlockState() {
            pg_sys::AbortCurrentTransaction();
        }
    }
}

/// Runs `body` as the job's role (like SET ROLE, in a security-restricted context as
/// autovacuum runs index functions), with the job's recorded settings local to this
/// transaction, applied as that role. Every setting the submitter's code changes, even with
/// session scope (`set_config(…, false)` in the source query), is undone afterwards, as
/// PostgreSQL's maintenance commands do: the worker's own queries, as superuser, must never
/// run under a search_path the submitter chose.
fn as_submitter<R>(job: &Job, body: impl FnOnce() -> R) -> R {
    let (mut saved_user, mut saved_context) = (pg_sys::Oid::INVALID, 0);
    // SAFETY: saved and restored around body; an error aborts the transaction, which
    // restores them (and the settings) too.
    let nest_level = unsafe {
        pg_sys::GetUserIdAndSecContext(&mut saved_user, &mut saved_context);
        pg_sys::SetUserIdAndSecContext(
            job.role,
            saved_context | pg_sys::SECURITY_LOCAL_USERID_CHANGE as i32 | pg_sys::SECURITY_RESTRICTED_OPERATION as i32,
        );
        pg_sys::NewGUCNestLevel()
    };
    // The database's defaults unless the job recorded the submitter's (only the captured keys).
    Spi::run("SET LOCAL search_path TO DEFAULT").or_raise("resetting search_path");
    Spi::run_with_args(
        "SELECT pg_catalog.set_config(key, value, true) FROM pg_catalog.jsonb_each_text($1) WHERE key = ANY($2)",
        &[
            JsonB(job.settings.clone()).into(),
            CAPTURED_SETTINGS.iter().map(|s| s.to_string()).collect::<Vec<_>>().into(),
        ],
    )
    .or_raise("applying the job's settings");
    let result = body();
    // SAFETY: see above; AtEOXact_GUC(false, …) reverts every setting changed at or above the
    // nest level taken before the submitter's code ran.
    unsafe {
        pg_sys::AtEOXact_GUC(false, nest_level);
        pg_sys::SetUserIdAndSecContext(saved_user, saved_context);
    }
    result
}

fn max_jobs() -> i32 {
    crate::guc::MAX_JOBS.get()
}

const SLOT_LOCK: &str = "pg_catalog.hashtext('neumf/job-slot')";

fn take_slot() -> Option<i32> {
    (1..=max_jobs()).find(|slot| {
        Spi::get_one_with_args::<bool>(
            &format!("SELECT pg_catalog.pg_try_advisory_lock({SLOT_LOCK}, $1)"),
            &[(*slot).into()],
        )
        .or_raise("taking a job slot")
            == Some(true)
    })
}

fn release_slot(slot: i32) {
    Spi::run_with_args(&format!("SELECT pg_catalog.pg_advisory_unlock({SLOT_LOCK}, $1)"), &[slot.into()])
        .or_raise("releasing the job slot");
}

fn jobs_waiting() -> bool {
    Spi::get_one::<bool>(&format!("SELECT EXISTS (SELECT FROM {} WHERE status = 'queued')", jobs_table()))
        .or_raise("looking at the queue")
        == Some(true)
}

/// Claims the oldest queued job. Its progress file exists before the claim commits, so no
/// reader ever sees it running without a live worker.
fn claim() -> Option<(Job, Progress)> {
    let table = jobs_table();
    let row = Spi::connect_mut(|client| -> Result<Option<(Job, String)>, pgrx::spi::Error> {
        let t = client.update(
            &format!(
                "WITH next AS (SELECT job_id FROM {table} WHERE status = 'queued' ORDER BY job_id LIMIT 1 FOR UPDATE SKIP LOCKED) \
                 UPDATE {table} j SET status = 'running', started_at = pg_catalog.now(), pid = pg_catalog.pg_backend_pid() \
                 FROM next WHERE j.job_id = next.job_id \
                 RETURNING j.job_id, j.model, j.source, j.options, j.settings, \
                           (SELECT oid FROM pg_catalog.pg_roles WHERE rolname = j.submitted_by), j.submitted_by::text"
            ),
            Some(1),
            &[],
        )?;
        if t.is_empty() {
            return Ok(None);
        }
        let r = t.first();
        let job = Job {
            id: r.get::<i64>(1)?.unwrap_or_default(),
            model: r.get::<String>(2)?.unwrap_or_default(),
            source: r.get::<String>(3)?.unwrap_or_default(),
            options: r.get::<JsonB>(4)?.map_or(serde_json::Value::Null, |j| j.0),
            settings: r.get::<JsonB>(5)?.map_or(serde_json::json!({}), |j| j.0),
            role: r.get::<pg_sys::Oid>(6)?.unwrap_or(pg_sys::Oid::INVALID),
        };
        Ok(Some((job, r.get::<String>(7)?.unwrap_or_default())))
    })
    .or_raise("claiming a queued job");
    let (job, submitter) = row?;
    let progress = Progress::start(Some(job.id), &job.model, &submitter, Vec::new());
    Some((job, progress))
}

fn run_queue() -> Result<(), String> {
    // A database without neumf, or with SQL older than the job table, has no queue to run
    // (the launcher starts a runner in every database).
    let has_queue = transaction(|| {
        Spi::run("SET search_path = pg_catalog").or_raise("setting search_path");
        Spi::get_one::<bool>(
            "SELECT EXISTS (SELECT FROM pg_catalog.pg_extension e JOIN pg_catalog.pg_class c \
             ON c.relnamespace = e.extnamespace AND c.relname = 'neumf_job_runs' WHERE e.extname = 'neumf')",
        )
        .or_raise("looking for neumf's job table")
            == Some(true)
    });
    if !has_queue {
        return Ok(());
    }
    loop {
        let Some(slot) = transaction(take_slot) else {
            // Every slot is busy: their runners start the next job when they finish.
            return Ok(());
        };
        match transaction(|| {
            reap_dead_jobs();
            claim()
        }) {
            Some((job, mut progress)) => {
                let outcome: Result<(), Box<CaughtError>> = PgTryBuilder::new(std::panic::AssertUnwindSafe(|| {
                    run_job(&job, &mut progress);
                    Ok(())
                }))
                .catch_others(|e| Err(Box::new(e)))
                .execute();
                if let Err(e) = outcome {
                    abort_open_transaction();
                    record_failure(job.id, &e);
                }
                progress.finish();
                let more = transaction(|| {
                    // The slot and the model's training lock, before the next runner starts.
                    Spi::run("SELECT pg_catalog.pg_advisory_unlock_all()").or_raise("releasing the job's locks");
                    jobs_waiting()
                });
                if more && !launch_runner() {
                    pgrx::log!("neumf job runner: no background worker slot free for the next job; it stays queued");
                }
                return Ok(());
            }
            None => {
                // Released before looking again, so a job queued meanwhile is never stranded:
                // either its own runner got this slot, or this look sees it.
                if !transaction(|| {
                    release_slot(slot);
                    jobs_waiting()
                }) {
                    return Ok(());
                }
                pause(200);
            }
        }
    }
}

/// The per-model training lock, held across this job's transactions (a session lock on the
/// same key `neumf_train` takes for its transaction), waiting while another training has it.
fn lock_model(job: &Job, progress: &mut Progress) {
    loop {
        let got = transaction(|| {
            Spi::get_one_with_args::<bool>(
                &format!("SELECT pg_catalog.pg_try_advisory_lock({})", crate::storage::TRAINING_LOCK_KEY),
                &[job.model.clone().into()],
            )
            .or_raise("taking the training lock")
        });
        if got == Some(true) {
            return;
        }
        progress.set_phase("waiting for another training of this model");
        pause(500);
    }
}

/// What `pg_stat_activity.query` shows for this worker.
fn report_activity(text: &str) {
    if let Ok(text) = std::ffi::CString::new(text) {
        // SAFETY: PostgreSQL copies the string into this backend's status entry.
        unsafe { pg_sys::pgstat_report_activity(pg_sys::BackendState::STATE_RUNNING, text.as_ptr()) };
    }
}

fn run_job(job: &Job, progress: &mut Progress) {
    report_activity(&format!("neumf job {}: training model \"{}\" (neumf_jobs shows its progress)", job.id, job.model));
    if job.role == pg_sys::Oid::INVALID {
        crate::errors::wrong_state(
            "the role that submitted this job no longer exists",
            "Submit the job again as an existing role.",
        );
    }
    let mut options = TrainOptions::deserialize(&job.options).or_raise("reading the job's options");
    let (model, source) = (job.model.as_str(), job.source.as_str());
    lock_model(job, progress);
    let prepared = transaction(|| {
        as_submitter(job, || {
            // From the setting (bounded), not from the row.
            options.threads = crate::guc::TRAIN_THREADS.get() as usize;
            let planned = plan(model, &options);
            progress.set_phases(planned_phases(&planned));
            prepare(model, source, &options, planned, progress)
        })
    });
    // Nothing is open here: no transaction, no snapshot holding back VACUUM.
    let (weights, summary) = trainer::train(
        &prepared.data,
        &prepared.cfg,
        model,
        prepared.init.as_ref().map(|(blob, _)| blob.as_slice()),
        Some(&mut *progress),
    );
    progress.set_phase("storing");
    let artifact = ModelArtifact::new(prepared.cfg.spec.clone(), weights, &prepared.data);
    let activate = options.activate();
    transaction(|| {
        let (version, size) = as_submitter(job, || record(model, source, &prepared, &summary, &artifact, activate));
        let row = result_row(model, activate, &prepared, &summary, version, size);
        Spi::run_with_args(
            &format!(
                "UPDATE {} SET status = 'succeeded', finished_at = pg_catalog.now(), version = $2, result = $3 WHERE job_id = $1",
                jobs_table()
            ),
            &[job.id.into(), version.into(), JsonB(result_json(&row)).into()],
        )
        .or_raise("recording the job's result");
        crate::jobs::trim_history();
    });
}

fn describe(e: &CaughtError) -> String {
    match e {
        CaughtError::PostgresError(r) | CaughtError::ErrorReport(r) | CaughtError::RustPanic { ereport: r, .. } => {
            let mut text = r.message().to_string();
            if let Some(hint) = r.hint() {
                text.push_str(&format!(" (hint: {hint})"));
            }
            text
        }
    }
}

fn is_cancel(e: &CaughtError) -> bool {
    match e {
        CaughtError::PostgresError(r) | CaughtError::ErrorReport(r) | CaughtError::RustPanic { ereport: r, .. } => {
            r.sql_error_code() == PgSqlErrorCode::ERRCODE_QUERY_CANCELED
        }
    }
}

fn record_failure(job_id: i64, e: &CaughtError) {
    let (status, error) = if is_cancel(e) {
        ("cancelled", "cancelled while running (neumf_cancel or pg_cancel_backend)".to_string())
    } else {
        ("failed", describe(e))
    };
    let recorded = PgTryBuilder::new(|| {
        transaction(|| {
            Spi::run_with_args(
                &format!(
                    "UPDATE {} SET status = $2, finished_at = pg_catalog.now(), error = $3 WHERE job_id = $1 AND status = 'running'",
                    jobs_table()
                ),
                &[job_id.into(), status.into(), error.clone().into()],
            )
            .or_raise("recording the job's failure");
        });
        true
    })
    .catch_others(|_| false)
    .execute();
    if !recorded {
        abort_open_transaction();
        pgrx::log!("neumf job {job_id}: {status}: {error} (could not be recorded)");
    }
}

/// Entry point of the `neumf job launcher`, registered when neumf is in
/// `shared_preload_libraries`: after every server start (and restart after a crash) it starts
/// a job runner in each database that accepts connections, so jobs queued before the restart
/// resume and jobs whose worker died are marked failed without waiting for someone to call a
/// job function. It then sleeps until shutdown, so a crash restart starts it again.
#[pg_guard]
#[no_mangle]
pub extern "C-unwind" fn neumf_job_launcher_main(_argument: pg_sys::Datum) {
    BackgroundWorker::attach_signal_handlers(SignalWakeFlags::SIGTERM);
    // No database: only shared catalogs (pg_database) are read.
    BackgroundWorker::connect_worker_to_spi(None, None);
    for database in transaction(connectable_databases) {
        if !crate::jobs::launch_runner_for(database) {
            pgrx::log!(
                "neumf job launcher: no background worker slot free to resume the queue of database {database:?}"
            );
        }
    }
    while BackgroundWorker::wait_latch(None) {
        if BackgroundWorker::sigterm_received() {
            break;
        }
    }
}

fn connectable_databases() -> Vec<pg_sys::Oid> {
    let mut databases = Vec::new();
    // SAFETY: a catalog heap scan of pg_database inside a transaction, as autovacuum's
    // launcher does it; every pointer comes from PostgreSQL and is released below.
    unsafe {
        let relation = pg_sys::table_open(pg_sys::DatabaseRelationId, pg_sys::AccessShareLock as i32);
        let scan = pg_sys::table_beginscan_catalog(relation, 0, std::ptr::null_mut());
        loop {
            let tuple = pg_sys::heap_getnext(scan, pg_sys::ScanDirection::ForwardScanDirection);
            if tuple.is_null() {
                break;
            }
            let database = pg_sys::heap_tuple_get_struct::<pg_sys::FormData_pg_database>(tuple);
            if (*database).datallowconn {
                databases.push((*database).oid);
            }
        }
        pg_sys::table_endscan(scan);
        pg_sys::table_close(relation, pg_sys::AccessShareLock as i32);
    }
    databases
}

/// Registers the launcher; only possible while the postmaster loads shared_preload_libraries.
pub fn register_launcher() {
    // SAFETY: a flag PostgreSQL sets while it loads the preload libraries.
    if !unsafe { pg_sys::process_shared_preload_libraries_in_progress } {
        return;
    }
    BackgroundWorkerBuilder::new("neumf job launcher")
        .set_type("neumf job launcher")
        .set_library("neumf")
        .set_function("neumf_job_launcher_main")
        .enable_spi_access()
        .set_start_time(BgWorkerStartTime::RecoveryFinished)
        .set_restart_time(Some(std::time::Duration::from_secs(10)))
        .load();
}
