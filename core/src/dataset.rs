//! Implicit-feedback interactions after id mapping: deduplicated (user, item) pairs, plus the
//! per-user seen lists (CSR) and item popularity that serving needs.

use crate::ids::IdMap;

/// Why source rows did not become interactions; reported back to the analyst.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct SkipCounts {
    pub null_user: u64,
    pub null_item: u64,
    /// Rating below `min_rating`, or NULL while `min_rating` is set.
    pub below_min_rating: u64,
    /// Repeated (user, item) pairs collapsed into one interaction.
    pub duplicates: u64,
}

/// Streams rows in, keeps compact dense pairs.
pub struct InteractionsBuilder {
    pub users: IdMap,
    pub items: IdMap,
    /// (user, item, timestamp); the timestamp is NaN when the source has none.
    pairs: Vec<(u32, u32, f64)>,
    has_ts: bool,
    pub skipped: SkipCounts,
    pub rows_read: u64,
}

impl InteractionsBuilder {
    pub fn new(users: IdMap, items: IdMap) -> Self {
        Self { users, items, pairs: Vec::new(), has_ts: false, skipped: SkipCounts::default(), rows_read: 0 }
    }

    pub fn push(&mut self, user: u32, item: u32) {
        self.pairs.push((user, item, f64::NAN));
    }

    /// A pair with its timestamp (any monotone number, e.g. unix seconds).
    pub fn push_at(&mut self, user: u32, item: u32, ts: f64) {
        self.has_ts |= !ts.is_nan();
        self.pairs.push((user, item, ts));
    }

    pub fn finish(mut self) -> Interactions {
        // Sort by pair, latest timestamp first, so dedup keeps each pair's latest time.
        self.pairs.sort_unstable_by(|a, b| (a.0, a.1).cmp(&(b.0, b.1)).then(b.2.total_cmp(&a.2)));
        let before = self.pairs.len();
        self.pairs.dedup_by_key(|p| (p.0, p.1));
        self.skipped.duplicates += (before - self.pairs.len()) as u64;
        let ts = self.has_ts.then(|| self.pairs.iter().map(|p| p.2).collect());
        let n_users = self.users.len();
        let n_items = self.items.len();
        // Pairs are sorted by user, so CSR falls out of one pass.
        let mut user_ptr = vec![0u64; n_users + 1];
        for &(u, _, _) in &self.pairs {
            user_ptr[u as usize + 1] += 1;
        }
        for u in 0..n_users {
            user_ptr[u + 1] += user_ptr[u];
        }
        let mut popularity = vec![0u64; n_items];
        let mut users = Vec::with_capacity(self.pairs.len());
        let mut items = Vec::with_capacity(self.pairs.len());
        for &(u, i, _) in &self.pairs {
            users.push(u);
            items.push(i);
            popularity[i as usize] += 1;
        }
        Interactions {
            user_ids: self.users,
            item_ids: self.items,
            users,
            items,
            user_ptr,
            popularity,
            ts,
            skipped: self.skipped,
            rows_read: self.rows_read,
        }
    }
}

/// Deduplicated interactions sorted by (user, item).
#[derive(Debug, Clone)]
pub struct Interactions {
    pub user_ids: IdMap,
    pub item_ids: IdMap,
    pub users: Vec<u32>,
    /// Sorted within each user: `items[user_ptr[u]..user_ptr[u+1]]` are user u's items.
    pub items: Vec<u32>,
    pub user_ptr: Vec<u64>,
    pub popularity: Vec<u64>,
    /// Each pair's (latest) timestamp, aligned with `users`/`items`, when the source had one.
    pub ts: Option<Vec<f64>>,
    pub skipped: SkipCounts,
    pub rows_read: u64,
}

impl Interactions {
    pub fn len(&self) -> usize {
        self.users.len()
    }
    pub fn is_empty(&self) -> bool {
        self.users.is_empty()
    }
    pub fn n_users(&self) -> usize {
        self.user_ids.len()
    }
    pub fn n_items(&self) -> usize {
        self.item_ids.len()
    }
    pub fn seen(&self, user: u32) -> &[u32] {
        let u = user as usize;
        &self.items[self.user_ptr[u] as usize..self.user_ptr[u + 1] as usize]
    }

