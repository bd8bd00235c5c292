//! `neumf_train`: SQL options → `TrainConfig` (`neumf_core::options`, where every default and
//! check lives), then [`run`]: read the source, train in the trainer library (libtorch, CUDA
//! when present; see src/trainer.rs), and [`record`] a new version in the caller's transaction.

use crate::errors::{bad_model_name, corrupted, invalid_argument_hint, required, wrong_state, OrRaise};
use crate::job_progress::Progress;
use crate::{guc, jobs, source, storage, trainer};
use neumf_core::codec::{encode_weights, ModelArtifact};
use neumf_core::dataset::Interactions;
use neumf_core::options::{check_model_name, OptionError, TrainOptions};
use neumf_core::progress::TrainSummary;
use neumf_core::spec::TrainConfig;
use neumf_core::warm::warm_start_weights;
use pgrx::prelude::*;
use serde_json::json;
use std::collections::BTreeMap;

/// What `neumf_train` returns: one row about the new version.
pub type TrainRow = (
    String,
    i32,
    bool,
    String,
    i64,
    i64,
    i64,
    i64,
    i64,
    i64,
    i64,
    i32,
    i32,
    Option<f64>,
    Option<f64>,
    f64,
    f64,
    f64,
    i64,
);

/// Trains a model from `source` (a table name or a query with user_id, item_id [, rating]
/// [, ts]) and stores it as the next version of `model`. Options left NULL take the
/// recommended defaults (`TrainConfig::recommended`, README).
#[allow(clippy::too_many_arguments, clippy::type_complexity)]
#[pg_extern(name = "neumf_train", volatile, parallel_unsafe)]
fn neumf_train_0_3(
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
    TableIterator::once(run_with(model, source, &options))
}

/// `neumf_train` after its arguments are collected (also behind older SQL's symbol,
/// src/compat.rs).
pub fn run_with(model: Option<&str>, source: Option<&str>, options: &TrainOptions<'_>) -> TrainRow {
    let (model, source) = (required(model, "model"), required(source, "source"));
    run(model, source, options)
}

/// Checks the name, every option and that the caller may (re)train the model; nothing is read
/// before this succeeds.
pub fn plan(model: &str, options: &TrainOptions<'_>) -> TrainConfig {
    // On a hot standby: 25006 "cannot execute neumf_train during recovery", before any work.
    // SAFETY: a plain PostgreSQL check that raises an ERROR.
    unsafe { pg_sys::PreventCommandDuringRecovery(c"neumf_train".as_ptr()) };
    check_model_name(model).unwrap_or_else(|e| bad_model_name(model, &e));
    let cfg = options.resolve().unwrap_or_else(|e| invalid_argument_hint(e.message, &e.hint));
    storage::check_may_change(model, "retrain");
    cfg
}

/// What a training starts from: the data, the configuration completed for it, and with
/// `warm_start` the initial weights.
pub struct Prepared {
    pub data: Interactions,
    pub cfg: TrainConfig,
    /// Safetensors of the initial weights, and a JSON note on where they came from.
    pub init: Option<(Vec<u8>, serde_json::Value)>,
}

