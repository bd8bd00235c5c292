//! The training loop: binary cross-entropy over positives and negatives drawn afresh every
//! epoch, exact (never a known positive), vectorised on the training device; shuffled
//! mini-batches; Adam (AdamW with weight decay). With a holdout, every epoch is validated on
//! fixed negatives and the best epoch's weights are kept (early stopping). With `pretrain`,
//! GMF and MLP are trained first and NeuMF starts from both (He et al. §3.4.1).
//! The caller observes every batch (to honour query cancel) and every epoch (progress).

use crate::codec::Tensor32;
use crate::dataset::Interactions;
use crate::eval::{self, PairScorer, RankingMetrics};
use crate::holdout::Holdout;
use crate::model::{export_weights, load_matching, NcfNet};
use crate::optim::{CpuAdam, FlatAdam};
use crate::spec::{Architecture, DeviceChoice, Sampling, TrainConfig};
use anyhow::{bail, Result};
use std::collections::BTreeMap;
use std::time::Instant;
use tch::nn;
use tch::{Device, Kind, Reduction, Tensor};

pub use crate::progress::{EpochReport, TrainSummary};

/// Hooks the caller uses to stop training (return an error or panic) and to see progress.
pub trait TrainObserver {
    /// Called between mini-batches with the epoch's samples done so far and its total (0 and 0
    /// outside the epoch's main loop); the SQL layer checks for query cancel here.
    fn on_batch(&mut self, _done: usize, _total: usize) -> Result<()> {
        Ok(())
    }
    fn on_epoch(&mut self, _report: &EpochReport) -> Result<()> {
        Ok(())
    }
}

/// Does nothing; for tests and benchmarks.
pub struct Quiet;
impl TrainObserver for Quiet {}

/// A trained model on the host, ready to be encoded, and what happened on the way.
#[derive(Debug)]
pub struct TrainOutcome {
    pub weights: BTreeMap<String, Tensor32>,
    pub summary: TrainSummary,
}

/// Picks the training device. Touches CUDA, so only call it inside a training request.
pub fn resolve_device(choice: DeviceChoice) -> Result<Device> {
    match choice {
        DeviceChoice::Cpu => Ok(Device::Cpu),
        DeviceChoice::Auto => Ok(if tch::Cuda::is_available() { Device::Cuda(0) } else { Device::Cpu }),
        DeviceChoice::Cuda => {
            if tch::Cuda::is_available() {
                Ok(Device::Cuda(0))
            } else {
                bail!("device => 'cuda' was requested but {}", crate::failure::NO_CUDA_DEVICE)
            }
        }
    }
}

pub fn device_name(device: Device) -> String {
    match device {
        Device::Cpu => "cpu".into(),
        Device::Cuda(i) => format!("cuda:{i}"),
        other => format!("{other:?}").to_lowercase(),
    }
}

fn to_device_i64(v: &[u32], device: Device) -> Result<Tensor> {
    let v: Vec<i64> = v.iter().map(|&x| x as i64).collect();
    Ok(Tensor::f_from_slice(&v)?.f_to(device)?)
}

/// Scores pairs with a libtorch model in evaluation mode (no dropout, no gradients).
struct NetScorer<'a> {
    net: &'a NcfNet,
    device: Device,
}

impl PairScorer for NetScorer<'_> {
    fn score_pairs(&mut self, users: &[u32], items: &[u32]) -> Result<Vec<f32>> {
        let _guard = tch::no_grad_guard();
        let mut out = Vec::with_capacity(users.len());
        for (u, i) in users.chunks(1 << 18).zip(items.chunks(1 << 18)) {
            let logits = self.net.logits(&to_device_i64(u, self.device)?, &to_device_i64(i, self.device)?);
            out.extend(Vec::<f32>::try_from(&logits.f_to_kind(Kind::Float)?.f_to(Device::Cpu)?)?);
        }
        Ok(out)
    }
}

/// Draws negatives for every positive, exactly: a draw that hits a known positive (binary
/// search in the sorted keys user * n_items + item) is redrawn. Users who interacted with every
/// item get none.
struct NegativeSampler {
    keys: Tensor,
    n_items: i64,
    /// The user of each positive whose user still has an unseen item.
    users: Tensor,
    /// Popularity weights (count^exponent) for `Sampling::Popularity`.
    weights: Option<Tensor>,
}

