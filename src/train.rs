//! `neumf_train`: read the source, train with libtorch (CUDA when present), store a new version
//! in the caller's transaction, and activate it.

use crate::errors::{internal, invalid_argument, OrRaise};
use crate::{guc, source, storage};
use neumf_core::codec::ModelArtifact;
use neumf_core::spec::{Architecture, DeviceChoice, ModelSpec, TrainConfig};
use neumf_core::train::{train, EpochReport, TrainObserver};
use pgrx::prelude::*;
use serde_json::json;
use std::collections::BTreeMap;
use std::panic::{catch_unwind, resume_unwind, AssertUnwindSafe};

/// Checks for query cancel / statement_timeout between batches and reports each epoch.
struct SqlProgress<'a> {
    model: &'a str,
}

impl TrainObserver for SqlProgress<'_> {
    fn on_batch(&mut self) -> anyhow::Result<()> {
        pg_sys::check_for_interrupts!();
        Ok(())
    }
    fn on_epoch(&mut self, r: &EpochReport) -> anyhow::Result<()> {
        notice!(
            "neumf \"{}\" epoch {}/{}: loss {:.4}, {} samples in {:.2} s ({:.0} samples/s)",
            self.model,
            r.epoch,
            r.epochs,
            r.loss,
            r.samples,
            r.seconds,
            r.samples_per_second()
        );
        Ok(())
    }
}

fn positive(name: &str, value: i64) -> usize {
    if value <= 0 {
        invalid_argument(format!("{name} must be positive, got {value}"));
    }
    value as usize
}

/// Trains a model from `source` (a table name or a query with user_id, item_id [, rating]
/// [, ts]) and stores it as the next version of `model`. `layers` defaults to
/// [8f, 4f, 2f, f] for factors f (the paper's tower, 64-32-16-8 at f = 8).
// pgrx needs the row tuple spelled out in the signature, hence the long type.
#[allow(clippy::too_many_arguments, clippy::type_complexity)]
#[pg_extern(volatile, parallel_unsafe)]
fn neumf_train(
    model: &str,
    source: &str,
    architecture: default!(&str, "'neumf'"),
    factors: default!(i32, 8),
    layers: default!(Option<Vec<i32>>, "NULL"),
    epochs: default!(i32, 20),
    batch_size: default!(i32, 256),
    learning_rate: default!(f64, 0.001),
    negatives: default!(i32, 4),
    min_rating: default!(Option<f64>, "NULL"),
    seed: default!(i64, 42),
    device: default!(&str, "'auto'"),
    activate: default!(bool, true),
) -> TableIterator<
    'static,
    (
        name!(model_name, String),
        name!(version, i32),
        name!(active, bool),
        name!(device_used, String),
        name!(users, i64),
        name!(items, i64),
        name!(interactions, i64),
        name!(rows_read, i64),
        name!(skipped_null_ids, i64),
        name!(skipped_below_min_rating, i64),
        name!(duplicates, i64),
        name!(epochs_run, i32),
        name!(final_loss, f64),
        name!(train_seconds, f64),
        name!(samples_per_second, f64),
        name!(size_bytes, i64),
    ),
