//! `neumf_train`: read the source, train in the trainer library (libtorch, CUDA when present;
//! see src/trainer.rs), store a new version in the caller's transaction, and activate it.

use crate::errors::{invalid_argument, OrRaise};
use crate::{guc, source, storage, trainer};
use neumf_core::codec::ModelArtifact;
use neumf_core::dataset::Interactions;
use neumf_core::spec::{default_layers, Architecture, DeviceChoice, LrSchedule, Precision, Sampling, TrainConfig};
use pgrx::prelude::*;
use serde_json::json;
use std::collections::BTreeMap;

fn positive(name: &str, value: i64) -> usize {
    if value <= 0 {
        invalid_argument(format!("{name} must be positive, got {value}"));
    }
    value as usize
}

/// Users with at least two interactions can give one to a validation holdout; it is worth it
/// from this many such users on.
const MIN_VALIDATION_USERS: usize = 10;

/// Whether to hold out each user's latest interaction for validation.
fn use_validation(data: &Interactions, requested: Option<bool>) -> bool {
    let eligible = (0..data.n_users()).filter(|&u| data.user_ptr[u + 1] - data.user_ptr[u] >= 2).count();
    match requested {
        Some(false) => false,
        Some(true) if eligible == 0 => {
            invalid_argument("validation => true needs users with at least two interactions; this source has none")
        }
        Some(true) => true,
        None => eligible >= MIN_VALIDATION_USERS,
    }
}

