//! Live progress of every training running on this server, whether a background job or a
//! synchronous `neumf_train`: each writes a small JSON file, `pg_stat_tmp/neumf_job.<pid>.json`,
//! replaced atomically at most once a second while it trains, and removed when it ends.
//! Any session reads them (`neumf_job_progress()`, behind the `neumf_jobs` view), outside any
//! transaction of the trainer's, so progress is visible while that transaction is still open.
//!
//! A file counts only while its process is alive and belongs to this postmaster's lifetime:
//! a backend killed with `kill -9` (which restarts the server) or one that exited without
//! removing its file leaves a file that is ignored and deleted by the next reader.

use neumf_core::progress::EpochReport;
use pgrx::prelude::*;
use serde::{Deserialize, Serialize};
use std::path::PathBuf;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

/// pg_stat_tmp is relative to the data directory (every backend's working directory); its
/// contents are never copied by pg_basebackup.
const DIRECTORY: &str = "pg_stat_tmp";
const PREFIX: &str = "neumf_job.";

/// Write at most this often between epochs (the view promises updates every 2 s).
const WRITE_EVERY: Duration = Duration::from_secs(1);

/// What one running training shows.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct ProgressRecord {
    pub pid: i32,
    /// `PgStartTime` of the postmaster the process belonged to.
    pub postmaster_start: i64,
    /// Database OID: the view shows this database's trainings only.
    pub database: u32,
    /// None for a synchronous `neumf_train`.
    pub job_id: Option<i64>,
    pub model: String,
    pub user: String,
    pub phase: String,
    /// Epochs of `phase` completed so far, of `epochs` at most (early stopping may end sooner).
    pub epoch: i32,
    pub epochs: i32,
    /// Share of the current epoch's samples done, 0 to 1.
    pub epoch_progress: f64,
    pub loss: Option<f64>,
    pub validation_hr: Option<f64>,
    pub validation_ndcg: Option<f64>,
    pub samples_per_second: Option<f64>,
    /// Upper bound: every remaining epoch of every remaining phase at the latest epoch's pace
    /// (early stopping usually ends sooner).
    pub eta_seconds: Option<f64>,
    /// Unix seconds.
    pub started_at: f64,
    pub updated_at: f64,
    /// Written by a job's worker after it recorded the outcome, just before it exits.
    #[serde(default)]
    pub ended: bool,
}

/// Unix seconds now.
pub fn unix_now() -> f64 {
    SystemTime::now().duration_since(UNIX_EPOCH).map_or(0.0, |d| d.as_secs_f64())
}

fn postmaster_start() -> i64 {
    // SAFETY: set once at postmaster start, read-only afterwards.
    unsafe { pg_sys::PgStartTime }
}

fn my_pid() -> i32 {
    // SAFETY: set at process start.
    unsafe { pg_sys::MyProcPid }
}

fn path_of(pid: i32) -> PathBuf {
    PathBuf::from(DIRECTORY).join(format!("{PREFIX}{pid}.json"))
}

/// The progress of this process's training; the file goes away when this is dropped (the
/// training ended, failed or was cancelled) or, if the process dies first, is ignored.
pub struct Progress {
    record: ProgressRecord,
    /// Phases still to come after the current one, with their epoch budgets.
    remaining_phases: Vec<(String, usize)>,
    last_write: Option<Instant>,
    /// `finish` was called: the file stays, marked ended.
    finished: bool,
    /// Whether the first batch has run.
    training: bool,
    epoch_started: Instant,
    last_epoch_seconds: Option<f64>,
}

impl Progress {
    /// `phases`: the phases training will go through, in order, with their epoch budgets.
    pub fn start(job_id: Option<i64>, model: &str, user: &str, phases: Vec<(String, usize)>) -> Self {
        let now = unix_now();
        let mut p = Progress {
            record: ProgressRecord {
                pid: my_pid(),
                postmaster_start: postmaster_start(),
                // SAFETY: set when the backend connects.
                database: unsafe { pg_sys::MyDatabaseId }.to_u32(),
                job_id,
                model: model.to_string(),
                user: user.to_string(),
                phase: "starting".into(),
                epoch: 0,
                epochs: 0,
                epoch_progress: 0.0,
                loss: None,
                validation_hr: None,
                validation_ndcg: None,
                samples_per_second: None,
                eta_seconds: None,
                started_at: now,
                updated_at: now,
                ended: false,
            },
            remaining_phases: phases,
            last_write: None,
            finished: false,
            training: false,
            epoch_started: Instant::now(),
            last_epoch_seconds: None,
        };
        p.write();
        p
    }

