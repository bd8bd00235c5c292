//! pgrx-free core of neumf: everything that can be tested with plain `cargo test`.
//!
//! | module      | what it holds                                                        |
//! |-------------|----------------------------------------------------------------------|
//! | [`spec`]    | architecture + hyper-parameters, and their validation               |
//! | [`ids`]     | external ids (bigint or text) ↔ dense indices                        |
//! | [`dataset`] | deduplicated implicit interactions, per-user seen lists, popularity |
//! | [`model`]   | GMF / MLP / NeuMF as libtorch modules (training side)              |
//! | [`optim`]   | Adam/AdamW for CPU training in one pass over parameter memory      |
//! | [`train`]   | the training loop: fresh exact negatives each epoch, BCE, Adam      |
//! | [`codec`]   | one safetensors blob: weights + id maps + seen lists                |
//! | [`infer`]   | the lean CPU scoring kernel used for serving (no libtorch per call) |
//! | [`metrics`] | HR@K / NDCG@K                                                       |
//! | [`holdout`] | leave-one-out validation split with fixed negatives                 |
//! | [`eval`]    | sampled and full-catalogue ranking metrics for any scorer           |

pub mod codec;
pub mod dataset;
pub mod eval;
pub mod holdout;
pub mod ids;
pub mod infer;
pub mod metrics;
pub mod model;
pub mod optim;
pub mod spec;
pub mod train;