impl NegativeSampler {
    fn new(data: &Interactions, pos_users: &Tensor, sampling: Sampling, device: Device) -> Result<Self> {
        let n_items = data.n_items() as i64;
        // Interactions are sorted by (user, item), so these keys are already sorted.
        let keys: Vec<i64> = data.users.iter().zip(&data.items).map(|(&u, &i)| u as i64 * n_items + i as i64).collect();
        let keys = Tensor::f_from_slice(&keys)?.f_to(device)?;
        let full: Vec<bool> = (0..data.n_users() as u32).map(|u| data.seen(u).len() as i64 >= n_items).collect();
        let users = if full.iter().any(|&f| f) {
            let full = Tensor::f_from_slice(&full)?.f_to(device)?;
            let keep = full.f_index_select(0, pos_users)?.f_logical_not()?;
            pos_users.f_masked_select(&keep)?
        } else {
            pos_users.shallow_clone()
        };
        let weights = match sampling {
            Sampling::Popularity { exponent } => {
                let w: Vec<f64> = data.popularity.iter().map(|&c| (c.max(1) as f64).powf(exponent)).collect();
                Some(Tensor::f_from_slice(&w)?.f_to_kind(Kind::Float)?.f_to(device)?)
            }
            _ => None,
        };
        Ok(Self { keys, n_items, users, weights })
    }

    fn is_positive(&self, users: &Tensor, items: &Tensor) -> Result<Tensor> {
        let k = users.f_mul_scalar(self.n_items)?.f_add(items)?;
        let last = self.keys.size()[0] - 1;
        let j = k.f_searchsorted(&self.keys, false, false, "left", None::<Tensor>)?.f_clamp_max(last)?;
        Ok(self.keys.f_index_select(0, &j)?.f_eq_tensor(&k)?)
    }

    fn raw_draw(&self, n: i64) -> Result<Tensor> {
        let device = self.keys.device();
        Ok(match &self.weights {
            Some(w) => w.f_multinomial(n, true)?,
            None => Tensor::f_randint(self.n_items, [n], (Kind::Int64, device))?,
        })
    }

    /// Returns (users, items) of fresh negatives.
    fn draw(&self, per_positive: usize) -> Result<(Tensor, Tensor)> {
        let users = self.users.f_repeat_interleave_self_int(per_positive as i64, 0, None)?;
        let mut items = self.raw_draw(users.size()[0])?;
        for _ in 0..1000 {
            let bad = self.is_positive(&users, &items)?;
            let n_bad = bad.f_sum(Kind::Int64)?.int64_value(&[]);
            if n_bad == 0 {
                return Ok((users, items));
            }
            items = items.f_masked_scatter(&bad, &self.raw_draw(n_bad)?)?;
        }
        // Users with almost every item seen: drop the rows still colliding rather than loop on.
        let ok = self.is_positive(&users, &items)?.f_logical_not()?;
        Ok((users.f_masked_select(&ok)?, items.f_masked_select(&ok)?))
    }

    /// Replaces a `share` of the negatives by the highest-scoring non-positive of `pool` uniform
    /// candidates under the current model.
    fn harden(
        &self,
        net: &NcfNet,
        users: &Tensor,
        items: &Tensor,
        pool: usize,
        share: f64,
        observer: &mut dyn TrainObserver,
    ) -> Result<Tensor> {
        let _guard = tch::no_grad_guard();
        let device = users.device();
        let n = users.size()[0];
        let n_hard = ((n as f64) * share).round() as i64;
        let rows = Tensor::f_randperm(n, (Kind::Int64, device))?.f_narrow(0, 0, n_hard)?;
        let mut items = items.f_detach_copy()?;
        let pool = pool as i64;
        let chunk = ((1i64 << 20) / pool).max(1);
        let mut start = 0;
        while start < n_hard {
            observer.on_batch(0, 0)?;
            let len = chunk.min(n_hard - start);
            let r = rows.f_narrow(0, start, len)?;
            let u = users.f_index_select(0, &r)?.f_unsqueeze(1)?.f_expand([len, pool], false)?.f_reshape([-1])?;
            let cand = Tensor::f_randint(self.n_items, [len * pool], (Kind::Int64, device))?;
            let mut logits = net.logits(&u, &cand).f_view([len, pool])?;
            let positive = self.is_positive(&u, &cand)?.f_view([len, pool])?;
            let _ = logits.f_masked_fill_(&positive, f64::NEG_INFINITY)?;
            let (best, at) = logits.f_max_dim(1, true)?;
            let chosen = cand.f_view([len, pool])?.f_gather(1, &at, false)?.f_squeeze_dim(1)?;
            let usable = best.f_squeeze_dim(1)?.f_isfinite()?;
            let current = items.f_index_select(0, &r)?;
            let _ = items.f_index_copy_(0, &r, &chosen.f_where_self(&usable, &current)?)?;
            start += len;
        }
        Ok(items)
    }
}

