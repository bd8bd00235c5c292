//! Calls the training library, `$libdir/neumf_trainer.so`, which holds everything that needs
//! libtorch. It is loaded (dlopen) on the first `neumf_train` of a backend, so serving backends
//! and the postmaster never map libtorch. See trainer/src/lib.rs for the C ABI.
//!
//! Callbacks run on this backend's main thread, inside the trainer's call. PostgreSQL errors
//! raised in them (query cancel, statement_timeout) must not unwind through the trainer's
//! frames: they are caught here, stashed, the trainer is told to stop, and the error is raised
//! again once the trainer has returned and freed its tensors.

use crate::errors::internal;
use crate::job_progress::Progress;
use neumf_core::abi::{
    fingerprint, TrainFn, TrainRequest, ABI_VERSION, ABI_VERSION_SYMBOL, FINGERPRINT_SYMBOL, TRAIN_DONE, TRAIN_STOPPED,
    TRAIN_SYMBOL,
};
use neumf_core::codec::{decode_weights, Tensor32};
use neumf_core::dataset::Interactions;
use neumf_core::progress::{EpochReport, TrainSummary};
use neumf_core::spec::TrainConfig;
use pgrx::prelude::*;
use std::any::Any;
use std::collections::BTreeMap;
use std::ffi::{c_void, CStr, CString};
use std::panic::{catch_unwind, resume_unwind, AssertUnwindSafe};
use std::sync::OnceLock;

fn library_path() -> String {
    // SAFETY: pkglib_path is a NUL-terminated path PostgreSQL sets at startup.
    let dir = unsafe { CStr::from_ptr(std::ptr::addr_of!(pg_sys::pkglib_path).cast()) };
    format!("{}/neumf_trainer.so", dir.to_string_lossy())
}

fn load() -> Result<TrainFn, String> {
    let path = library_path();
    let c_path = CString::new(path.clone()).map_err(|e| e.to_string())?;
    let dl_error = || unsafe {
        let e = libc::dlerror();
        if e.is_null() {
            "unknown error".to_string()
        } else {
            CStr::from_ptr(e).to_string_lossy().into_owned()
        }
    };
    // SAFETY: plain dlopen/dlsym; the library stays loaded for the backend's life.
    unsafe {
        let handle = libc::dlopen(c_path.as_ptr(), libc::RTLD_NOW | libc::RTLD_LOCAL);
        if handle.is_null() {
            return Err(format!("could not load {path}: {}", dl_error()));
        }
        let version = libc::dlsym(handle, ABI_VERSION_SYMBOL.as_ptr());
        let train = libc::dlsym(handle, TRAIN_SYMBOL.as_ptr());
        if version.is_null() || train.is_null() {
            return Err(format!("{path} is not neumf's trainer library"));
        }
        let version: extern "C" fn() -> u32 = std::mem::transmute(version);
        if version() != ABI_VERSION {
            return Err(format!("{path} speaks trainer ABI {} but this neumf.so needs {ABI_VERSION}", version()));
        }
        // Same ABI version, but built from other sources (e.g. a TrainConfig field added
        // without a version bump): refuse rather than misread the configuration.
        let theirs = libc::dlsym(handle, FINGERPRINT_SYMBOL.as_ptr());
        if theirs.is_null() {
            return Err(format!("{path} has no ABI fingerprint"));
        }
        let theirs: extern "C" fn() -> u64 = std::mem::transmute(theirs);
        if theirs() != fingerprint() {
            return Err(format!("{path} was built from other sources than this neumf.so (ABI fingerprints differ)"));
        }
        Ok(std::mem::transmute::<*mut c_void, TrainFn>(train))
    }
}

/// The trainer's entry point, loaded once per backend.
fn entry() -> TrainFn {
    static ENTRY: OnceLock<Result<usize, String>> = OnceLock::new();
    match ENTRY.get_or_init(|| load().map(|f| f as usize)) {
        // SAFETY: the address came from dlsym of a function with this signature.
        Ok(addr) => unsafe { std::mem::transmute::<usize, TrainFn>(*addr) },
        Err(e) => crate::errors::raise(
            pgrx::PgSqlErrorCode::ERRCODE_UNDEFINED_FILE,
            format!("neumf's training library is unavailable: {e}"),
            Some("Reinstall neumf (scripts/install.sh installs neumf_trainer.so beside neumf.so)."),
        ),
    }
}

struct Context<'a> {
    model: &'a str,
    progress: Option<&'a mut Progress>,
    /// A PostgreSQL error caught in a callback, raised again after the trainer returns.
    pending: Option<Box<dyn Any + Send>>,
    weights: Vec<u8>,
    summary: Vec<u8>,
    error: String,
}