    /// While the source is read: the rows read so far, in the phase's name.
    pub fn on_rows_read(&mut self, rows: u64) {
        if self.last_write.is_none_or(|t| t.elapsed() >= WRITE_EVERY) {
            self.record.phase = format!("reading source ({rows} rows)");
            self.write();
        }
    }

    /// The phases training will go through, once the configuration is known.
    pub fn set_phases(&mut self, phases: Vec<(String, usize)>) {
        self.remaining_phases = phases;
    }

    /// For a job's worker, once the job's outcome is committed: the file stays a while, marked
    /// ended, so that a statement whose snapshot still sees the job running does not take the
    /// exited worker for a dead one.
    pub fn finish(mut self) {
        self.record.ended = true;
        self.record.eta_seconds = None;
        self.write();
        self.finished = true;
    }

    /// A step outside training (reading the source, storing the model, waiting for a lock).
    pub fn set_phase(&mut self, phase: &str) {
        self.record.phase = phase.to_string();
        self.write();
    }

    /// Between mini-batches: `done` of `total` samples of the current epoch.
    pub fn on_batch(&mut self, done: u64, total: u64) {
        if !self.training {
            // The first batch: training proper begins with the first planned phase.
            self.training = true;
            if !self.remaining_phases.is_empty() {
                let (phase, epochs) = self.remaining_phases.remove(0);
                self.record.phase = phase;
                self.record.epochs = epochs as i32;
            }
        }
        if total > 0 {
            self.record.epoch_progress = (done as f64 / total as f64).clamp(0.0, 1.0);
        }
        if self.last_write.is_none_or(|t| t.elapsed() >= WRITE_EVERY) {
            self.estimate();
            self.write();
        }
    }

    pub fn on_epoch(&mut self, report: &EpochReport) {
        if report.phase != self.record.phase {
            // Entering a new phase: drop it (and any skipped ones) from those still to come.
            if let Some(k) = self.remaining_phases.iter().position(|(p, _)| *p == report.phase) {
                self.remaining_phases.drain(..=k);
            }
        }
        self.record.phase = report.phase.clone();
        self.record.epoch = report.epoch as i32;
        self.record.epochs = report.epochs as i32;
        self.record.epoch_progress = 0.0;
        self.record.loss = Some(report.loss);
        if let Some(v) = report.validation {
            self.record.validation_hr = Some(v.hr);
            self.record.validation_ndcg = Some(v.ndcg);
        }
        self.record.samples_per_second = Some(report.samples_per_second());
        self.last_epoch_seconds = Some(report.seconds);
        self.epoch_started = Instant::now();
        self.estimate();
        self.write();
    }

    fn estimate(&mut self) {
        let r = &self.record;
        let per_epoch = self.last_epoch_seconds.or_else(|| {
            (r.epoch_progress > 0.01).then(|| self.epoch_started.elapsed().as_secs_f64() / r.epoch_progress)
        });
        self.record.eta_seconds = per_epoch.map(|s| {
            let here = (r.epochs - r.epoch) as f64 - r.epoch_progress;
            let later: usize = self.remaining_phases.iter().map(|(_, e)| e).sum();
            // The first epoch's pace stands for the coming phases' too (GMF is cheaper, so
            // this errs long).
            s * (here.max(0.0) + later as f64)
        });
    }

    fn write(&mut self) {
        self.record.updated_at = unix_now();
        self.last_write = Some(Instant::now());
        let path = path_of(self.record.pid);
        let temporary = path.with_extension("tmp");
        // Progress is best effort: a full disk must not fail the training.
        if let Ok(json) = serde_json::to_vec(&self.record) {
            if std::fs::write(&temporary, json).is_ok() {
                let _ = std::fs::rename(&temporary, &path);
            }
        }
    }
}