/// Adam / AdamW as one vectorised pass on the CPU, or over one flat buffer on a GPU (see `optim`).
enum Optimizer {
    Flat(FlatAdam),
    Cpu(CpuAdam),
}

impl Optimizer {
    fn new(vs: &nn::VarStore, cfg: &TrainConfig, device: Device) -> Result<Self> {
        Ok(if device == Device::Cpu {
            Optimizer::Cpu(CpuAdam::new(vs.trainable_variables(), cfg.learning_rate, cfg.weight_decay)?)
        } else {
            Optimizer::Flat(FlatAdam::new(vs.trainable_variables(), cfg.learning_rate, cfg.weight_decay)?)
        })
    }
    fn set_lr(&mut self, lr: f64) {
        match self {
            Optimizer::Flat(o) => o.lr = lr,
            Optimizer::Cpu(o) => o.lr = lr,
        }
    }
    fn backward_step(&mut self, loss: &Tensor) -> Result<()> {
        match self {
            Optimizer::Flat(o) => o.backward_step(loss)?,
            Optimizer::Cpu(o) => {
                loss.backward();
                o.step()?;
            }
        }
        Ok(())
    }
}

/// Per-positive loss weights leaning towards each user's latest interactions (see
/// `TrainConfig::recency_weight`), mean 1; None when off or without timestamps.
fn recency_weights(data: &Interactions, boost: f64, half_life: f64, device: Device) -> Result<Option<Tensor>> {
    if boost <= 0.0 {
        return Ok(None);
    }
    let Some(later) = data.later_counts() else { return Ok(None) };
    let mut w: Vec<f32> = later.iter().map(|&a| (1.0 + boost * (-(a as f64) / half_life).exp2()) as f32).collect();
    let mean = w.iter().map(|&x| x as f64).sum::<f64>() / w.len().max(1) as f64;
    w.iter_mut().for_each(|x| *x = (*x as f64 / mean) as f32);
    Ok(Some(Tensor::f_from_slice(&w)?.f_to(device)?))
}

/// One model trained to the end of its schedule (or stopped early), best weights restored.
struct Fit {
    weights: BTreeMap<String, Tensor32>,
    epochs: Vec<EpochReport>,
    best_epoch: usize,
    validation: Option<RankingMetrics>,
    samples: usize,
    seconds: f64,
}

/// Sampled HR then NDCG: the order early stopping ranks epochs by.
fn better(a: &RankingMetrics, b: &RankingMetrics) -> bool {
    (a.hr, a.ndcg) > (b.hr, b.ndcg)
}

/// What every phase of one training (GMF, MLP, NeuMF) shares, prepared once: the positives on
/// the device, the negative sampler over them and the positives' loss weights.
struct PhaseInputs<'a> {
    data: &'a Interactions,
    holdout: Option<&'a Holdout>,
    device: Device,
    pos_users: Tensor,
    pos_items: Tensor,
    sampler: NegativeSampler,
    pos_weights: Option<Tensor>,
}

impl<'a> PhaseInputs<'a> {
    fn new(data: &'a Interactions, holdout: Option<&'a Holdout>, cfg: &TrainConfig, device: Device) -> Result<Self> {
        let pos_users = to_device_i64(&data.users, device)?;
        let pos_items = to_device_i64(&data.items, device)?;
        let sampler = NegativeSampler::new(data, &pos_users, cfg.sampling, device)?;
        let pos_weights = recency_weights(data, cfg.recency_weight, cfg.recency_half_life, device)?;
        Ok(Self { data, holdout, device, pos_users, pos_items, sampler, pos_weights })
    }
}

