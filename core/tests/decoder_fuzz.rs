//! Mutation fuzzing of the stored-model decoder and the serving kernel built from it: valid
//! blobs (bigint and text ids) are truncated, bit-flipped, spliced, given absurd lengths and
//! counts (in the binary header and in the JSON header's numbers), then decoded; whatever
//! decodes is turned into a `ScoringModel` and served. Every execution must return Ok or Err,
//! never panic. Runs stable Rust (no cargo-fuzz).
//!
//! `NEUMF_FUZZ_EXECS` sets the number of executions (default 20,000 for the test layer; the
//! benchmark runs 1,000,000: bench/fuzz_decoder.sh).

use neumf_core::codec::{seal_checksum, ModelArtifact, Tensor32};
use neumf_core::ids::IdMap;
use neumf_core::infer::ScoringModel;
use neumf_core::spec::{Architecture, ModelSpec};
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use std::collections::BTreeMap;
use std::panic::{catch_unwind, AssertUnwindSafe};
use std::time::{Duration, Instant};

fn tensor(rng: &mut StdRng, shape: &[usize]) -> Tensor32 {
    let n = shape.iter().product();
    Tensor32 { shape: shape.to_vec(), data: (0..n).map(|_| rng.gen_range(-0.5..0.5)).collect() }
}

/// A small, valid NeuMF model with `nu` users and `ni` items.
fn artifact(rng: &mut StdRng, text_ids: bool) -> ModelArtifact {
    let spec = ModelSpec { architecture: Architecture::NeuMF, factors: 4, layers: vec![16, 8, 4] };
    let (nu, ni) = (7, 11);
    let d = spec.mlp_embedding_dim();
    let mut w = BTreeMap::new();
    w.insert("gmf.user_embedding.weight".into(), tensor(rng, &[nu, 4]));
    w.insert("gmf.item_embedding.weight".into(), tensor(rng, &[ni, 4]));
    w.insert("mlp.user_embedding.weight".into(), tensor(rng, &[nu, d]));
    w.insert("mlp.item_embedding.weight".into(), tensor(rng, &[ni, d]));
    w.insert("mlp.layers.0.weight".into(), tensor(rng, &[8, 16]));
    w.insert("mlp.layers.0.bias".into(), tensor(rng, &[8]));
    w.insert("mlp.layers.1.weight".into(), tensor(rng, &[4, 8]));
    w.insert("mlp.layers.1.bias".into(), tensor(rng, &[4]));
    w.insert("output.weight".into(), tensor(rng, &[1, spec.output_input_dim()]));
    w.insert("output.bias".into(), tensor(rng, &[1]));
    let mut seen_ptr = vec![0u64];
    let mut seen_items = Vec::new();
    for u in 0..nu {
        let mut items: Vec<u32> = (0..ni as u32).filter(|i| (i + u as u32).is_multiple_of(3)).collect();
        items.sort();
        seen_items.extend(items);
        seen_ptr.push(seen_items.len() as u64);
    }
    let (user_ids, item_ids) = if text_ids {
        (
            IdMap::from_texts((0..nu).map(|u| format!("user-{u}").into()).collect()),
            IdMap::from_texts((0..ni).map(|i| format!("sku-{i}-ü").into()).collect()),
        )
    } else {
        (IdMap::from_ints((0..nu as i64).map(|u| u * 10).collect()), IdMap::from_ints((100..100 + ni as i64).collect()))
    };
    let popularity = (0..ni as u64).map(|i| i % 4).collect();
    ModelArtifact { spec, weights: w, user_ids, item_ids, seen_ptr, seen_items, popularity }
}

