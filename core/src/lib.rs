//! pgrx-free core of neumf: everything that can be tested with plain `cargo test`.
//! The `torch` feature (default) adds training with libtorch (`model`, `optim`, `train`);
//! serving code builds without it.
//!
//! | module      | what it holds                                                        |
//! |-------------|----------------------------------------------------------------------|
//! | [`spec`]    | architecture + hyper-parameters, and their validation               |
//! | [`options`] | `neumf_train`'s SQL options → a `TrainConfig` (defaults, checks), model names |
//! | [`abi`]     | the C ABI between the extension and its training library           |
//! | [`ids`]     | external ids (bigint or text) ↔ dense indices                        |
//! | [`dataset`] | deduplicated implicit interactions, per-user seen lists, popularity |
//! | [`model`]   | GMF / MLP / NeuMF as libtorch modules (training side)              |
//! | [`optim`]   | Adam/AdamW for CPU training in one pass over parameter memory      |
//! | [`train`]   | the training loop: fresh exact negatives each epoch, BCE, Adam      |
//! | [`codec`]   | one safetensors blob: weights + id maps + seen lists                |
//! | [`infer`]   | the lean CPU scoring kernel used for serving (no libtorch per call) |
//! | [`slab`]    | read-only arrays that own their memory or borrow a mapped image     |
//! | [`image`]   | the serving image: a scoring model as one file, used in place       |
//! | [`image_store`] | image files: build once, publish atomically, verify, reclaim    |
//! | [`progress`]| what training reports (epochs, summary), serialisable              |
//! | [`metrics`] | HR@K / NDCG@K                                                       |
//! | [`holdout`] | leave-one-out validation split with fixed negatives                 |
//! | [`eval`]    | sampled and full-catalogue ranking metrics for any scorer           |
//! | [`warm`]    | warm start: a stored version's weights mapped onto new data's ids   |
//! | [`failure`] | failures with a known remedy (out of memory), from libtorch's text  |

pub mod abi;
pub mod codec;
pub mod dataset;
pub mod eval;
pub mod failure;
pub mod holdout;
pub mod ids;
pub mod image;
pub mod image_store;
pub mod infer;
pub mod metrics;
#[cfg(feature = "torch")]
pub mod model;
#[cfg(feature = "torch")]
pub mod optim;
pub mod options;
pub mod progress;
pub mod slab;
pub mod spec;
#[cfg(feature = "torch")]
pub mod train;
pub mod warm;
