//! neumf's training library: everything that needs libtorch, behind a small C ABI.
//!
//! The extension's own library (`neumf.so`) does not link libtorch, so serving backends never
//! map it: no ~300 ms load on a connection's first call, no gigabytes of libraries in the
//! postmaster making every fork slow. `neumf_train` loads this library with dlopen on first
//! use and calls [`neumf_trainer_train`] on the backend's main thread.
//!
//! The ABI itself is `neumf_core::abi`, shared with the extension.
//! Contract: data arrives as raw arrays (dense user/item indices, optional timestamps) and a
//! JSON `TrainConfig`; progress and results go back through callbacks, which copy what they
//! need. No Rust panic crosses the boundary in either direction: libtorch panics are caught
//! here and reported through `on_error`; the caller's callbacks return flags instead of raising.

use neumf_core::abi::{fingerprint, TrainFn, TrainRequest, ABI_VERSION, TRAIN_DONE, TRAIN_FAILED, TRAIN_STOPPED};
use neumf_core::codec::{decode_weights, encode_weights};
use neumf_core::dataset::Interactions;
use neumf_core::holdout::leave_one_out;
use neumf_core::progress::EpochReport;
use neumf_core::spec::TrainConfig;
use neumf_core::train::{train_and_refit_from, train_from, TrainObserver};
use std::panic::{catch_unwind, AssertUnwindSafe};

// The exported names are `neumf_core::abi`'s *_SYMBOL constants.
#[no_mangle]
pub extern "C" fn neumf_trainer_abi_version() -> u32 {
    ABI_VERSION
}

#[no_mangle]
pub extern "C" fn neumf_trainer_fingerprint() -> u64 {
    fingerprint()
}

struct Bridge<'a> {
    req: &'a TrainRequest,
    stopped: bool,
}

impl TrainObserver for Bridge<'_> {
    fn on_batch(&mut self, done: usize, total: usize) -> anyhow::Result<()> {
        // SAFETY: the caller guarantees the callbacks and ctx stay valid for the call.
        if unsafe { (self.req.should_stop)(self.req.ctx, done as u64, total as u64) } {
            self.stopped = true;
            anyhow::bail!("stopped");
        }
        Ok(())
    }
    fn on_epoch(&mut self, report: &EpochReport) -> anyhow::Result<()> {
        let json = serde_json::to_vec(report)?;
        if unsafe { (self.req.on_epoch)(self.req.ctx, json.as_ptr(), json.len()) } {
            self.stopped = true;
            anyhow::bail!("stopped");
        }
        Ok(())
    }
}

fn run(req: &TrainRequest, bridge: &mut Bridge<'_>) -> anyhow::Result<(Vec<u8>, Vec<u8>)> {
    let config = unsafe { std::slice::from_raw_parts(req.config_json, req.config_len) };
    let cfg: TrainConfig = serde_json::from_slice(config)?;
    let n = req.n as usize;
    let (users, items) =
        unsafe { (std::slice::from_raw_parts(req.users, n), std::slice::from_raw_parts(req.items, n)) };
    let ts = (!req.ts.is_null()).then(|| unsafe { std::slice::from_raw_parts(req.ts, n) });
    let data = Interactions::from_pairs(req.n_users as usize, req.n_items as usize, users, items, ts);
    let init = match req.init_len {
        0 => None,
        len => Some(decode_weights(unsafe { std::slice::from_raw_parts(req.init_weights, len) })?),
    };
    let init = init.as_ref();
    let outcome = if cfg.validation == Some(true) {
        let (part, holdout) = leave_one_out(&data, 99, cfg.seed);
        if cfg.refit {
            train_and_refit_from(&data, &part, &holdout, &cfg, init, bridge)?
        } else {
            train_from(&part, Some(&holdout), &cfg, init, bridge)?
        }
    } else {
        train_from(&data, None, &cfg, init, bridge)?
    };
    Ok((encode_weights(&outcome.weights)?, serde_json::to_vec(&outcome.summary)?))
}

/// Trains as `req` says. Returns [`TRAIN_DONE`], [`TRAIN_FAILED`] or [`TRAIN_STOPPED`].
///
/// # Safety
/// `req` and every pointer in it must be valid for the duration of the call, the arrays of the
/// stated lengths.
#[no_mangle]
pub unsafe extern "C" fn neumf_trainer_train(req: *const TrainRequest) -> i32 {
    let req = &*req;
    let mut bridge = Bridge { req, stopped: false };
    let result = catch_unwind(AssertUnwindSafe(|| run(req, &mut bridge)));
    let error = match result {
        Ok(Ok((weights, summary))) => {
            (req.on_done)(req.ctx, weights.as_ptr(), weights.len(), summary.as_ptr(), summary.len());
            return TRAIN_DONE;
        }
        _ if bridge.stopped => return TRAIN_STOPPED,
        Ok(Err(e)) => {
            let mut m = e.to_string();
            for cause in e.chain().skip(1) {
                m.push_str(&format!(": {cause}"));
            }
            m
        }
        Err(panic) => panic
            .downcast_ref::<String>()
            .cloned()
            .or_else(|| panic.downcast_ref::<&str>().map(|s| s.to_string()))
            .unwrap_or_else(|| "libtorch panicked".into()),
    };
    (req.on_error)(req.ctx, error.as_ptr(), error.len());
    TRAIN_FAILED
}

// The entry point has exactly the type the extension calls it through.
const _: TrainFn = neumf_trainer_train;
