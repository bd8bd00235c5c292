//! Compares the CPU serving kernel with libtorch's forward pass on a stored model, over every
//! (user, item) pair: `kernel_check model.safetensors` (e.g. from `SELECT neumf_export('m')`).
//! Prints one JSON line with the maximum absolute difference of the probabilities and logits.
use neumf_core::codec::ModelArtifact;
use neumf_core::infer::{sigmoid, ScoringModel};
use neumf_core::model::{load_weights, NcfNet};
use tch::{nn, Device, Kind, Tensor};

fn main() -> anyhow::Result<()> {
    let path = std::env::args().nth(1).ok_or_else(|| anyhow::anyhow!("usage: kernel_check MODEL.safetensors"))?;
    let blob = std::fs::read(&path)?;
    let artifact = ModelArtifact::decode(&blob)?;
    let (nu, ni) = (artifact.user_ids.len() as i64, artifact.item_ids.len() as i64);
    let spec = artifact.spec.clone();
    let weights = artifact.weights.clone();
    let kernel = ScoringModel::from_artifact(artifact)?;

    tch::set_num_threads(1);
    let mut vs = nn::VarStore::new(Device::Cpu);
    let net = NcfNet::new(&vs.root(), &spec, nu as usize, ni as usize);
    load_weights(&mut vs, &weights)?;
    let (mut max_logit, mut max_prob) = (0f32, 0f32);
    for u in 0..nu {
        let users = Tensor::full([ni], u, (Kind::Int64, Device::Cpu));
        let items = Tensor::arange(ni, (Kind::Int64, Device::Cpu));
        let reference: Vec<f32> = Vec::try_from(&tch::no_grad(|| net.logits(&users, &items)))?;
        // The batched path, as neumf_rank / neumf_recommend use it.
        let mut ctx = kernel.user_context(u as u32);
        let all: Vec<u32> = (0..ni as u32).collect();
        let mut batch = Vec::new();
        ctx.logits(&all, &mut batch);
        for (&got, &want) in batch.iter().zip(&reference) {
            max_logit = max_logit.max((got - want).abs());
            max_prob = max_prob.max((sigmoid(got) - sigmoid(want)).abs());
        }
    }
    // What one neumf_rank call costs inside the kernel: 100 random candidates, top 10.
    let mut seed = 7u64;
    let mut next = |n: i64| {
        seed = seed.wrapping_mul(6_364_136_223_846_793_005).wrapping_add(1_442_695_040_888_963_407);
        ((seed >> 33) % n as u64) as u32
    };
    let requests: Vec<(u32, Vec<u32>)> = (0..1000).map(|_| (next(nu), (0..100).map(|_| next(ni)).collect())).collect();
    let rounds = 50;
    let started = std::time::Instant::now();
    let mut checksum = 0usize;
    for _ in 0..rounds {
        for (u, cands) in &requests {
            checksum += kernel.rank(*u, cands.iter().map(|&i| Some(i)), 10)[0].0;
        }
    }
    let rank_us = started.elapsed().as_secs_f64() * 1e6 / (rounds * requests.len()) as f64;
    println!(
        "{{\"pairs\": {}, \"max_abs_diff_probability\": {:e}, \"max_abs_diff_logit\": {:e}, \"rank_100_candidates_us\": {:.2}, \"checksum\": {}}}",
        nu * ni,
        max_prob,
        max_logit,
        rank_us,
        checksum % 1000
    );
    Ok(())
}