unsafe extern "C" fn should_stop(ctx: *mut c_void, done: u64, total: u64) -> bool {
    let ctx = &mut *(ctx as *mut Context);
    if ctx.pending.is_some() {
        return true;
    }
    if let Some(progress) = ctx.progress.as_deref_mut() {
        progress.on_batch(done, total);
    }
    // ProcessInterrupts raises for cancel / timeout / termination and returns for the rest.
    match catch_unwind(|| {
        pg_sys::check_for_interrupts!();
    }) {
        Ok(()) => false,
        Err(e) => {
            ctx.pending = Some(e);
            true
        }
    }
}

unsafe extern "C" fn on_epoch(ctx: *mut c_void, json: *const u8, len: usize) -> bool {
    let ctx = &mut *(ctx as *mut Context);
    let bytes = std::slice::from_raw_parts(json, len);
    let model = ctx.model;
    let shown = catch_unwind(AssertUnwindSafe(|| {
        if let Ok(r) = serde_json::from_slice::<EpochReport>(bytes) {
            if let Some(progress) = ctx.progress.as_deref_mut() {
                progress.on_epoch(&r);
            }
            let validation = r
                .validation
                .map(|v| format!(", validation HR@{k} {:.4} NDCG@{k} {:.4}", v.hr, v.ndcg, k = v.k))
                .unwrap_or_default();
            notice!(
                "neumf \"{model}\" {} epoch {}/{}: loss {:.4}{validation}, {} samples in {:.2} s ({:.0} samples/s)",
                r.phase,
                r.epoch,
                r.epochs,
                r.loss,
                r.samples,
                r.seconds,
                r.samples_per_second()
            );
        }
    }));
    if let Err(e) = shown {
        ctx.pending = Some(e);
        return true;
    }
    false
}

unsafe extern "C" fn on_done(ctx: *mut c_void, w: *const u8, wlen: usize, s: *const u8, slen: usize) {
    let ctx = &mut *(ctx as *mut Context);
    ctx.weights = std::slice::from_raw_parts(w, wlen).to_vec();
    ctx.summary = std::slice::from_raw_parts(s, slen).to_vec();
}

unsafe extern "C" fn on_error(ctx: *mut c_void, m: *const u8, len: usize) {
    let ctx = &mut *(ctx as *mut Context);
    ctx.error = String::from_utf8_lossy(std::slice::from_raw_parts(m, len)).into_owned();
}

/// Trains `cfg` on `data` in the trainer library; with `cfg.validation`, on all but each
/// user's latest interaction, validated on those. `init`: initial weights (safetensors, mapped
/// onto `data`'s ids) for a warm start. `progress` sees every batch and epoch.
pub fn train(
    data: &Interactions,
    cfg: &TrainConfig,
    model: &str,
    init: Option<&[u8]>,
    progress: Option<&mut Progress>,
) -> (BTreeMap<String, Tensor32>, TrainSummary) {
    let train = entry();
    let config = serde_json::to_vec(cfg).unwrap_or_else(|e| internal("encoding the training configuration", &e.into()));
    let mut ctx =
        Context { model, progress, pending: None, weights: Vec::new(), summary: Vec::new(), error: String::new() };
    let init = init.unwrap_or(&[]);
    let req = TrainRequest {
        config_json: config.as_ptr(),
        config_len: config.len(),
        n_users: data.n_users() as u64,
        n_items: data.n_items() as u64,
        n: data.len() as u64,
        users: data.users.as_ptr(),
        items: data.items.as_ptr(),
        ts: data.ts.as_ref().map_or(std::ptr::null(), |t| t.as_ptr()),
        init_weights: init.as_ptr(),
        init_len: init.len(),
        ctx: &mut ctx as *mut Context as *mut c_void,
        should_stop,
        on_epoch,
        on_done,
        on_error,
    };
    // SAFETY: every pointer in req outlives the call; the callbacks match the ABI.
    let status = unsafe { train(&req) };
    if let Some(error) = ctx.pending.take() {
        resume_unwind(error);
    }
    match status {
        TRAIN_DONE => {}
        TRAIN_STOPPED => {
            // Stopped without a pending error (should not happen): honour any interrupt anyway.
            pg_sys::check_for_interrupts!();
            internal("training failed", &anyhow::anyhow!("the trainer stopped unexpectedly"))
        }
        _ => internal("training failed", &anyhow::anyhow!(ctx.error)),
    }
    let weights = decode_weights(&ctx.weights).unwrap_or_else(|e| internal("reading the trained weights", &e));
    let summary: TrainSummary =
        serde_json::from_slice(&ctx.summary).unwrap_or_else(|e| internal("reading the training summary", &e.into()));
    (weights, summary)
}
