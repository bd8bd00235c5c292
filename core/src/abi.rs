//! The C ABI between the extension (`neumf.so`) and its training library (`neumf_trainer.so`),
//! written once and used by both sides.
//!
//! The extension loads the trainer with dlopen, so nothing at link time checks that the two
//! agree. [`fingerprint`] does at load time: it covers [`ABI_VERSION`], the request's layout and
//! the shape of the JSON `TrainConfig` that crosses the boundary, so a trainer built from other
//! sources is refused with a clear error instead of misreading the request.

use crate::spec::TrainConfig;
use std::ffi::{c_void, CStr};

/// Bumped on any change to [`TrainRequest`] or to what the callbacks mean.
pub const ABI_VERSION: u32 = 3;

/// `extern "C" fn() -> u32`: the trainer's [`ABI_VERSION`] (the one symbol every version has).
pub const ABI_VERSION_SYMBOL: &CStr = c"neumf_trainer_abi_version";
/// `extern "C" fn() -> u64`: the trainer's [`fingerprint`].
pub const FINGERPRINT_SYMBOL: &CStr = c"neumf_trainer_fingerprint";
/// [`TrainFn`].
pub const TRAIN_SYMBOL: &CStr = c"neumf_trainer_train";

/// Finished: `on_done` was called.
pub const TRAIN_DONE: i32 = 0;
/// Failed: `on_error` was called with the reason.
pub const TRAIN_FAILED: i32 = 1;
/// `should_stop` or `on_epoch` asked to stop; nothing else was called.
pub const TRAIN_STOPPED: i32 = 2;

/// One training, as the extension hands it to the trainer.
#[repr(C)]
pub struct TrainRequest {
    /// JSON of [`TrainConfig`], resolved for the data (`validation` decided).
    pub config_json: *const u8,
    pub config_len: usize,
    pub n_users: u64,
    pub n_items: u64,
    /// Interactions: `n` dense (user, item) pairs, and their timestamps (NULL when none).
    pub n: u64,
    pub users: *const u32,
    pub items: *const u32,
    pub ts: *const f64,
    /// Initial weights (safetensors, already mapped onto this data's ids: a warm start), or
    /// NULL and 0 to initialise afresh.
    pub init_weights: *const u8,
    pub init_len: usize,
    pub ctx: *mut c_void,
    /// Polled between mini-batches with the epoch's samples done and its total (0, 0 when not
    /// in an epoch's main loop); true stops training.
    pub should_stop: unsafe extern "C" fn(ctx: *mut c_void, done: u64, total: u64) -> bool,
    /// JSON of an `EpochReport` after each epoch; returns true to stop.
    pub on_epoch: unsafe extern "C" fn(ctx: *mut c_void, json: *const u8, len: usize) -> bool,
    /// The weights (safetensors) and a JSON `TrainSummary`; copy them before returning.
    pub on_done:
        unsafe extern "C" fn(ctx: *mut c_void, weights: *const u8, wlen: usize, summary: *const u8, slen: usize),
    pub on_error: unsafe extern "C" fn(ctx: *mut c_void, message: *const u8, len: usize),
}

/// The trainer's entry point: returns [`TRAIN_DONE`], [`TRAIN_FAILED`] or [`TRAIN_STOPPED`].
pub type TrainFn = unsafe extern "C" fn(*const TrainRequest) -> i32;

/// The shape of `TrainConfig`'s JSON: every key path with its JSON type, sorted, one a line.
pub fn config_shape() -> String {
    fn walk(prefix: &str, v: &serde_json::Value, out: &mut Vec<String>) {
        use serde_json::Value::*;
        let kind = match v {
            Null => "null".to_string(),
            Bool(_) => "bool".to_string(),
            Number(_) => "number".to_string(),
            // Strings are enum values here: the value is part of the shape.
            String(s) => format!("string {s:?}"),
            Array(_) => "array".to_string(),
            Object(map) => {
                for (k, child) in map {
                    walk(&format!("{prefix}.{k}"), child, out);
                }
                "object".to_string()
            }
        };
        out.push(format!("{prefix}: {kind}"));
    }
    // Every optional field set and every variant of each enum, so that each field and each
    // value the trainer must understand appears in the shape.
    use crate::spec::{Architecture, DeviceChoice, LrSchedule, Precision, Sampling};
    let mut samples = Vec::new();
    let base = {
        let mut c = TrainConfig::recommended();
        c.min_rating = Some(0.0);
        c.validation = Some(true);
        c
    };
    for architecture in [Architecture::Gmf, Architecture::Mlp, Architecture::NeuMF] {
        let mut c = base.clone();
        c.spec.architecture = architecture;
        samples.push(c);
    }
    for sampling in [Sampling::Uniform, Sampling::Popularity { exponent: 1.0 }, Sampling::Hard { pool: 2, share: 1.0 }]
    {
        samples.push(TrainConfig { sampling, ..base.clone() });
    }
    for device in [DeviceChoice::Auto, DeviceChoice::Cpu, DeviceChoice::Cuda] {
        samples.push(TrainConfig { device, ..base.clone() });
    }
    for precision in [Precision::Fp32, Precision::Bf16] {
        samples.push(TrainConfig { precision, ..base.clone() });
    }
    for lr_schedule in [LrSchedule::Constant, LrSchedule::Cosine] {
        samples.push(TrainConfig { lr_schedule, ..base.clone() });
    }
    let mut lines = Vec::new();
    for sample in &samples {
        walk("", &serde_json::to_value(sample).expect("TrainConfig serialises"), &mut lines);
    }
    lines.sort();
    lines.dedup();
    lines.join("\n")
}

/// FNV-1a over the ABI version, the request's size and [`config_shape`]: equal on both sides
/// exactly when they were built from the same ABI.
pub fn fingerprint() -> u64 {
    let text = format!("{ABI_VERSION}|{}|{}", std::mem::size_of::<TrainRequest>(), config_shape());
    text.bytes().fold(0xcbf2_9ce4_8422_2325u64, |h, b| (h ^ b as u64).wrapping_mul(0x0000_0100_0000_01b3))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_fingerprint_covers_the_config_shape() {
        let shape = config_shape();
        for key in
            [".factors: number", ".layers: array", ".sampling.kind: string", ".validation: bool", ".min_rating: number"]
        {
            assert!(shape.contains(key), "{key} missing from\n{shape}");
        }
        assert_eq!(fingerprint(), fingerprint());
        assert_ne!(fingerprint(), 0);
    }

    /// What the extension sends is what the trainer reads, for every sampler and option.
    #[test]
    fn the_config_crosses_as_json_unchanged() {
        use crate::spec::{Precision, Sampling};
        for sampling in
            [Sampling::Uniform, Sampling::Popularity { exponent: 0.5 }, Sampling::Hard { pool: 4, share: 0.25 }]
        {
            let mut cfg = TrainConfig::recommended();
            cfg.sampling = sampling;
            cfg.min_rating = Some(3.5);
            cfg.validation = Some(false);
            cfg.precision = Precision::Bf16;
            let json = serde_json::to_vec(&cfg).unwrap();
            assert_eq!(serde_json::from_slice::<TrainConfig>(&json).unwrap(), cfg);
        }
    }
}