fn fit(
    inputs: &PhaseInputs,
    cfg: &TrainConfig,
    init: Option<&BTreeMap<String, Tensor32>>,
    phase: &'static str,
    full_eval: bool,
    observer: &mut dyn TrainObserver,
) -> Result<Fit> {
    let PhaseInputs { data, holdout, device, pos_users, pos_items, sampler, pos_weights } = inputs;
    let (data, holdout, device) = (*data, *holdout, *device);
    let mut vs = nn::VarStore::new(device);
    let sparse = device == Device::Cpu; // CpuAdam takes sparse embedding gradients
    let net = NcfNet::with_gradients(&vs.root(), &cfg.spec, data.n_users(), data.n_items(), sparse)
        .with_dropout(cfg.dropout)
        .with_training_precision(cfg.precision);
    if let Some(w) = init {
        load_matching(&mut vs, w)?;
    }
    let mut opt = Optimizer::new(&vs, cfg, device)?;
    let n_pos = data.len() as i64;

    let started = Instant::now();
    let mut epochs: Vec<EpochReport> = Vec::with_capacity(cfg.epochs);
    let mut samples = 0usize;
    let mut best: Option<(RankingMetrics, usize, Vec<Tensor>)> = None;
    let mut since_best = 0;
    for epoch in 1..=cfg.epochs {
        let epoch_start = Instant::now();
        let lr = cfg.learning_rate * cfg.lr_schedule.factor(epoch - 1, cfg.epochs);
        opt.set_lr(lr);
        let (neg_users, mut neg_items) = sampler.draw(cfg.negatives)?;
        if let Sampling::Hard { pool, share } = cfg.sampling {
            if epoch > 1 {
                // The first epoch's model knows nothing yet: its "hard" picks would be noise.
                neg_items = sampler.harden(&net, &neg_users, &neg_items, pool, share, observer)?;
            }
        }
        let n_neg = neg_users.size()[0];
        let users = Tensor::f_cat(&[pos_users, &neg_users], 0)?;
        let items = Tensor::f_cat(&[pos_items, &neg_items], 0)?;
        let labels = Tensor::f_cat(
            &[Tensor::f_ones([n_pos], (Kind::Float, device))?, Tensor::f_zeros([n_neg], (Kind::Float, device))?],
            0,
        )?;
        let n = n_pos + n_neg;
        let perm = Tensor::f_randperm(n, (Kind::Int64, device))?;
        let (users, items, labels) =
            (users.f_index_select(0, &perm)?, items.f_index_select(0, &perm)?, labels.f_index_select(0, &perm)?);
        let weights = match pos_weights {
            Some(w) => Some(
                Tensor::f_cat(&[w, &Tensor::f_ones([n_neg], (Kind::Float, device))?], 0)?.f_index_select(0, &perm)?,
            ),
            None => None,
        };

        // Summed on the device; read once per epoch so GPU batches never wait on the host.
        let mut loss_sum = Tensor::f_zeros([], (Kind::Double, device))?;
        let bs = cfg.batch_size as i64;
        let mut start = 0i64;
        while start < n {
            observer.on_batch(start as usize, n as usize)?;
            let len = bs.min(n - start);
            let u = users.f_narrow(0, start, len)?;
            let i = items.f_narrow(0, start, len)?;
            let y = labels.f_narrow(0, start, len)?;
            let w = weights.as_ref().map(|w| w.f_narrow(0, start, len)).transpose()?;
            let loss =
                net.logits_t(&u, &i, true).f_binary_cross_entropy_with_logits(&y, w.as_ref(), None, Reduction::Mean)?;
            opt.backward_step(&loss)?;
            // Every batch but the last is full: add its mean loss as is (one kernel).
            let batch_loss = loss.f_detach()?;
            let _ = if len == bs {
                loss_sum.f_add_(&batch_loss)?
            } else {
                loss_sum.f_add_(&batch_loss.f_mul_scalar(len as f64 / bs as f64)?)?
            };
            start += len;
        }
        let loss = loss_sum.f_double_value(&[])? * bs as f64 / n as f64;
        if !loss.is_finite() {
            bail!(
                "training diverged at epoch {epoch} (loss is {loss}); lower learning_rate (now {})",
                cfg.learning_rate
            );
        }
        samples += n as usize;
        let train_seconds = epoch_start.elapsed().as_secs_f64();

        let validation = match holdout {
            Some(h) if !h.is_empty() => Some(eval::sampled(&mut NetScorer { net: &net, device }, h, cfg.eval_k)?),
            _ => None,
        };
        let report = EpochReport {
            phase: phase.to_string(),
            epoch,
            epochs: cfg.epochs,
            loss,
            samples: n as usize,
            seconds: train_seconds,
            learning_rate: lr,
            validation,
        };
        observer.on_epoch(&report)?;
        epochs.push(report);

        if let Some(v) = validation {
            if best.as_ref().is_none_or(|(b, _, _)| better(&v, b)) {
                let _guard = tch::no_grad_guard();
                let snapshot = vs.trainable_variables().iter().map(|t| t.f_detach_copy()).collect::<Result<_, _>>()?;
                best = Some((v, epoch, snapshot));
                since_best = 0;
            } else {
                since_best += 1;
                if cfg.patience > 0 && since_best >= cfg.patience {
                    break;
                }
            }
        }
    }
    let mut best_epoch = epochs.len();
    let mut validation = None;
    if let Some((metrics, epoch, snapshot)) = best {
        let _guard = tch::no_grad_guard();
        for (mut var, saved) in vs.trainable_variables().into_iter().zip(&snapshot) {
            var.f_copy_(saved)?;
        }
        best_epoch = epoch;
        let mut m = metrics;
        if full_eval {
            let h = holdout.expect("validation metrics imply a holdout");
            let (recall, ndcg, users) =
                eval::full_catalogue(&mut NetScorer { net: &net, device }, data, h, cfg.eval_k, 2000)?;
            (m.full_recall, m.full_ndcg, m.full_users) = (Some(recall), Some(ndcg), Some(users));
        }
        validation = Some(m);
    }
    Ok(Fit {
        weights: export_weights(&vs)?,
        epochs,
        best_epoch,
        validation,
        samples,
        seconds: started.elapsed().as_secs_f64(),
    })
}

