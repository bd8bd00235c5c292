//! Training end to end in the core: the model learns planted structure, and the CPU serving
//! kernel reproduces libtorch's forward pass.
mod common;

use neumf_core::codec::ModelArtifact;
use neumf_core::infer::ScoringModel;
use neumf_core::metrics::{rank_of_first, HitRate};
use neumf_core::model::{load_weights, NcfNet};
use neumf_core::spec::{Architecture, DeviceChoice, Precision, TrainConfig};
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

/// HR@10 of each held-out item among 49 random items the user has not seen (random: 0.2).
fn planted_hr(model: &ScoringModel, held_out: &[(u32, u32)], n_items: u32) -> f64 {
    let mut rng = StdRng::seed_from_u64(1);
    let mut hr = HitRate::new(10);
    for &(u, pos) in held_out {
        let seen = model.seen(u);
        let mut cands = vec![pos];
        while cands.len() < 50 {
            let i = rng.gen_range(0..n_items);
            if i != pos && !seen.contains(&i) && !cands.contains(&i) {
                cands.push(i);
            }
        }
        let mut ctx = model.user_context(u);
        let scores: Vec<f32> = cands.iter().map(|&i| ctx.score(i)).collect();
        hr.add_rank(rank_of_first(&scores));
    }
    hr.hr()
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
        let hr = planted_hr(&model, &held_out, 200);
        assert!(hr > 0.6, "{arch}: HR@10 {hr} on planted clusters");
    }
}

#[test]
fn bf16_mixed_precision_learns_as_well_and_keeps_f32_weights() {
    let _turn = serial();
    let (data, held_out) = common::planted(300, 200, 5, 12, 7);
    let fp32_cfg = config(Architecture::NeuMF, 8);
    let mut bf16_cfg = fp32_cfg.clone();
    bf16_cfg.precision = Precision::Bf16;
    let fp32 = train(&data, None, &fp32_cfg, &mut Quiet).unwrap();
    let bf16 = train(&data, None, &bf16_cfg, &mut Quiet).unwrap();
    // The forward pass really ran in bfloat16: same seed, different arithmetic, other weights.
    assert_ne!(fp32.weights, bf16.weights);
    assert!(bf16.weights.values().all(|t| t.data.iter().all(|x| x.is_finite())));
    assert!(bf16.summary.final_loss < bf16.summary.epochs[0].loss, "bf16: loss did not fall");
    let hr = |weights| {
        planted_hr(&ScoringModel::from_artifact(artifact(&data, &fp32_cfg, weights)).unwrap(), &held_out, 200)
    };
    let (hr32, hr16) = (hr(fp32.weights), hr(bf16.weights));
    assert!(hr16 > 0.6 && hr16 > hr32 - 0.05, "bf16 HR@10 {hr16} vs fp32 {hr32}");
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