/// Reads `source` and completes `planned` for it; with `warm_start`, maps the active
/// version's weights onto the data's ids.
pub fn prepare(
    model: &str,
    source: &str,
    options: &TrainOptions<'_>,
    planned: TrainConfig,
    progress: &mut Progress,
) -> Prepared {
    let shape = source::describe(source);
    progress.set_phase("reading source");
    let data = source::read(&shape, planned.min_rating, &mut |rows| progress.on_rows_read(rows));
    let skipped = &data.skipped;
    if data.is_empty() {
        invalid_argument_hint(
            format!(
                "source produced no interactions to train on ({} rows read; skipped: {} NULL user ids, {} NULL item ids, {} below min_rating)",
                data.rows_read, skipped.null_user, skipped.null_item, skipped.below_min_rating
            ),
            "Check the source query's WHERE clause and min_rating.",
        );
    }
    let cfg = options.for_data(planned, &data).unwrap_or_else(|e| invalid_argument_hint(e.message, &e.hint));
    if options.recency_weight.is_some_and(|w| w > 0.0) && data.ts.is_none() {
        notice!("neumf \"{model}\": recency_weight is ignored: the source has no ts column to order interactions by");
    }
    notice!(
        "neumf \"{model}\": {} rows read → {} users, {} items, {} interactions (skipped {} NULL ids, {} below min_rating; {} duplicates collapsed){}",
        data.rows_read,
        data.n_users(),
        data.n_items(),
        data.len(),
        skipped.null_user + skipped.null_item,
        skipped.below_min_rating,
        skipped.duplicates,
        if cfg.validation == Some(true) {
            format!(
                "; each user's {} interaction held out for validation",
                if data.ts.is_some() { "latest (by ts)" } else { "random" }
            )
        } else {
            String::new()
        }
    );
    let init = (options.warm_start == Some(true)).then(|| warm_start(model, &cfg, &data));
    Prepared { data, cfg, init }
}

/// The active version's weights mapped onto `data`'s ids.
fn warm_start(model: &str, cfg: &TrainConfig, data: &Interactions) -> (Vec<u8>, serde_json::Value) {
    if !storage::model_exists(model) {
        wrong_state(
            format!("warm_start needs a trained model, and neumf model \"{model}\" does not exist yet"),
            "Train it once with warm_start => false (or NULL).",
        );
    }
    let (version, old) = storage::with_active_blob(model, |version, blob| {
        let old = ModelArtifact::decode(blob)
            .unwrap_or_else(|e| corrupted(&format!("decoding neumf model \"{model}\" version {version}"), &e));
        (version, old)
    });
    let warm = warm_start_weights(&old, &cfg.spec, &data.user_ids, &data.item_ids, cfg.seed).unwrap_or_else(|e| {
        let e = OptionError::from(e);
        invalid_argument_hint(e.message, &e.hint)
    });
    notice!(
        "neumf \"{model}\": warm start from version {version}: {} of {} users and {} of {} items known",
        warm.known_users,
        data.n_users(),
        warm.known_items,
        data.n_items()
    );
    let blob = encode_weights(&warm.weights).or_raise("encoding the warm-start weights");
    let note = json!({"from_version": version, "known_users": warm.known_users, "known_items": warm.known_items});
    (blob, note)
}

/// The phases training goes through, in order, with their epoch budgets (for progress).
pub fn planned_phases(cfg: &TrainConfig) -> Vec<(String, usize)> {
    let mut phases: Vec<String> = if cfg.pretrain {
        vec!["gmf".into(), "mlp".into(), "neumf".into()]
    } else {
        vec![cfg.spec.architecture.as_str().into()]
    };
    if cfg.validation == Some(true) && cfg.refit {
        let refits: Vec<String> = phases.iter().map(|p| format!("{p} refit")).collect();
        phases.extend(refits);
    }
    phases.into_iter().map(|p| (p, cfg.epochs)).collect()
}

/// A training's result, as `neumf_train` returns it.
pub fn result_row(
    model: &str,
    activate: bool,
    p: &Prepared,
    summary: &TrainSummary,
    version: i32,
    size: i64,
) -> TrainRow {
    let (data, cfg) = (&p.data, &p.cfg);
    let skipped = &data.skipped;
    (
        model.to_string(),
        version,
        activate,
        summary.device.clone(),
        data.n_users() as i64,
        data.n_items() as i64,
        data.len() as i64,
        data.rows_read as i64,
        (skipped.null_user + skipped.null_item) as i64,
        skipped.below_min_rating as i64,
        skipped.duplicates as i64,
        summary.epochs.iter().filter(|e| e.phase == cfg.spec.architecture.as_str()).count() as i32,
        summary.best_epoch as i32,
        summary.validation.map(|v| v.hr),
        summary.validation.map(|v| v.ndcg),
        summary.final_loss,
        summary.seconds,
        summary.samples_per_second(),
        size,
    )
}