/// NeuMF's starting point from trained GMF and MLP: their embeddings and towers as they are,
/// output weights h = [α h_GMF ; (1 − α) h_MLP] (He et al. §3.4.1, α = 0.5).
fn fuse_pretrained(
    gmf: &BTreeMap<String, Tensor32>,
    mlp: &BTreeMap<String, Tensor32>,
    alpha: f32,
) -> Result<BTreeMap<String, Tensor32>> {
    let mut w: BTreeMap<String, Tensor32> = BTreeMap::new();
    w.extend(gmf.iter().filter(|(k, _)| k.starts_with("gmf.")).map(|(k, v)| (k.clone(), v.clone())));
    w.extend(mlp.iter().filter(|(k, _)| k.starts_with("mlp.")).map(|(k, v)| (k.clone(), v.clone())));
    let get = |m: &BTreeMap<String, Tensor32>, k: &str| {
        m.get(k).cloned().ok_or_else(|| anyhow::anyhow!("pretrained model lacks {k}"))
    };
    let (hg, hm) = (get(gmf, "output.weight")?, get(mlp, "output.weight")?);
    let (bg, bm) = (get(gmf, "output.bias")?, get(mlp, "output.bias")?);
    let mut h: Vec<f32> = hg.data.iter().map(|x| alpha * x).collect();
    h.extend(hm.data.iter().map(|x| (1.0 - alpha) * x));
    w.insert("output.weight".into(), Tensor32 { shape: vec![1, h.len()], data: h });
    w.insert(
        "output.bias".into(),
        Tensor32 { shape: vec![1], data: vec![alpha * bg.data[0] + (1.0 - alpha) * bm.data[0]] },
    );
    Ok(w)
}

/// The phases of one training (GMF, MLP, NeuMF with pretraining; else one) and the best
/// epoch of each.
struct Phases {
    last: Fit,
    best: Vec<usize>,
}