> {
    let model_name = model.trim();
    if model_name.is_empty() {
        invalid_argument("model name is empty");
    }
    let arch = Architecture::parse(architecture).unwrap_or_else(|e| invalid_argument(e));
    let f = positive("factors", factors as i64);
    let layers: Vec<usize> = match layers {
        None => vec![8 * f, 4 * f, 2 * f, f],
        Some(l) => l
            .iter()
            .map(|&w| positive("every layer width", w as i64))
            .collect(),
    };
    let cfg = TrainConfig {
        spec: ModelSpec {
            architecture: arch,
            factors: f,
            layers,
        },
        epochs: positive("epochs", epochs as i64),
        batch_size: positive("batch_size", batch_size as i64),
        learning_rate,
        negatives: positive("negatives", negatives as i64),
        seed: seed as u64,
        device: DeviceChoice::parse(device).unwrap_or_else(|e| invalid_argument(e)),
        threads: guc::TRAIN_THREADS.get() as usize,
    };
    cfg.validate().unwrap_or_else(|e| invalid_argument(e));
    if let Some(m) = min_rating {
        if !m.is_finite() {
            invalid_argument(format!("min_rating must be a finite number, got {m}"));
        }
    }

    storage::lock_for_training(model_name);
    let shape = source::describe(source);
    let data = source::read(&shape, min_rating);
    let skipped = &data.skipped;
    if data.is_empty() {
        invalid_argument(format!(
            "source produced no interactions to train on ({} rows read; skipped: {} NULL user ids, {} NULL item ids, {} below min_rating)",
            data.rows_read, skipped.null_user, skipped.null_item, skipped.below_min_rating
        ));
    }
    notice!(
        "neumf \"{model_name}\": {} rows read → {} users, {} items, {} interactions (skipped {} NULL ids, {} below min_rating; {} duplicates collapsed)",
        data.rows_read,
        data.n_users(),
        data.n_items(),
        data.len(),
        skipped.null_user + skipped.null_item,
        skipped.below_min_rating,
        skipped.duplicates
    );

    // libtorch failures (e.g. CUDA out of memory) surface as Rust panics; turn them into clean
    // ERRORs, but let PostgreSQL's own errors (query cancel, statement_timeout) pass unchanged.
    let mut progress = SqlProgress { model: model_name };
    let outcome = match catch_unwind(AssertUnwindSafe(|| train(&data, &cfg, &mut progress))) {
        Ok(Ok(outcome)) => outcome,
        Ok(Err(e)) => internal("training failed", &e),
        Err(payload) => {
            if payload
                .downcast_ref::<pg_sys::panic::CaughtError>()
                .is_some()
            {
                resume_unwind(payload);
            }
            let text = payload
                .downcast_ref::<String>()
                .cloned()
                .or_else(|| payload.downcast_ref::<&str>().map(|s| s.to_string()))
                .unwrap_or_else(|| "libtorch panicked".into());
            internal("training failed", &anyhow::anyhow!(text))
        }
    };
    let samples_per_second = outcome.samples as f64 / outcome.seconds.max(1e-9);

    let artifact = ModelArtifact {
        spec: cfg.spec.clone(),
        weights: outcome.weights,
        user_ids: data.user_ids.clone(),
        item_ids: data.item_ids.clone(),
        seen_ptr: data.user_ptr.clone(),
        seen_items: data.items.clone(),
        popularity: data.popularity.clone(),
    };
    let version = storage::next_version(model_name);
    let meta = BTreeMap::from([
        ("model".to_string(), model_name.to_string()),
        ("version".to_string(), version.to_string()),
    ]);
    let blob = artifact.encode(&meta).or_raise("encoding the model");
    let hyperparameters = json!({
        "factors": cfg.spec.factors,
        "layers": cfg.spec.layers,
        "epochs": cfg.epochs,
        "batch_size": cfg.batch_size,
        "learning_rate": cfg.learning_rate,
        "negatives": cfg.negatives,
        "min_rating": min_rating,
        "seed": cfg.seed,
        "device": device,
        "threads": cfg.threads,
        "optimizer": "adam",
        "loss": "bce",
        "sampling": "uniform",
    });
    let rows_skipped = json!({
        "null_user_id": skipped.null_user,
        "null_item_id": skipped.null_item,
        "below_min_rating": skipped.below_min_rating,
        "duplicates": skipped.duplicates,
    });
    let metrics = json!({
        "loss_per_epoch": outcome.epochs.iter().map(|e| e.loss).collect::<Vec<_>>(),
        "samples_per_second": samples_per_second,
    });
    storage::insert_version(
        &storage::NewVersion {
            model: model_name,
            version,
            architecture: arch.as_str(),
            hyperparameters,
            user_id_type: data.user_ids.kind().as_str(),
            item_id_type: data.item_ids.kind().as_str(),
            n_users: data.n_users() as i64,
            n_items: data.n_items() as i64,
            n_interactions: data.len() as i64,
            rows_read: data.rows_read as i64,
            rows_skipped,
            metrics,
            final_loss: outcome.final_loss,
            train_seconds: outcome.seconds,
            device: &outcome.device,
            source: source.trim(),
        },
        &blob,
    );
    if activate {
        storage::activate(model_name, version);
    }
    TableIterator::once((
        model_name.to_string(),
        version,
        activate,
        outcome.device,
        data.n_users() as i64,
        data.n_items() as i64,
        data.len() as i64,
        data.rows_read as i64,
        (skipped.null_user + skipped.null_item) as i64,
        skipped.below_min_rating as i64,
        skipped.duplicates as i64,
        cfg.epochs as i32,
        outcome.final_loss,
        outcome.seconds,
        samples_per_second,
        blob.len() as i64,
    ))
}