    /// Interactions over dense indices only (placeholder id maps), e.g. as handed to the trainer.
    pub fn from_pairs(
        n_users: usize,
        n_items: usize,
        users: &[u32],
        items: &[u32],
        ts: Option<&[f64]>,
    ) -> Interactions {
        let mut b = InteractionsBuilder::new(IdMap::placeholder(n_users), IdMap::placeholder(n_items));
        for (r, (&u, &i)) in users.iter().zip(items).enumerate() {
            b.push_at(u, i, ts.map_or(f64::NAN, |t| t[r]));
        }
        b.finish()
    }

    /// For each interaction, how many of its user's interactions are strictly later (0 for the
    /// latest); None without timestamps (NaN timestamps count as oldest).
    pub fn later_counts(&self) -> Option<Vec<u32>> {
        let ts = self.ts.as_ref()?;
        let mut out = vec![0u32; self.len()];
        let mut order: Vec<usize> = Vec::new();
        for u in 0..self.n_users() {
            let (lo, hi) = (self.user_ptr[u] as usize, self.user_ptr[u + 1] as usize);
            order.clear();
            order.extend(lo..hi);
            // Latest first; NaN sorts as oldest.
            order.sort_unstable_by(|&a, &b| {
                let key = |r: usize| if ts[r].is_nan() { f64::NEG_INFINITY } else { ts[r] };
                key(b).total_cmp(&key(a))
            });
            let mut later = 0u32;
            for (k, &r) in order.iter().enumerate() {
                if k > 0 && ts[r] != ts[order[k - 1]] {
                    later = k as u32;
                }
                out[r] = later;
            }
        }
        Some(out)
    }

    /// Rebuilds from kept rows (indices into `users`/`items`), with the same id maps.
    pub fn subset(&self, keep: impl Iterator<Item = usize>) -> Interactions {
        let mut b = InteractionsBuilder::new(self.user_ids.clone(), self.item_ids.clone());
        for r in keep {
            b.push_at(self.users[r], self.items[r], self.ts.as_ref().map_or(f64::NAN, |t| t[r]));
        }
        let mut out = b.finish();
        out.skipped = self.skipped.clone();
        out.rows_read = self.rows_read;
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ids::IdKind;

    #[test]
    fn dedupes_and_builds_csr() {
        let mut b = InteractionsBuilder::new(IdMap::new(IdKind::BigInt), IdMap::new(IdKind::BigInt));
        for (u, i) in [(10, 5), (11, 6), (10, 5), (10, 7), (12, 5)] {
            let u = b.users.intern_int(u);
            let i = b.items.intern_int(i);
            b.push(u, i);
        }
        let d = b.finish();
        assert_eq!(d.len(), 4);
        assert_eq!(d.skipped.duplicates, 1);
        assert_eq!(d.n_users(), 3);
        assert_eq!(d.n_items(), 3);
        assert_eq!(d.seen(0), &[0, 2]); // user 10: items 5 and 7
        assert_eq!(d.seen(1), &[1]);
        assert_eq!(d.popularity, vec![2, 1, 1]);
        assert!(d.later_counts().is_none());
    }

    #[test]
    fn counts_later_interactions_per_user_with_ties() {
        let mut b = InteractionsBuilder::new(IdMap::placeholder(2), IdMap::placeholder(4));
        for (u, i, t) in [(0, 0, 5.0), (0, 1, 9.0), (0, 2, 7.0), (0, 3, 9.0), (1, 0, 1.0)] {
            b.push_at(u, i, t);
        }
        let d = b.finish();
        // User 0: items 1 and 3 are latest (tied), then item 2, then item 0.
        assert_eq!(d.later_counts().unwrap(), vec![3, 0, 2, 0, 0]);
    }
}