fn check(data: &Interactions, cfg: &TrainConfig) -> Result<Device> {
    cfg.validate().map_err(anyhow::Error::msg)?;
    if data.is_empty() {
        bail!("no interactions to train on");
    }
    cfg.check_fits(data.len()).map_err(anyhow::Error::msg)?;
    let device = resolve_device(cfg.device)?;
    // On the CPU an impossible training is refused with its size before any allocation (a GPU's
    // own allocator reports the same as an out-of-memory failure when it happens).
    if device == Device::Cpu {
        if let Some(available) = physical_memory_bytes() {
            cfg.memory_need(data.n_users(), data.n_items(), data.len()).check(available).map_err(anyhow::Error::msg)?;
        }
    }
    tch::set_num_threads(cfg.threads as i32);
    tch::manual_seed(cfg.seed as i64);
    Ok(device)
}

/// The machine's memory (MemTotal), where /proc/meminfo says.
fn physical_memory_bytes() -> Option<u64> {
    let info = std::fs::read_to_string("/proc/meminfo").ok()?;
    let kb: u64 =
        info.lines().find_map(|l| l.strip_prefix("MemTotal:"))?.trim().trim_end_matches("kB").trim().parse().ok()?;
    Some(kb * 1024)
}

/// Runs every phase; `epochs` fixes each phase's epoch count (a refit), else `cfg.epochs` with
/// early stopping on `holdout`.
#[allow(clippy::too_many_arguments)]
fn run_phases(
    data: &Interactions,
    holdout: Option<&Holdout>,
    cfg: &TrainConfig,
    epochs: Option<&[usize]>,
    device: Device,
    refit: bool,
    init: Option<&BTreeMap<String, Tensor32>>,
    observer: &mut dyn TrainObserver,
) -> Result<Phases> {
    let phase_cfg = |arch: Architecture, k: usize| {
        let mut c = cfg.clone();
        c.spec.architecture = arch;
        c.pretrain = false;
        if let Some(e) = epochs {
            c.epochs = e[k].max(1);
            c.patience = 0;
        }
        c
    };
    let name = |a: &'static str, r: &'static str| if refit { r } else { a };
    let inputs = PhaseInputs::new(data, holdout, cfg, device)?;
    let full_eval = holdout.is_some();
    // A warm start begins from trained weights: pretraining would only replace them.
    if cfg.pretrain && init.is_none() {
        let gmf = fit(&inputs, &phase_cfg(Architecture::Gmf, 0), None, name("gmf", "gmf refit"), false, observer)?;
        let mlp = fit(&inputs, &phase_cfg(Architecture::Mlp, 1), None, name("mlp", "mlp refit"), false, observer)?;
        let init = fuse_pretrained(&gmf.weights, &mlp.weights, 0.5)?;
        let mut fine = phase_cfg(Architecture::NeuMF, 2);
        fine.learning_rate *= cfg.finetune_lr_factor;
        let mut neumf = fit(&inputs, &fine, Some(&init), name("neumf", "neumf refit"), full_eval, observer)?;
        let best = vec![gmf.best_epoch, mlp.best_epoch, neumf.best_epoch];
        let mut all = gmf.epochs;
        all.extend(mlp.epochs);
        all.append(&mut neumf.epochs);
        neumf.epochs = all;
        neumf.samples += gmf.samples + mlp.samples;
        neumf.seconds += gmf.seconds + mlp.seconds;
        Ok(Phases { last: neumf, best })
    } else {
        let arch = cfg.spec.architecture;
        let phase = match arch {
            Architecture::Gmf => name("gmf", "gmf refit"),
            Architecture::Mlp => name("mlp", "mlp refit"),
            Architecture::NeuMF => name("neumf", "neumf refit"),
        };
        let f = fit(&inputs, &phase_cfg(arch, 0), init, phase, full_eval, observer)?;
        let best = vec![f.best_epoch];
        Ok(Phases { last: f, best })
    }
}

