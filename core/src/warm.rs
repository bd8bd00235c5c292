//! Warm start: a new training's initial weights taken from a stored version. Known users and
//! items keep their embedding rows (matched by external id), new ones get the paper's
//! N(0, 0.01) initialisation, and every other tensor (MLP layers, output layer) is copied.

use crate::codec::{ModelArtifact, Tensor32};
use crate::ids::{IdKind, IdMap, IdRef};
use crate::spec::ModelSpec;
use rand::{Rng, SeedableRng};
use std::collections::BTreeMap;

/// Initial weights for a warm-started training, and how much of them came from the old model.
#[derive(Debug)]
pub struct WarmStart {
    pub weights: BTreeMap<String, Tensor32>,
    pub known_users: usize,
    pub known_items: usize,
}

/// Standard deviation of a new embedding row: the paper's initialisation (`model::NcfNet`).
const NEW_ROW_STDEV: f32 = 0.01;

/// Maps `old`'s weights onto the id maps of the data about to be trained on. Fails when the
/// model shape or an id type differs: the message says what differs.
pub fn warm_start_weights(
    old: &ModelArtifact,
    spec: &ModelSpec,
    users: &IdMap,
    items: &IdMap,
    seed: u64,
) -> Result<WarmStart, String> {
    if &old.spec != spec {
        return Err(format!(
            "warm_start needs the active version's shape ({} with {} factors and layers {:?}), got {} with {} factors and layers {:?}; use the same architecture, factors and layers, or warm_start => false",
            old.spec.architecture.as_str(),
            old.spec.factors,
            old.spec.layers,
            spec.architecture.as_str(),
            spec.factors,
            spec.layers
        ));
    }
    for (what, was, now) in [("user", old.user_ids.kind(), users.kind()), ("item", old.item_ids.kind(), items.kind())] {
        if was != now {
            return Err(format!(
                "warm_start needs {what} ids of the active version's type ({}), the source has {}; use warm_start => false to train from scratch",
                was.as_str(),
                now.as_str()
            ));
        }
    }
    let user_rows = row_sources(&old.user_ids, users);
    let item_rows = row_sources(&old.item_ids, items);
    let mut rng = rand::rngs::StdRng::seed_from_u64(seed ^ 0x5741_524d);
    let mut weights = BTreeMap::new();
    for (name, tensor) in &old.weights {
        let rows = if name.ends_with("user_embedding.weight") {
            Some(&user_rows)
        } else if name.ends_with("item_embedding.weight") {
            Some(&item_rows)
        } else {
            None
        };
        let mapped = match rows {
            Some(rows) => remap_rows(tensor, rows, &mut rng),
            None => tensor.clone(),
        };
        weights.insert(name.clone(), mapped);
    }
    Ok(WarmStart {
        weights,
        known_users: user_rows.iter().flatten().count(),
        known_items: item_rows.iter().flatten().count(),
    })
}

/// For each index of `now`, the index the same id had in `was`.
fn row_sources(was: &IdMap, now: &IdMap) -> Vec<Option<u32>> {
    (0..now.len() as u32)
        .map(|i| match now.kind() {
            IdKind::BigInt => now.int_at(i).and_then(|id| was.get(IdRef::Int(id))),
            IdKind::Text => was.get(IdRef::Text(&now.text_at(i))),
        })
        .collect()
}

fn remap_rows(old: &Tensor32, sources: &[Option<u32>], rng: &mut impl Rng) -> Tensor32 {
    let cols = old.cols();
    let mut data = Vec::with_capacity(sources.len() * cols);
    for source in sources {
        match source {
            Some(r) => data.extend_from_slice(&old.data[*r as usize * cols..(*r as usize + 1) * cols]),
            None => data.extend((0..cols).map(|_| NEW_ROW_STDEV * standard_normal(rng))),
        }
    }
    Tensor32 { shape: vec![sources.len(), cols], data }
}

/// Box–Muller: one N(0, 1) draw.
fn standard_normal(rng: &mut impl Rng) -> f32 {
    let u1: f64 = rng.gen_range(f64::EPSILON..1.0);
    let u2: f64 = rng.gen();
    ((-2.0 * u1.ln()).sqrt() * (2.0 * std::f64::consts::PI * u2).cos()) as f32
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::spec::{Architecture, ModelSpec};

    fn artifact(users: Vec<i64>, items: Vec<i64>) -> ModelArtifact {
        let spec = ModelSpec { architecture: Architecture::Gmf, factors: 2, layers: vec![4, 2] };
        let emb =
            |n: usize, base: f32| Tensor32 { shape: vec![n, 2], data: (0..n * 2).map(|k| base + k as f32).collect() };
        let mut weights = BTreeMap::new();
        weights.insert("gmf.user_embedding.weight".into(), emb(users.len(), 100.0));
        weights.insert("gmf.item_embedding.weight".into(), emb(items.len(), 200.0));
        weights.insert("output.weight".into(), Tensor32 { shape: vec![1, 2], data: vec![0.5, -0.5] });
        ModelArtifact {
            spec,
            weights,
            user_ids: IdMap::from_ints(users),
            item_ids: IdMap::from_ints(items),
            seen_ptr: vec![0],
            seen_items: vec![],
            popularity: vec![],
        }
    }

    #[test]
    fn known_ids_keep_their_rows_and_new_ones_are_small_and_random() {
        let old = artifact(vec![10, 20, 30], vec![7, 8]);
        // New order, one user gone (20), one new (40); items: 8 kept, 9 new.
        let users = IdMap::from_ints(vec![30, 40, 10]);
        let items = IdMap::from_ints(vec![9, 8]);
        let w = warm_start_weights(&old, &old.spec.clone(), &users, &items, 1).unwrap();
        assert_eq!((w.known_users, w.known_items), (2, 1));
        let u = &w.weights["gmf.user_embedding.weight"];
        assert_eq!(u.shape, vec![3, 2]);
        assert_eq!(&u.data[0..2], &[104.0, 105.0]); // user 30 was row 2
        assert_eq!(&u.data[4..6], &[100.0, 101.0]); // user 10 was row 0
        assert!(u.data[2..4].iter().all(|x| x.abs() < 0.1 && *x != 0.0));
        let i = &w.weights["gmf.item_embedding.weight"];
        assert_eq!(&i.data[2..4], &[202.0, 203.0]);
        assert_eq!(w.weights["output.weight"].data, vec![0.5, -0.5]);
    }

    #[test]
    fn a_different_shape_or_id_type_is_refused_with_the_remedy() {
        let old = artifact(vec![1], vec![2]);
        let mut other = old.spec.clone();
        other.factors = 4;
        let e = warm_start_weights(&old, &other, &old.user_ids, &old.item_ids, 1).unwrap_err();
        assert!(e.contains("2 factors") && e.contains("4 factors") && e.contains("; use "), "{e}");
        let texts = IdMap::from_texts(vec!["a".into()]);
        let e = warm_start_weights(&old, &old.spec.clone(), &texts, &old.item_ids, 1).unwrap_err();
        assert!(e.contains("user ids") && e.contains("bigint") && e.contains("text"), "{e}");
    }
}
