//! Serving: `neumf_score`, `neumf_rank`, `neumf_recommend`, each for bigint and text ids.
//! Scores come from the CPU kernel in `neumf_core::infer`; no libtorch, no CUDA here.

use crate::cache;
use crate::errors::invalid_argument_hint;
use neumf_core::ids::IdRef;
use neumf_core::infer::{ScoringModel, TwoStageError};
use pgrx::prelude::*;

/// `k` as a count of results, or a clear ERROR.
pub fn check_k(k: i32) -> usize {
    if k <= 0 {
        invalid_argument_hint(format!("k must be a positive number of results, got {k}"), "Pass k >= 1.");
    }
    k as usize
}

fn score(model: &str, user: IdRef<'_>, item: IdRef<'_>) -> Option<f64> {
    let m = cache::get(model);
    let u = m.scoring.user_index(user)?;
    let i = m.scoring.item_index(item)?;
    Some(m.scoring.user_context(u).score(i) as f64)
}

/// Predicted probability that the user interacts with the item; NULL for an unknown user or item.
#[pg_extern(stable, parallel_safe, strict)]
fn neumf_score(model: &str, user_id: i64, item_id: i64) -> Option<f64> {
    score(model, IdRef::Int(user_id), IdRef::Int(item_id))
}

#[pg_extern(name = "neumf_score", stable, parallel_safe, strict)]
fn neumf_score_text(model: &str, user_id: &str, item_id: &str) -> Option<f64> {
    score(model, IdRef::Text(user_id), IdRef::Text(item_id))
}

/// Top k of `candidates` for the user: (position in `candidates`, score), best first. Unknown
/// and NULL candidates are skipped, repeats count once (`ScoringModel::rank`).
fn rank<'a>(
    m: &ScoringModel,
    user: IdRef<'_>,
    candidates: impl Iterator<Item = Option<IdRef<'a>>>,
    k: usize,
) -> Vec<(usize, f64)> {
    let Some(u) = m.user_index(user) else {
        return Vec::new();
    };
    m.rank(u, candidates.map(|id| m.item_index(id?)), k).into_iter().map(|(pos, p)| (pos, p as f64)).collect()
}

/// The top `k` of `candidates` for the user, best first (rank 1 = best).
#[pg_extern(stable, parallel_safe, strict)]
fn neumf_rank(
    model: &str,
    user_id: i64,
    candidates: Array<i64>,
    k: default!(i32, 10),
) -> TableIterator<'static, (name!(item_id, i64), name!(score, f64), name!(rank, i32))> {
    let k = check_k(k);
    let m = cache::get(model);
    // A NULL-free int8[] is read in place; otherwise element by element.
    let rows: Vec<_> = match candidates.as_slice() {
        Ok(ids) => rank(&m.scoring, IdRef::Int(user_id), ids.iter().map(|&c| Some(IdRef::Int(c))), k)
            .into_iter()
            .enumerate()
            .map(|(r, (pos, s))| (ids[pos], s, r as i32 + 1))
            .collect(),
        Err(_) => {
            let ids: Vec<Option<i64>> = candidates.iter().collect();
            rank(&m.scoring, IdRef::Int(user_id), ids.iter().map(|c| c.map(IdRef::Int)), k)
                .into_iter()
                .enumerate()
                .map(|(r, (pos, s))| (ids[pos].unwrap_or_default(), s, r as i32 + 1))
                .collect()
        }
    };
    TableIterator::new(rows)
}

#[pg_extern(name = "neumf_rank", stable, parallel_safe, strict)]
fn neumf_rank_text(
    model: &str,
    user_id: &str,
    candidates: Array<&str>,
    k: default!(i32, 10),
) -> TableIterator<'static, (name!(item_id, String), name!(score, f64), name!(rank, i32))> {
    let k = check_k(k);
    let m = cache::get(model);
    let ids: Vec<Option<&str>> = candidates.iter().collect();
    let ranked = rank(&m.scoring, IdRef::Text(user_id), ids.iter().map(|c| c.map(IdRef::Text)), k);
    let rows: Vec<_> = ranked
        .into_iter()
        .enumerate()
        .map(|(r, (pos, s))| (ids[pos].unwrap_or_default().to_string(), s, r as i32 + 1))
        .collect();
    TableIterator::new(rows)
}

/// Where a recommendation came from.
const FROM_MODEL: &str = "model";
const FROM_POPULARITY: &str = "popularity";

/// Raises 22023 for a model without GMF vectors (MLP-only), which has no cheap first stage.
fn no_gmf(model: &str, what: &str) -> ! {
    invalid_argument_hint(
        format!("neumf model \"{model}\" has no GMF part, so it has no {what}"),
        "Only architectures gmf and neumf have GMF vectors; leave candidates out to rank the whole catalogue exactly.",
    )
}

/// Top k over the whole catalogue: (item index, score, source), best first. A user the model
/// does not know gets the most popular items, scored by the share of users who chose them.
/// `shortlist`: two stages (`ScoringModel::recommend`).
fn recommend(
    model: &str,
    m: &ScoringModel,
    user: IdRef<'_>,
    k: usize,
    exclude_seen: bool,
    shortlist: Option<usize>,
) -> Vec<(u32, f64, &'static str)> {
    let Some(u) = m.user_index(user) else {
        return m.most_popular(k).into_iter().map(|(i, share)| (i, share, FROM_POPULARITY)).collect();
    };
    match m.recommend(u, k, exclude_seen, shortlist) {
        Ok(top) => top.into_iter().map(|(item, p)| (item, p as f64, FROM_MODEL)).collect(),
        Err(TwoStageError::NoGmf) => no_gmf(model, "first stage for candidates =>"),
    }
}