/// Trains a model from `source` (a table name or a query with user_id, item_id [, rating]
/// [, ts]) and stores it as the next version of `model`. Options left NULL take the recommended
/// defaults (`TrainConfig::recommended`, README); `layers` defaults to [8f, 4f, 2f, f].
#[allow(clippy::too_many_arguments, clippy::type_complexity)]
#[pg_extern(volatile, parallel_unsafe)]
fn neumf_train(
    model: &str,
    source: &str,
    architecture: default!(&str, "'neumf'"),
    factors: default!(Option<i32>, "NULL"),
    layers: default!(Option<Vec<i32>>, "NULL"),
    epochs: default!(Option<i32>, "NULL"),
    batch_size: default!(Option<i32>, "NULL"),
    learning_rate: default!(Option<f64>, "NULL"),
    negatives: default!(Option<i32>, "NULL"),
    min_rating: default!(Option<f64>, "NULL"),
    seed: default!(i64, 42),
    device: default!(&str, "'auto'"),
    activate: default!(bool, true),
    sampling: default!(Option<&str>, "NULL"),
    popularity_exponent: default!(f64, 0.75),
    hard_pool: default!(i32, 8),
    hard_share: default!(f64, 0.5),
    weight_decay: default!(Option<f64>, "NULL"),
    dropout: default!(Option<f64>, "NULL"),
    lr_schedule: default!(Option<&str>, "NULL"),
    validation: default!(Option<bool>, "NULL"),
    patience: default!(Option<i32>, "NULL"),
    pretrain: default!(Option<bool>, "NULL"),
    refit: default!(Option<bool>, "NULL"),
    recency_weight: default!(Option<f64>, "NULL"),
    recency_half_life: default!(Option<f64>, "NULL"),
    mixed_precision: default!(bool, false),
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
        name!(best_epoch, i32),
        name!(validation_hr, Option<f64>),
        name!(validation_ndcg, Option<f64>),
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
    let mut cfg = TrainConfig::recommended();
    cfg.spec.architecture = Architecture::parse(architecture).unwrap_or_else(|e| invalid_argument(e));
    if let Some(f) = factors {
        cfg.spec.factors = positive("factors", f as i64);
        cfg.spec.layers = default_layers(cfg.spec.factors);
    }
    if let Some(l) = layers {
        cfg.spec.layers = l.iter().map(|&w| positive("every layer width", w as i64)).collect();
    }
    if let Some(e) = epochs {
        cfg.epochs = positive("epochs", e as i64);
    }
    if let Some(b) = batch_size {
        cfg.batch_size = positive("batch_size", b as i64);
    }
    cfg.learning_rate = learning_rate.unwrap_or_else(|| TrainConfig::scaled_learning_rate(cfg.batch_size));
    if let Some(n) = negatives {
        cfg.negatives = positive("negatives", n as i64);
    }
    cfg.seed = seed as u64;
    cfg.device = DeviceChoice::parse(device).unwrap_or_else(|e| invalid_argument(e));
    cfg.threads = guc::TRAIN_THREADS.get() as usize;
    if let Some(name) = sampling {
        let pool = positive("hard_pool", hard_pool as i64);
        cfg.sampling =
            Sampling::parse(name, popularity_exponent, pool, hard_share).unwrap_or_else(|e| invalid_argument(e));
    }
    cfg.weight_decay = weight_decay.unwrap_or(cfg.weight_decay);
    cfg.dropout = dropout.unwrap_or(cfg.dropout);
    if let Some(s) = lr_schedule {
        cfg.lr_schedule = LrSchedule::parse(s).unwrap_or_else(|e| invalid_argument(e));
    }
    if let Some(p) = patience {
        if p < 0 {
            invalid_argument(format!("patience must be 0 (never stop early) or positive, got {p}"));
        }
        cfg.patience = p as usize;
    }
    // Pretraining is NeuMF's; the other architectures simply do not default to it.
    cfg.pretrain = pretrain.unwrap_or(cfg.pretrain && cfg.spec.architecture == Architecture::NeuMF);
    cfg.refit = refit.unwrap_or(cfg.refit);
    cfg.recency_weight = recency_weight.unwrap_or(cfg.recency_weight);
    cfg.recency_half_life = recency_half_life.unwrap_or(cfg.recency_half_life);
    cfg.precision = if mixed_precision { Precision::Bf16 } else { Precision::Fp32 };
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
    if weight_decay.is_none() {
        // The recommended decay is a timescale in epochs, so it needs the data's size (and
        // is always valid: learning_rate × weight_decay = 1 / (5 × steps per epoch) ≤ 0.2).
        cfg = cfg.with_recommended_weight_decay(data.len());
    }
    let validate = use_validation(&data, validation);
    if recency_weight.is_some_and(|w| w > 0.0) && data.ts.is_none() {
        notice!(
            "neumf \"{model_name}\": recency_weight is ignored: the source has no ts column to order interactions by"
        );
    }
    notice!(
        "neumf \"{model_name}\": {} rows read → {} users, {} items, {} interactions (skipped {} NULL ids, {} below min_rating; {} duplicates collapsed){}",
        data.rows_read,
        data.n_users(),
        data.n_items(),
        data.len(),
        skipped.null_user + skipped.null_item,
        skipped.below_min_rating,
        skipped.duplicates,
        if validate {
            format!(
                "; each user's {} interaction held out for validation",
                if data.ts.is_some() { "latest (by ts)" } else { "random" }
            )
        } else {
            String::new()
        }
    );
    let (weights, outcome) = trainer::train(&data, &cfg, validate, model_name);
    let samples_per_second = outcome.samples as f64 / outcome.seconds.max(1e-9);

    // Seen lists and popularity come from all the data: the holdout items are the user's too.
    let artifact = ModelArtifact::new(cfg.spec.clone(), weights, &data);
    let version = storage::next_version(model_name);
    let meta =
        BTreeMap::from([("model".to_string(), model_name.to_string()), ("version".to_string(), version.to_string())]);
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
        "optimizer": if cfg.weight_decay > 0.0 { "adamw" } else { "adam" },
        "loss": "bce",
        "sampling": cfg.sampling,
        "weight_decay": cfg.weight_decay,
        "dropout": cfg.dropout,
        "lr_schedule": cfg.lr_schedule,
        "validation": validate,
        "patience": cfg.patience,
        "pretrain": cfg.pretrain,
        "finetune_lr_factor": cfg.finetune_lr_factor,
        "refit": outcome.refit,
        // Recency weighting needs timestamps; without them every positive weighed the same.
        "recency_weight": if data.ts.is_some() { cfg.recency_weight } else { 0.0 },
        "recency_half_life": cfg.recency_half_life,
        "precision": cfg.precision.as_str(),
    });
    let rows_skipped = json!({
        "null_user_id": skipped.null_user,
        "null_item_id": skipped.null_item,
        "below_min_rating": skipped.below_min_rating,
        "duplicates": skipped.duplicates,
    });
    let metrics = json!({
        "validation": outcome.validation,
        "validation_users": outcome.holdout_users,
        "best_epoch": outcome.best_epoch,
        "samples_per_second": samples_per_second,
        "epochs": outcome.epochs.iter().map(|e| json!({
            "phase": e.phase, "epoch": e.epoch, "loss": e.loss, "seconds": e.seconds,
            "learning_rate": e.learning_rate,
            "hr": e.validation.map(|v| v.hr), "ndcg": e.validation.map(|v| v.ndcg),
        })).collect::<Vec<_>>(),
    });
    storage::insert_version(
        &storage::NewVersion {
            model: model_name,
            version,
            architecture: cfg.spec.architecture.as_str(),
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
        outcome.epochs.iter().filter(|e| e.phase == cfg.spec.architecture.as_str()).count() as i32,
        outcome.best_epoch as i32,
        outcome.validation.map(|v| v.hr),
        outcome.validation.map(|v| v.ndcg),
        outcome.final_loss,
        outcome.seconds,
        samples_per_second,
        blob.len() as i64,
    ))
}