fn outcome(p: Phases, device: Device, holdout: Option<&Holdout>, by_ts: bool) -> TrainOutcome {
    let last = p.last;
    TrainOutcome {
        weights: last.weights,
        summary: TrainSummary {
            device: device_name(device),
            final_loss: last.epochs.last().map(|e| e.loss).unwrap_or(f64::NAN),
            seconds: last.seconds,
            samples: last.samples,
            best_epoch: last.best_epoch,
            validation: last.validation,
            epochs: last.epochs,
            holdout_users: holdout.map_or(0, Holdout::len),
            holdout_by_ts: holdout.is_some() && by_ts,
            refit: false,
        },
    }
}

/// Trains `cfg.spec` on `data`, validating on `holdout` when given. Deterministic for a given
/// seed on CPU.
pub fn train(
    data: &Interactions,
    holdout: Option<&Holdout>,
    cfg: &TrainConfig,
    observer: &mut dyn TrainObserver,
) -> Result<TrainOutcome> {
    train_from(data, holdout, cfg, None, observer)
}

/// [`train`], starting from `init` (a warm start, `warm::warm_start_weights`) when given.
pub fn train_from(
    data: &Interactions,
    holdout: Option<&Holdout>,
    cfg: &TrainConfig,
    init: Option<&BTreeMap<String, Tensor32>>,
    observer: &mut dyn TrainObserver,
) -> Result<TrainOutcome> {
    let device = check(data, cfg)?;
    let phases = run_phases(data, holdout, cfg, None, device, false, init, observer)?;
    Ok(outcome(phases, device, holdout, data.ts.is_some()))
}

/// Chooses each phase's epoch count on `holdout` (trained on `train_part`), then trains again
/// on `full` (the holdout's interactions included) for exactly those epochs: selection never
/// sees the holdout's answers, and the served model still learns every user's latest
/// interaction. Validation metrics are those of the selection run.
pub fn train_and_refit(
    full: &Interactions,
    train_part: &Interactions,
    holdout: &Holdout,
    cfg: &TrainConfig,
    observer: &mut dyn TrainObserver,
) -> Result<TrainOutcome> {
    train_and_refit_from(full, train_part, holdout, cfg, None, observer)
}

/// [`train_and_refit`], both runs starting from `init` when given.
pub fn train_and_refit_from(
    full: &Interactions,
    train_part: &Interactions,
    holdout: &Holdout,
    cfg: &TrainConfig,
    init: Option<&BTreeMap<String, Tensor32>>,
    observer: &mut dyn TrainObserver,
) -> Result<TrainOutcome> {
    let device = check(train_part, cfg)?;
    let selection = run_phases(train_part, Some(holdout), cfg, None, device, false, init, observer)?;
    let epochs = selection.best.clone();
    let refit = run_phases(full, None, cfg, Some(&epochs), device, true, init, observer)?;
    let mut out = outcome(selection, device, Some(holdout), train_part.ts.is_some());
    let fin = refit.last;
    out.summary.epochs.extend(fin.epochs);
    out.summary.final_loss = out.summary.epochs.last().map(|e| e.loss).unwrap_or(f64::NAN);
    out.summary.seconds += fin.seconds;
    out.summary.samples += fin.samples;
    out.summary.refit = true;
    out.weights = fin.weights;
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn recency_weights_favour_each_users_latest_and_average_one() {
        let users = [0, 0, 0, 1, 1];
        let items = [0, 1, 2, 0, 1];
        let ts = [1.0, 3.0, 2.0, 5.0, 5.0];
        let data = Interactions::from_pairs(2, 3, &users, &items, Some(&ts));
        let w: Vec<f32> = Vec::try_from(&recency_weights(&data, 3.0, 1.0, Device::Cpu).unwrap().unwrap()).unwrap();
        let mean = w.iter().sum::<f32>() / w.len() as f32;
        assert!((mean - 1.0).abs() < 1e-6);
        // User 0: item 1 (latest) > item 2 > item 0; user 1's tied pair weighs the same.
        assert!(w[1] > w[2] && w[2] > w[0]);
        assert_eq!(w[3], w[4]);
        assert_eq!(w[1], w[3]);
        // Off, or without timestamps: no weights at all.
        assert!(recency_weights(&data, 0.0, 1.0, Device::Cpu).unwrap().is_none());
        let untimed = Interactions::from_pairs(2, 3, &users, &items, None);
        assert!(recency_weights(&untimed, 3.0, 1.0, Device::Cpu).unwrap().is_none());
    }
}
