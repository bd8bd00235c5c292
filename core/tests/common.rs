//! Planted-taste synthetic data shared by the core integration tests.
use neumf_core::dataset::{Interactions, InteractionsBuilder};
use neumf_core::ids::{IdKind, IdMap};
use rand::{rngs::StdRng, Rng, SeedableRng};

/// `users` users in `clusters` taste groups; each likes `per_user` random items of its group's
/// block of the catalogue. Returns the training data and one held-out liked item per user.
pub fn planted(
    users: usize,
    items: usize,
    clusters: usize,
    per_user: usize,
    seed: u64,
) -> (Interactions, Vec<(u32, u32)>) {
    let mut rng = StdRng::seed_from_u64(seed);
    let block = items / clusters;
    let mut b = InteractionsBuilder::new(IdMap::new(IdKind::BigInt), IdMap::new(IdKind::BigInt));
    // Intern all items first so dense index == external id - 1000.
    for i in 0..items {
        b.items.intern_int(1000 + i as i64);
    }
    let mut held_out = Vec::new();
    for u in 0..users {
        let uid = b.users.intern_int(u as i64);
        let c = u % clusters;
        let mut liked: Vec<u32> = Vec::new();
        while liked.len() < per_user + 1 {
            let i = (c * block + rng.gen_range(0..block)) as u32;
            if !liked.contains(&i) {
                liked.push(i);
            }
        }
        held_out.push((uid, liked.pop().unwrap()));
        for i in liked {
            b.push(uid, i);
        }
    }
    (b.finish(), held_out)
}
