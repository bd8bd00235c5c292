//! `neumf_evaluate`: ranking metrics of a stored model on a test set given as SQL.

use crate::cache;
use crate::errors::OrRaise;
use neumf_core::ids::IdRef;
use neumf_core::metrics::{rank_of_first, HitRate};
use pgrx::prelude::*;

/// Evaluates the active version of `model` on `source`, a query or table with user_id,
/// item_id (the held-out item) and optionally negatives (an array of item ids to rank it
/// against, e.g. the 99 fixed negatives of the leave-one-out protocol). Returns HR@k / NDCG@k
/// against those negatives (NULL without them) and full-catalogue Recall@k / NDCG@k, where the
/// item is ranked among every item the user did not interact with in training.
// pgrx needs the row tuple spelled out in the signature, hence the long type. Volatile and
// parallel unsafe: it runs the caller's query, which may be either.
#[allow(clippy::type_complexity)]
#[pg_extern(volatile, parallel_unsafe)]
fn neumf_evaluate(
    model: &str,
    source: &str,
    k: default!(i32, 10),
) -> TableIterator<
    'static,
    (
        name!(users, i64),
        name!(skipped, i64),
        name!(hr, Option<f64>),
        name!(ndcg, Option<f64>),
        name!(full_recall, f64),
        name!(full_ndcg, f64),
    ),
> {
    let k = crate::serve::check_k(k);
    let m = cache::get(model);
    let s = &m.scoring;
    let query = crate::source::resolve_query(source, "test");
    let has_negatives = Spi::connect(|c| -> Result<bool, pgrx::spi::Error> {
        let t = c.select(&format!("SELECT * FROM ({query}) AS neumf_test LIMIT 0"), None, &[])?;
        let names: Vec<String> = (1..=t.columns()?).map(|i| t.column_name(i)).collect::<Result<_, _>>()?;
        for needed in ["user_id", "item_id"] {
            if !names.iter().any(|n| n == needed) {
                crate::source::missing_column(
                    "test source",
                    needed,
                    &names,
                    "It needs user_id and item_id (the held-out item), and optionally negatives (an array of item ids).",
                );
            }
        }
        Ok(names.iter().any(|n| n == "negatives"))
    })
    .or_raise("describing the test source");
    let negatives = if has_negatives { "negatives::text[]" } else { "NULL::text[]" };
    let sql = format!("SELECT user_id::text, item_id::text, {negatives} FROM ({query}) AS neumf_test");

    let (mut sampled, mut full) = (HitRate::new(k), HitRate::new(k));
    let mut skipped = 0i64;
    let mut scores: Vec<f32> = Vec::new();
    let all_items: Vec<u32> = (0..s.n_items() as u32).collect();
    Spi::connect(|client| -> Result<(), pgrx::spi::Error> {
        for row in client.select(&sql, None, &[])? {
            pg_sys::check_for_interrupts!();
            let (Some(user), Some(item)) = (row.get::<String>(1)?, row.get::<String>(2)?) else {
                skipped += 1;
                continue;
            };
            let (Some(u), Some(i)) = (s.user_index(IdRef::Text(&user)), s.item_index(IdRef::Text(&item))) else {
                skipped += 1;
                continue;
            };
            let mut ctx = s.user_context(u);
            if let Some(negs) = row.get::<Vec<Option<String>>>(3)? {
                scores.clear();
                scores.push(ctx.logit(i));
                for n in negs.iter().flatten() {
                    if let Some(j) = s.item_index(IdRef::Text(n)) {
                        scores.push(ctx.logit(j));
                    }
                }
                sampled.add_rank(rank_of_first(&scores));
            }
            let target = ctx.logit(i);
            ctx.logits(&all_items, &mut scores);
            let seen = s.seen(u);
            let rank = scores
                .iter()
                .enumerate()
                .filter(|&(j, &l)| j as u32 != i && l > target && seen.binary_search(&(j as u32)).is_err())
                .count();
            full.add_rank(rank);
        }
        Ok(())
    })
    .or_raise("evaluating");
    let (hr, ndcg) = if sampled.users() > 0 { (Some(sampled.hr()), Some(sampled.ndcg())) } else { (None, None) };
    TableIterator::once((full.users() as i64, skipped, hr, ndcg, full.hr(), full.ndcg()))
}