/// Everything `neumf_train` does once its arguments are collected, in the caller's
/// transaction. Nothing is read before the name and every option are checked.
fn run(model: &str, source: &str, options: &TrainOptions<'_>) -> TrainRow {
    let planned = plan(model, options);
    storage::lock_for_training(model);
    let started = crate::job_progress::unix_now();
    let mut progress = Progress::start(None, model, &jobs::current_user(), planned_phases(&planned));
    let prepared = prepare(model, source, options, planned, &mut progress);
    let (weights, summary) = trainer::train(
        &prepared.data,
        &prepared.cfg,
        model,
        prepared.init.as_ref().map(|(blob, _)| blob.as_slice()),
        Some(&mut progress),
    );
    progress.set_phase("storing");
    let artifact = ModelArtifact::new(prepared.cfg.spec.clone(), weights, &prepared.data);
    let activate = options.activate();
    let (version, size) = record(model, source, &prepared, &summary, &artifact, activate);
    let row = result_row(model, activate, &prepared, &summary, version, size);
    jobs::record_synchronous_run(model, source, options, started, &row);
    row
}

/// Stores the trained model as the next version of `model` (activating it if asked), prunes
/// versions beyond `neumf.keep_versions`, and returns the version and the blob's size. The stored hyper-parameters are `cfg` serialised, with
/// `refit` as it happened.
pub fn record(
    model: &str,
    source: &str,
    prepared: &Prepared,
    summary: &TrainSummary,
    artifact: &ModelArtifact,
    activate: bool,
) -> (i32, i64) {
    let (cfg, data) = (&prepared.cfg, &prepared.data);
    let version = storage::next_version(model);
    let meta = BTreeMap::from([("model".to_string(), model.to_string()), ("version".to_string(), version.to_string())]);
    let blob = artifact.encode(&meta).or_raise("encoding the model");
    let mut stored = cfg.clone();
    stored.refit = summary.refit;
    let hyperparameters =
        serde_json::to_value(&stored).map_err(anyhow::Error::from).or_raise("recording the hyper-parameters");
    let skipped = &data.skipped;
    let rows_skipped = json!({
        "null_user_id": skipped.null_user,
        "null_item_id": skipped.null_item,
        "below_min_rating": skipped.below_min_rating,
        "duplicates": skipped.duplicates,
    });
    let metrics = json!({
        "warm_start": prepared.init.as_ref().map(|(_, note)| note),
        "validation": summary.validation,
        "validation_users": summary.holdout_users,
        "best_epoch": summary.best_epoch,
        "samples_per_second": summary.samples_per_second(),
        "epochs": summary.epochs.iter().map(|e| json!({
            "phase": e.phase, "epoch": e.epoch, "loss": e.loss, "seconds": e.seconds,
            "learning_rate": e.learning_rate,
            "hr": e.validation.map(|v| v.hr), "ndcg": e.validation.map(|v| v.ndcg),
        })).collect::<Vec<_>>(),
    });
    storage::insert_version(
        &storage::NewVersion {
            model,
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
            final_loss: summary.final_loss,
            train_seconds: summary.seconds,
            device: &summary.device,
            source: source.trim(),
        },
        &blob,
    );
    if activate {
        storage::activate(model, version);
    }
    let keep = guc::KEEP_VERSIONS.get();
    if keep > 0 {
        let pruned = storage::prune(model, keep as i64);
        if pruned > 0 {
            notice!("neumf \"{model}\": pruned {pruned} old inactive version(s), keeping the newest {keep} (neumf.keep_versions)");
        }
    }
    (version, blob.len() as i64)
}
