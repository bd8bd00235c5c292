//! Ranking metrics over a holdout, for any scorer: sampled HR@K / NDCG@K against the fixed
//! negatives (the paper's protocol) and full-catalogue Recall@K / NDCG@K (unbiased: Krichene &
//! Rendle, KDD 2020), where the held-out item is ranked among every item the user did not
//! interact with in training.

use crate::dataset::Interactions;
use crate::holdout::Holdout;
use crate::metrics::{rank_of_first, HitRate};
use serde::{Deserialize, Serialize};

/// Scores (user, item) pairs: logits or probabilities, higher is better.
pub trait PairScorer {
    fn score_pairs(&mut self, users: &[u32], items: &[u32]) -> anyhow::Result<Vec<f32>>;
}

#[derive(Debug, Clone, Copy, Default, Serialize, Deserialize)]
pub struct RankingMetrics {
    pub k: usize,
    pub users: usize,
    /// Against the fixed sampled negatives.
    pub hr: f64,
    pub ndcg: f64,
    /// Against the whole catalogue (None when not computed).
    pub full_recall: Option<f64>,
    pub full_ndcg: Option<f64>,
    pub full_users: Option<usize>,
}

/// Sampled HR@K / NDCG@K over the holdout's fixed candidates.
pub fn sampled(scorer: &mut dyn PairScorer, holdout: &Holdout, k: usize) -> anyhow::Result<RankingMetrics> {
    let mut hr = HitRate::new(k);
    let per = holdout.per_user;
    // Score in slabs so memory stays bounded on big holdouts.
    let slab_users = (1 << 18) / per.max(1) + 1;
    for start in (0..holdout.len()).step_by(slab_users) {
        let end = (start + slab_users).min(holdout.len());
        let items = &holdout.candidates[start * per..end * per];
        let users: Vec<u32> = holdout.users[start..end].iter().flat_map(|&u| std::iter::repeat_n(u, per)).collect();
        let scores = scorer.score_pairs(&users, items)?;
        for row in scores.chunks_exact(per) {
            hr.add_rank(rank_of_first(row));
        }
    }
    Ok(RankingMetrics { k, users: hr.users(), hr: hr.hr(), ndcg: hr.ndcg(), ..Default::default() })
}

/// Full-catalogue Recall@K / NDCG@K for up to `max_users` holdout users (evenly spaced).
pub fn full_catalogue(
    scorer: &mut dyn PairScorer,
    train: &Interactions,
    holdout: &Holdout,
    k: usize,
    max_users: usize,
) -> anyhow::Result<(f64, f64, usize)> {
    let n_items = train.n_items() as u32;
    let step = (holdout.len() / max_users.max(1)).max(1);
    let all_items: Vec<u32> = (0..n_items).collect();
    let mut hr = HitRate::new(k);
    for h in (0..holdout.len()).step_by(step).take(max_users) {
        let (u, target) = (holdout.users[h], holdout.items[h]);
        let scores = scorer.score_pairs(&vec![u; n_items as usize], &all_items)?;
        let seen = train.seen(u);
        let target_score = scores[target as usize];
        let mut rank = 0;
        let mut next_seen = seen.iter().peekable();
        for (i, &s) in scores.iter().enumerate() {
            if next_seen.peek() == Some(&&(i as u32)) {
                next_seen.next();
                continue;
            }
            if s > target_score {
                rank += 1;
            }
        }
        hr.add_rank(rank);
    }
    Ok((hr.hr(), hr.ndcg(), hr.users()))
}
