//! Training end to end in the core: the model learns planted structure, and the CPU serving
//! kernel reproduces libtorch's forward pass.
mod common;

use neumf_core::codec::ModelArtifact;
use neumf_core::infer::ScoringModel;
use neumf_core::metrics::{rank_of_first, HitRate};
use neumf_core::model::{load_weights, NcfNet};
use neumf_core::spec::{Architecture, DeviceChoice, TrainConfig};
use neumf_core::train::{train, Quiet};
use rand::{rngs::StdRng, Rng, SeedableRng};
use std::collections::BTreeMap;
use std::sync::Mutex;
use tch::{nn, Device, Kind, Tensor};

/// libtorch's RNG and thread pool are process-global; the test harness runs tests on parallel
/// threads, so trainings take turns (a backend trains one model at a time anyway).
static LIBTORCH: Mutex<()> = Mutex::new(());
fn serial() -> std::sync::MutexGuard<'static, ()> {
    LIBTORCH.lock().unwrap_or_else(|e| e.into_inner())
}

fn config(arch: Architecture, epochs: usize) -> TrainConfig {
    let mut c = TrainConfig::paper_defaults();
    c.spec.architecture = arch;
    c.epochs = epochs;
    c.device = DeviceChoice::Cpu;
    c.batch_size = 128;
    c.learning_rate = 0.005;
    c
}

fn artifact(
    data: &neumf_core::dataset::Interactions,
    cfg: &TrainConfig,
    weights: BTreeMap<String, neumf_core::codec::Tensor32>,
) -> ModelArtifact {
    ModelArtifact::new(cfg.spec.clone(), weights, data)
}

#[test]
fn learns_planted_clusters_for_every_architecture() {
    let _turn = serial();
    let (data, held_out) = common::planted(300, 200, 5, 12, 7);
    for arch in [Architecture::Gmf, Architecture::Mlp, Architecture::NeuMF] {
        let cfg = config(arch, 8);
        let out = train(&data, None, &cfg, &mut Quiet).unwrap();
        assert!(out.summary.final_loss < out.summary.epochs[0].loss, "{arch}: loss did not fall");
        let blob = artifact(&data, &cfg, out.weights).encode(&BTreeMap::new()).unwrap();
        let model = ScoringModel::from_artifact(ModelArtifact::decode(&blob).unwrap()).unwrap();
        // HR@10 of the held-out item among 49 random unseen items (random ranking: 0.2).
        let mut rng = StdRng::seed_from_u64(1);
        let mut hr = HitRate::new(10);
        for &(u, pos) in &held_out {
            let seen = model.seen(u);
            let mut cands = vec![pos];
            while cands.len() < 50 {
                let i = rng.gen_range(0..200u32);
                if i != pos && !seen.contains(&i) && !cands.contains(&i) {
                    cands.push(i);
                }
            }
            let mut ctx = model.user_context(u);
            let scores: Vec<f32> = cands.iter().map(|&i| ctx.score(i)).collect();
            hr.add_rank(rank_of_first(&scores));
        }
        assert!(hr.hr() > 0.6, "{arch}: HR@10 {} on planted clusters", hr.hr());
    }
}

#[test]
fn kernel_matches_libtorch_forward() {
    let _turn = serial();
    let (data, _) = common::planted(120, 90, 3, 10, 3);
    for arch in [Architecture::Gmf, Architecture::Mlp, Architecture::NeuMF] {
        let mut cfg = config(arch, 2);
        cfg.spec.factors = 16;
        cfg.spec.layers = vec![32, 24, 12, 6];
        let out = train(&data, None, &cfg, &mut Quiet).unwrap();
        let weights = out.weights.clone();
        let model = ScoringModel::from_artifact(artifact(&data, &cfg, out.weights)).unwrap();

        let mut vs = nn::VarStore::new(Device::Cpu);
        let net = NcfNet::new(&vs.root(), &cfg.spec, data.n_users(), data.n_items());
        load_weights(&mut vs, &weights).unwrap();
        let (nu, ni) = (data.n_users() as i64, data.n_items() as i64);
        let users = Tensor::arange(nu, (Kind::Int64, Device::Cpu)).repeat_interleave_self_int(ni, 0, None);
        let items = Tensor::arange(ni, (Kind::Int64, Device::Cpu)).repeat([nu]);
        let reference: Vec<f32> = Vec::try_from(&tch::no_grad(|| net.logits(&users, &items))).unwrap();

        let mut max_diff = 0f32;
        for u in 0..nu as u32 {
            let mut ctx = model.user_context(u);
            for i in 0..ni as u32 {
                let want = reference[(u as usize) * ni as usize + i as usize];
                max_diff = max_diff.max((ctx.logit(i) - want).abs());
            }
        }
        assert!(max_diff <= 1e-5, "{arch}: kernel differs from libtorch by {max_diff}");
    }
}

#[test]
fn cuda_request_without_gpu_is_a_clear_error() {
    if tch::Cuda::is_available() {
        return;
    }
    let (data, _) = common::planted(20, 20, 2, 4, 1);
    let mut cfg = config(Architecture::NeuMF, 1);
    cfg.device = DeviceChoice::Cuda;
    let err = train(&data, None, &cfg, &mut Quiet).unwrap_err().to_string();
    assert!(err.contains("no CUDA device"), "{err}");
}

#[test]
fn same_seed_same_model_on_cpu() {
    let _turn = serial();
    let (data, _) = common::planted(50, 40, 2, 6, 2);
    let cfg = config(Architecture::NeuMF, 2);
    let a = train(&data, None, &cfg, &mut Quiet).unwrap();
    let b = train(&data, None, &cfg, &mut Quiet).unwrap();
    assert_eq!(a.weights, b.weights);
}