/// `candidates` as a shortlist length, or a clear ERROR.
fn check_candidates(candidates: Option<i32>) -> Option<usize> {
    let n = candidates?;
    if n <= 0 {
        invalid_argument_hint(
            format!("candidates must be a positive number of items to shortlist, got {n}"),
            "Pass candidates => N (N >= k; a few hundred to a few thousand) for two stages, or leave it out for an exact ranking.",
        );
    }
    Some(n as usize)
}

/// The top `k` items of the whole catalogue for the user; items the user interacted with in
/// training are left out unless `exclude_seen` is false. `source` is 'model', or 'popularity'
/// for a user the model does not know (cold start: the most popular items, scored by the share
/// of users who interacted with each). `candidates => N` ranks in two stages: the N best items
/// by their GMF term alone, then the full model over those N (for large catalogues; exact when
/// NULL). Not STRICT only because `candidates` may be NULL: any other NULL argument returns no
/// rows, as before.
#[pg_extern(name = "neumf_recommend", stable, parallel_safe)]
pub fn neumf_recommend_items(
    model: Option<&str>,
    user_id: Option<i64>,
    k: default!(Option<i32>, 10),
    exclude_seen: default!(Option<bool>, true),
    candidates: default!(Option<i32>, "NULL"),
) -> TableIterator<'static, (name!(item_id, i64), name!(score, f64), name!(rank, i32), name!(source, &'static str))> {
    let (Some(model), Some(user_id), Some(k), Some(exclude_seen)) = (model, user_id, k, exclude_seen) else {
        return TableIterator::new(Vec::new());
    };
    let k = check_k(k);
    let shortlist = check_candidates(candidates);
    let m = cache::get(model);
    let rows: Vec<_> = recommend(model, &m.scoring, IdRef::Int(user_id), k, exclude_seen, shortlist)
        .into_iter()
        .enumerate()
        .map(|(r, (item, s, source))| {
            let id = m.scoring.items.int_at(item).unwrap_or_else(|| {
                crate::errors::raise(
                    pgrx::PgSqlErrorCode::ERRCODE_DATATYPE_MISMATCH,
                    format!("neumf model \"{model}\" has text item ids"),
                    Some("Call the text form: neumf_recommend(model, user_id::text, k)."),
                )
            });
            (id, s, r as i32 + 1, source)
        })
        .collect();
    TableIterator::new(rows)
}

#[pg_extern(name = "neumf_recommend", stable, parallel_safe)]
pub fn neumf_recommend_items_text(
    model: Option<&str>,
    user_id: Option<&str>,
    k: default!(Option<i32>, 10),
    exclude_seen: default!(Option<bool>, true),
    candidates: default!(Option<i32>, "NULL"),
) -> TableIterator<'static, (name!(item_id, String), name!(score, f64), name!(rank, i32), name!(source, &'static str))>
{
    let (Some(model), Some(user_id), Some(k), Some(exclude_seen)) = (model, user_id, k, exclude_seen) else {
        return TableIterator::new(Vec::new());
    };
    let k = check_k(k);
    let shortlist = check_candidates(candidates);
    let m = cache::get(model);
    let rows: Vec<_> = recommend(model, &m.scoring, IdRef::Text(user_id), k, exclude_seen, shortlist)
        .into_iter()
        .enumerate()
        .map(|(r, (item, s, source))| (m.scoring.items.text_at(item), s, r as i32 + 1, source))
        .collect();
    TableIterator::new(rows)
}

/// Every item's GMF vector with the output weights folded in: the user's vector
/// (`neumf_user_vector`) dotted with an item's is the item's GMF term, the first stage of
/// `neumf_recommend(..., candidates => N)`. For a vector index elsewhere (e.g. pgvector's
/// inner product). Ids as text: cast them back to the model's id type.
#[pg_extern(stable, parallel_safe, strict)]
fn neumf_item_vectors(model: &str) -> TableIterator<'static, (name!(item_id, String), name!(vector, Vec<f32>))> {
    let m = cache::get(model);
    let s = &m.scoring;
    let rows: Vec<_> = (0..s.n_items() as u32)
        .map(|i| match s.item_vector(i) {
            Some(v) => (s.items.text_at(i), v),
            None => no_gmf(model, "item vectors"),
        })
        .collect();
    TableIterator::new(rows)
}

fn user_vector(model: &str, user: IdRef<'_>) -> Option<Vec<f32>> {
    let m = cache::get(model);
    let u = m.scoring.user_index(user)?;
    match m.scoring.user_vector(u) {
        Some(v) => Some(v),
        None => no_gmf(model, "user vectors"),
    }
}

/// The user's GMF vector (see `neumf_item_vectors`); NULL for a user the model does not know.
#[pg_extern(stable, parallel_safe, strict)]
fn neumf_user_vector(model: &str, user_id: i64) -> Option<Vec<f32>> {
    user_vector(model, IdRef::Int(user_id))
}

#[pg_extern(name = "neumf_user_vector", stable, parallel_safe, strict)]
fn neumf_user_vector_text(model: &str, user_id: &str) -> Option<Vec<f32>> {
    user_vector(model, IdRef::Text(user_id))
}
