//! Leave-one-out validation (He et al. §4.1): each user's latest interaction is held out and
//! ranked against negatives fixed once, so every epoch's metrics compare.

use crate::dataset::Interactions;
use rand::{rngs::StdRng, Rng, SeedableRng};

/// Users with their held-out item and the fixed candidates to rank it among.
#[derive(Debug, Clone, Default)]
pub struct Holdout {
    pub users: Vec<u32>,
    pub items: Vec<u32>,
    /// Row-major `users.len() × per_user`: column 0 is the held-out item, the rest negatives
    /// the user never interacted with.
    pub candidates: Vec<u32>,
    pub per_user: usize,
}

impl Holdout {
    pub fn len(&self) -> usize {
        self.users.len()
    }
    pub fn is_empty(&self) -> bool {
        self.users.is_empty()
    }
}

/// Splits off each user's latest interaction (by timestamp, ties by larger item index; a seeded
/// random one when there are no timestamps) for users with at least two. Returns the training
/// part (same id maps) and the holdout with `negatives` fixed random negatives per user.
pub fn leave_one_out(data: &Interactions, negatives: usize, seed: u64) -> (Interactions, Holdout) {
    let mut rng = StdRng::seed_from_u64(seed ^ 0x005e_ed0f_4a11);
    let mut held_rows = Vec::new();
    for u in 0..data.n_users() {
        let (lo, hi) = (data.user_ptr[u] as usize, data.user_ptr[u + 1] as usize);
        if hi - lo < 2 {
            continue;
        }
        let row = match &data.ts {
            Some(ts) => {
                (lo..hi).max_by(|&a, &b| ts[a].total_cmp(&ts[b]).then(data.items[a].cmp(&data.items[b]))).unwrap()
            }
            None => rng.gen_range(lo..hi),
        };
        held_rows.push(row);
    }
    let mut is_held = vec![false; data.len()];
    for &r in &held_rows {
        is_held[r] = true;
    }
    let train = data.subset((0..data.len()).filter(|&r| !is_held[r]));
    let n_items = data.n_items() as u32;
    let per_user = 1 + negatives;
    let mut holdout = Holdout { per_user, ..Default::default() };
    for &r in &held_rows {
        let (u, item) = (data.users[r], data.items[r]);
        let all = data.seen(u); // sorted; includes the held-out item
        if all.len() as u32 >= n_items {
            continue; // nothing to rank against
        }
        holdout.users.push(u);
        holdout.items.push(item);
        holdout.candidates.push(item);
        let mut drawn = 0;
        while drawn < negatives {
            let j = rng.gen_range(0..n_items);
            if all.binary_search(&j).is_err() {
                holdout.candidates.push(j);
                drawn += 1;
            }
        }
    }
    (train, holdout)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::dataset::InteractionsBuilder;
    use crate::ids::{IdKind, IdMap};

    #[test]
    fn holds_out_the_latest_per_user() {
        let mut b = InteractionsBuilder::new(IdMap::new(IdKind::BigInt), IdMap::new(IdKind::BigInt));
        for i in 0..20 {
            b.items.intern_int(i);
        }
        let u0 = b.users.intern_int(100);
        let u1 = b.users.intern_int(101);
        b.push_at(u0, 3, 10.0);
        b.push_at(u0, 5, 30.0); // latest of u0
        b.push_at(u0, 7, 20.0);
        b.push_at(u1, 2, 5.0); // u1 has one interaction: never held out
        let data = b.finish();
        let (train, h) = leave_one_out(&data, 4, 1);
        assert_eq!(h.users, vec![u0]);
        assert_eq!(h.items, vec![5]);
        assert_eq!(train.len(), 3);
        assert_eq!(train.seen(u0), &[3, 7]);
        assert_eq!(h.candidates.len(), 5);
        assert_eq!(h.candidates[0], 5);
        for &neg in &h.candidates[1..] {
            assert!(![3, 5, 7].contains(&neg));
        }
    }
}