impl Drop for Progress {
    fn drop(&mut self) {
        if !self.finished {
            let _ = std::fs::remove_file(path_of(self.record.pid));
        }
    }
}

fn process_alive(pid: i32) -> bool {
    // SAFETY: signal 0 only checks that the process exists.
    pid > 0 && unsafe { libc::kill(pid, 0) == 0 || *libc::__errno_location() == libc::EPERM }
}

/// How long a job's ended marker is kept: longer than any statement that could have taken its
/// snapshot before the job's outcome committed and still be reading the view.
const ENDED_KEPT_SECONDS: f64 = 60.0;

/// Every live training's progress on this server, and the jobs that ended in the last minute
/// (`ended`). Stale files are deleted on the way.
pub fn running() -> Vec<ProgressRecord> {
    let Ok(entries) = std::fs::read_dir(DIRECTORY) else { return Vec::new() };
    let mut out = Vec::new();
    for entry in entries.flatten() {
        let name = entry.file_name().to_string_lossy().into_owned();
        if !(name.starts_with(PREFIX) && name.ends_with(".json")) {
            continue;
        }
        let Ok(bytes) = std::fs::read(entry.path()) else { continue };
        let now = unix_now();
        match serde_json::from_slice::<ProgressRecord>(&bytes) {
            Ok(r)
                if r.postmaster_start == postmaster_start()
                    && if r.ended { now - r.updated_at < ENDED_KEPT_SECONDS } else { process_alive(r.pid) } =>
            {
                out.push(r)
            }
            // Torn files cannot happen (rename), so anything else is stale.
            _ => {
                let _ = std::fs::remove_file(entry.path());
            }
        }
    }
    out.sort_by(|a, b| a.started_at.total_cmp(&b.started_at));
    out
}

/// Job ids with a live worker or that ended just now (ids are per database; so is this list).
pub fn live_job_ids() -> Vec<i64> {
    // SAFETY: set when the backend connects.
    let database = unsafe { pg_sys::MyDatabaseId }.to_u32();
    running().into_iter().filter(|r| r.database == database).filter_map(|r| r.job_id).collect()
}

/// The pid of the live process running `job_id`, if any.
pub fn worker_of(job_id: i64) -> Option<i32> {
    // SAFETY: set when the backend connects.
    let database = unsafe { pg_sys::MyDatabaseId }.to_u32();
    running().into_iter().find(|r| r.database == database && r.job_id == Some(job_id) && !r.ended).map(|r| r.pid)
}

/// Every training running in this database right now, as the `neumf_jobs` view shows it; a
/// job that ended in the last minute is listed without its progress fields.
#[allow(clippy::type_complexity)]
#[pg_extern(volatile, parallel_unsafe)]
fn neumf_job_progress() -> TableIterator<
    'static,
    (
        name!(pid, i32),
        name!(job_id, Option<i64>),
        name!(model, String),
        name!(submitted_by, String),
        name!(phase, Option<String>),
        name!(epoch, Option<i32>),
        name!(epochs, Option<i32>),
        name!(epoch_progress, Option<f64>),
        name!(loss, Option<f64>),
        name!(validation_hr, Option<f64>),
        name!(validation_ndcg, Option<f64>),
        name!(samples_per_second, Option<f64>),
        name!(eta_seconds, Option<f64>),
        name!(started_at, f64),
        name!(updated_at, f64),
    ),
> {
    // SAFETY: set when the backend connects.
    let database = unsafe { pg_sys::MyDatabaseId }.to_u32();
    TableIterator::new(running().into_iter().filter(move |r| r.database == database).map(|r| {
        let live = !r.ended;
        (
            r.pid,
            r.job_id,
            r.model,
            r.user,
            live.then_some(r.phase),
            live.then_some(r.epoch),
            live.then_some(r.epochs),
            live.then_some(r.epoch_progress),
            r.loss.filter(|_| live),
            r.validation_hr.filter(|_| live),
            r.validation_ndcg.filter(|_| live),
            r.samples_per_second.filter(|_| live),
            r.eta_seconds.filter(|_| live),
            r.started_at,
            r.updated_at,
        )
    }))
}
