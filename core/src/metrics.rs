//! Leave-one-out ranking metrics (He et al. 2017, §4.1).

/// Zero-based rank of the positive among `scores` (index 0 is the positive): how many
/// candidates score strictly higher. Ties go in the positive's favour, as in the reference.
pub fn rank_of_first(scores: &[f32]) -> usize {
    let target = scores[0];
    scores[1..].iter().filter(|&&s| s > target).count()
}

/// Accumulates HR@K and NDCG@K over users.
#[derive(Debug, Clone, Copy, Default)]
pub struct HitRate {
    pub k: usize,
    hits: f64,
    ndcg: f64,
    users: usize,
}

impl HitRate {
    pub fn new(k: usize) -> Self {
        Self { k, ..Default::default() }
    }
    pub fn add_rank(&mut self, rank: usize) {
        self.users += 1;
        if rank < self.k {
            self.hits += 1.0;
            self.ndcg += 1.0 / ((rank as f64) + 2.0).log2();
        }
    }
    pub fn hr(&self) -> f64 {
        if self.users == 0 {
            0.0
        } else {
            self.hits / self.users as f64
        }
    }
    pub fn ndcg(&self) -> f64 {
        if self.users == 0 {
            0.0
        } else {
            self.ndcg / self.users as f64
        }
    }
    pub fn users(&self) -> usize {
        self.users
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ranks_and_metrics() {
        assert_eq!(rank_of_first(&[0.9, 0.1, 0.95, 0.2]), 1);
        assert_eq!(rank_of_first(&[0.9, 0.9, 0.1]), 0);
        let mut m = HitRate::new(10);
        m.add_rank(0); // hit, ndcg 1
        m.add_rank(10); // miss
        assert!((m.hr() - 0.5).abs() < 1e-12);
        assert!((m.ndcg() - 0.5).abs() < 1e-12);
        m.add_rank(1); // hit, ndcg 1/log2(3)
        assert!((m.ndcg() - (1.0 + 1.0 / 3f64.log2()) / 3.0).abs() < 1e-12);
    }
}