/// One mutation of `blob`, in place.
fn mutate(rng: &mut StdRng, blob: &mut Vec<u8>) {
    let header_end =
        blob.get(..8).map(|b| 8 + u64::from_le_bytes(b.try_into().unwrap()) as usize).unwrap_or(0).min(blob.len());
    match rng.gen_range(0..7) {
        // Flip a few bits anywhere.
        0 => {
            for _ in 0..rng.gen_range(1..8) {
                if !blob.is_empty() {
                    let i = rng.gen_range(0..blob.len());
                    blob[i] ^= 1 << rng.gen_range(0..8);
                }
            }
        }
        // Truncate.
        1 => {
            let keep = rng.gen_range(0..=blob.len());
            blob.truncate(keep);
        }
        // An absurd 64-bit length or count over 8 bytes (the header size, offsets, id data).
        2 => {
            if blob.len() >= 8 {
                let i = if rng.gen_bool(0.2) { 0 } else { rng.gen_range(0..blob.len() - 7) };
                let v: u64 = match rng.gen_range(0..5) {
                    0 => u64::MAX,
                    1 => i64::MIN as u64,
                    2 => 1 << rng.gen_range(20..63),
                    3 => rng.gen(),
                    _ => blob.len() as u64 + rng.gen_range(0..64),
                };
                blob[i..i + 8].copy_from_slice(&v.to_le_bytes());
            }
        }
        // A number in the JSON header (shapes, data offsets, spec) made large, zero or negative.
        3 | 4 => {
            let digits: Vec<usize> = (8..header_end).filter(|&i| blob[i].is_ascii_digit()).collect();
            if !digits.is_empty() {
                let i = digits[rng.gen_range(0..digits.len())];
                let replacement: &[u8] = match rng.gen_range(0..4) {
                    0 => b"9999999999",
                    1 => b"0",
                    2 => b"-1",
                    _ => b"18446744073709551615",
                };
                blob.splice(i..i + 1, replacement.iter().copied());
            }
        }
        // Splice random bytes in.
        5 => {
            let at = rng.gen_range(0..=blob.len());
            let n = rng.gen_range(1..32);
            let bytes: Vec<u8> = (0..n).map(|_| rng.gen()).collect();
            blob.splice(at..at, bytes);
        }
        // Repeat a slice of the blob elsewhere (plausible-looking structure in the wrong place).
        _ => {
            if blob.len() > 16 {
                let from = rng.gen_range(0..blob.len() - 8);
                let len = rng.gen_range(1..(blob.len() - from).min(64));
                let chunk = blob[from..from + len].to_vec();
                let to = rng.gen_range(0..blob.len() - len);
                blob[to..to + len].copy_from_slice(&chunk);
            }
        }
    }
}

/// Decodes and, when that succeeds, serves: every path a stored blob takes in a backend.
fn exercise(blob: &[u8]) -> bool {
    let Ok(art) = ModelArtifact::decode(blob) else { return false };
    let Ok(model) = ScoringModel::from_artifact(art) else { return false };
    let (nu, ni) = (model.n_users() as u32, model.n_items() as u32);
    let _ = model.most_popular(5);
    for user in 0..nu.min(3) {
        let _ = model.seen(user);
        let _ = model.rank(user, (0..ni).map(Some), 5);
        let mut context = model.user_context(user);
        for item in 0..ni.min(5) {
            let _ = context.score(item);
        }
    }
    true
}

#[test]
fn mutated_blobs_never_panic() {
    let execs: usize = std::env::var("NEUMF_FUZZ_EXECS").ok().and_then(|v| v.parse().ok()).unwrap_or(20_000);
    let mut rng = StdRng::seed_from_u64(0x6e65756d66);
    let seeds: Vec<Vec<u8>> = [false, true]
        .iter()
        .map(|&text| artifact(&mut rng, text).encode(&BTreeMap::new()).expect("valid model encodes"))
        .collect();
    for seed in &seeds {
        assert!(exercise(seed), "the unmutated blob must decode and serve");
    }
    // Panics are caught and counted; silence the default hook's report of each one.
    std::panic::set_hook(Box::new(|_| {}));
    let started = Instant::now();
    let (mut panics, mut served, mut slowest) = (Vec::new(), 0usize, Duration::ZERO);
    for n in 0..execs {
        let mut blob = seeds[n % seeds.len()].clone();
        for _ in 0..rng.gen_range(1..4) {
            mutate(&mut rng, &mut blob);
        }
        // Half the blobs get a valid checksum over their damaged bytes (as a buggy writer would
        // produce), so that the decoder's own checks are exercised, not only the checksum.
        if n % 2 == 1 {
            let _ = seal_checksum(&mut blob);
        }
        let t = Instant::now();
        match catch_unwind(AssertUnwindSafe(|| exercise(&blob))) {
            Ok(true) => served += 1,
            Ok(false) => {}
            Err(e) => {
                let message = e
                    .downcast_ref::<String>()
                    .cloned()
                    .or_else(|| e.downcast_ref::<&str>().map(|s| s.to_string()))
                    .unwrap_or_default();
                if panics.len() < 5 {
                    panics.push(format!("execution {n}: {message}"));
                } else {
                    panics.push(String::new());
                }
            }
        }
        slowest = slowest.max(t.elapsed());
    }
    let _ = std::panic::take_hook();
    println!(
        "decoder fuzzing: {execs} executions in {:.1} s, {served} mutated blobs still decoded and served, {} panics, slowest execution {:.2} ms",
        started.elapsed().as_secs_f64(),
        panics.len(),
        slowest.as_secs_f64() * 1e3
    );
    assert!(
        panics.is_empty(),
        "{} of {execs} mutated blobs panicked; first: {:#?}",
        panics.len(),
        &panics[..panics.len().min(5)]
    );
}
