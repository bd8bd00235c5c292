//! C symbols that SQL of older versions still names. A database keeps working on the new
//! library until `ALTER EXTENSION neumf UPDATE`; these take the old argument lists and call
//! today's code. None of them appears in the current SQL (`sql = false`).

use crate::train::run_with;
use pgrx::prelude::*;

/// `neumf_train` of 0.1.0 and 0.2.0 (no `warm_start`), symbol `neumf_train_wrapper`.
#[allow(clippy::too_many_arguments, clippy::type_complexity)]
#[pg_extern(sql = false, volatile, parallel_unsafe)]
fn neumf_train(
    model: Option<&str>,
    source: Option<&str>,
    architecture: Option<&str>,
    factors: Option<i32>,
    layers: Option<Vec<i32>>,
    epochs: Option<i32>,
    batch_size: Option<i32>,
    learning_rate: Option<f64>,
    negatives: Option<i32>,
    min_rating: Option<f64>,
    seed: Option<i64>,
    device: Option<&str>,
    activate: Option<bool>,
    sampling: Option<&str>,
    popularity_exponent: Option<f64>,
    hard_pool: Option<i32>,
    hard_share: Option<f64>,
    weight_decay: Option<f64>,
    dropout: Option<f64>,
    lr_schedule: Option<&str>,
    validation: Option<bool>,
    patience: Option<i32>,
    pretrain: Option<bool>,
    refit: Option<bool>,
    recency_weight: Option<f64>,
    recency_half_life: Option<f64>,
    mixed_precision: Option<bool>,
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
    let options = neumf_core::options::TrainOptions {
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
        warm_start: None,
        threads: crate::guc::TRAIN_THREADS.get() as usize,
    };
    TableIterator::once(run_with(model, source, &options))
}

/// `neumf_recommend(model, bigint, k, exclude_seen)` of 0.1.0–0.4.0, symbol
/// `neumf_recommend_wrapper` (STRICT there).
#[pg_extern(sql = false, stable, parallel_safe, strict)]
fn neumf_recommend(
    model: &str,
    user_id: i64,
    k: i32,
    exclude_seen: bool,
) -> TableIterator<'static, (name!(item_id, i64), name!(score, f64), name!(rank, i32), name!(source, &'static str))> {
    crate::serve::neumf_recommend_items(Some(model), Some(user_id), Some(k), Some(exclude_seen), None)
}

/// The text form of the above, symbol `neumf_recommend_text_wrapper`.
#[pg_extern(sql = false, stable, parallel_safe, strict)]
fn neumf_recommend_text(
    model: &str,
    user_id: &str,
    k: i32,
    exclude_seen: bool,
) -> TableIterator<'static, (name!(item_id, String), name!(score, f64), name!(rank, i32), name!(source, &'static str))>
{
    crate::serve::neumf_recommend_items_text(Some(model), Some(user_id), Some(k), Some(exclude_seen), None)
}

/// `neumf_cache()` of 0.1.0–0.4.0 (no `shared` column), symbol `neumf_cache_wrapper`.
#[pg_extern(sql = false, volatile, parallel_unsafe)]
fn neumf_cache() -> TableIterator<'static, (name!(model, String), name!(version, i32), name!(bytes, i64))> {
    TableIterator::new(crate::cache::snapshot().into_iter().map(|(m, v, b, _)| (m, v, b)))
}
