//! The training loop: binary cross-entropy over positives and negatives drawn afresh every
//! epoch, exact (never a known positive), vectorised on the training device; shuffled
//! mini-batches; Adam. The caller observes every batch (to honour query cancel) and every epoch
//! (to report progress).

use crate::codec::Tensor32;
use crate::dataset::Interactions;
use crate::model::{export_weights, NcfNet};
use crate::spec::{DeviceChoice, TrainConfig};
use anyhow::{bail, Result};
use std::collections::BTreeMap;
use std::time::Instant;
use tch::nn::{self, OptimizerConfig};
use tch::{Device, Kind, Reduction, Tensor};

/// Progress after one epoch.
#[derive(Debug, Clone)]
pub struct EpochReport {
    pub epoch: usize,
    pub epochs: usize,
    /// Mean BCE over the epoch's samples.
    pub loss: f64,
    pub samples: usize,
    pub seconds: f64,
}

impl EpochReport {
    pub fn samples_per_second(&self) -> f64 {
        self.samples as f64 / self.seconds.max(1e-9)
    }
}

/// Hooks the caller uses to stop training (return an error or panic) and to see progress.
pub trait TrainObserver {
    /// Called between mini-batches; the SQL layer checks for query cancel here.
    fn on_batch(&mut self) -> Result<()> {
        Ok(())
    }
    fn on_epoch(&mut self, _report: &EpochReport) -> Result<()> {
        Ok(())
    }
}

/// Does nothing; for tests and benchmarks.
pub struct Quiet;
impl TrainObserver for Quiet {}

/// A trained model on the host, ready to be encoded.
#[derive(Debug)]
pub struct TrainOutcome {
    pub weights: BTreeMap<String, Tensor32>,
    pub device: String,
    pub final_loss: f64,
    pub seconds: f64,
    pub samples: usize,
    pub epochs: Vec<EpochReport>,
}

/// Picks the training device. Touches CUDA, so only call it inside a training request.
pub fn resolve_device(choice: DeviceChoice) -> Result<Device> {
    match choice {
        DeviceChoice::Cpu => Ok(Device::Cpu),
        DeviceChoice::Auto => Ok(if tch::Cuda::is_available() {
            Device::Cuda(0)
        } else {
            Device::Cpu
        }),
        DeviceChoice::Cuda => {
            if tch::Cuda::is_available() {
                Ok(Device::Cuda(0))
            } else {
                bail!(
                    "device => 'cuda' was requested but no CUDA device is available to this server; \
                     use device => 'auto' (falls back to CPU) or 'cpu'"
                )
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

/// Draws `count` negatives per positive for the given users, exactly: every draw that hits a
/// known positive (binary search in the sorted `keys` = user * n_items + item) is redrawn.
/// Users who interacted with every item get no negatives (there are none to draw).
struct NegativeSampler {
    keys: Tensor,
    n_items: i64,
    /// Positive rows whose user still has an unseen item.
    sampleable_users: Tensor,
}

impl NegativeSampler {
    fn new(data: &Interactions, users: &Tensor, device: Device) -> Result<Self> {
        let n_items = data.n_items() as i64;
        // Interactions are sorted by (user, item), so these keys are already sorted.
        let keys: Vec<i64> = data
            .users
            .iter()
            .zip(&data.items)
            .map(|(&u, &i)| u as i64 * n_items + i as i64)
            .collect();
        let keys = Tensor::f_from_slice(&keys)?.f_to(device)?;
        let full: Vec<bool> = (0..data.n_users() as u32)
            .map(|u| data.seen(u).len() as i64 >= n_items)
            .collect();
        let sampleable_users = if full.iter().any(|&f| f) {
            let full = Tensor::f_from_slice(&full)?.f_to(device)?;
            let keep = full.f_index_select(0, users)?.f_logical_not()?;
            users.f_masked_select(&keep)?
        } else {
            users.shallow_clone()
        };
        Ok(Self {
            keys,
            n_items,
            sampleable_users,
        })
    }

    fn is_positive(&self, users: &Tensor, items: &Tensor) -> Result<Tensor> {
        let k = users.f_mul_scalar(self.n_items)?.f_add(items)?;
        let last = self.keys.size()[0] - 1;
        let j = k
            .f_searchsorted(&self.keys, false, false, "left", None::<Tensor>)?
            .f_clamp_max(last)?;
        Ok(self.keys.f_index_select(0, &j)?.f_eq_tensor(&k)?)
    }

    /// Returns (users, items) of fresh negatives.
    fn draw(&self, per_positive: usize) -> Result<(Tensor, Tensor)> {
        let device = self.keys.device();
        let users =
            self.sampleable_users
                .f_repeat_interleave_self_int(per_positive as i64, 0, None)?;
        let n = users.size()[0];
        let mut items = Tensor::f_randint(self.n_items, [n], (Kind::Int64, device))?;
        // Redraw collisions; with a few sparse users this converges in a handful of rounds.
        for _ in 0..1000 {
            let bad = self.is_positive(&users, &items)?;
            let n_bad = bad.f_sum(Kind::Int64)?.int64_value(&[]);
            if n_bad == 0 {
                return Ok((users, items));
            }
            let fresh = Tensor::f_randint(self.n_items, [n_bad], (Kind::Int64, device))?;
            items = items.f_masked_scatter(&bad, &fresh)?;
        }
        // Users with almost every item seen: drop the rows still colliding rather than loop on.
        let ok = self.is_positive(&users, &items)?.f_logical_not()?;
        Ok((users.f_masked_select(&ok)?, items.f_masked_select(&ok)?))
    }
}

/// Trains `cfg.spec` on `data`. Deterministic for a given seed on CPU.
pub fn train(
    data: &Interactions,
    cfg: &TrainConfig,
    observer: &mut dyn TrainObserver,
) -> Result<TrainOutcome> {
    cfg.validate().map_err(anyhow::Error::msg)?;
    if data.is_empty() {
        bail!("no interactions to train on");
    }
    let device = resolve_device(cfg.device)?;
    tch::set_num_threads(cfg.threads as i32);
    tch::manual_seed(cfg.seed as i64);

    let vs = nn::VarStore::new(device);
    let net = NcfNet::new(&vs.root(), &cfg.spec, data.n_users(), data.n_items());
    let mut opt = nn::Adam::default().build(&vs, cfg.learning_rate)?;

    let to_i64 = |v: &[u32]| -> Result<Tensor> {
        let v: Vec<i64> = v.iter().map(|&x| x as i64).collect();
        Ok(Tensor::f_from_slice(&v)?.f_to(device)?)
    };
    let pos_users = to_i64(&data.users)?;
    let pos_items = to_i64(&data.items)?;
    let sampler = NegativeSampler::new(data, &pos_users, device)?;
    let n_pos = data.len() as i64;

    let started = Instant::now();
    let mut epochs = Vec::with_capacity(cfg.epochs);
    let mut total_samples = 0usize;
    for epoch in 1..=cfg.epochs {
        let epoch_start = Instant::now();
        let (neg_users, neg_items) = sampler.draw(cfg.negatives)?;
        let n_neg = neg_users.size()[0];
        let users = Tensor::f_cat(&[&pos_users, &neg_users], 0)?;
        let items = Tensor::f_cat(&[&pos_items, &neg_items], 0)?;
        let labels = Tensor::f_cat(
            &[
                Tensor::f_ones([n_pos], (Kind::Float, device))?,
                Tensor::f_zeros([n_neg], (Kind::Float, device))?,
            ],
            0,
        )?;
        let n = n_pos + n_neg;
        let perm = Tensor::f_randperm(n, (Kind::Int64, device))?;
        let (users, items, labels) = (
            users.f_index_select(0, &perm)?,
            items.f_index_select(0, &perm)?,
            labels.f_index_select(0, &perm)?,
        );

        // Summed on the device; read once per epoch so GPU batches never wait on the host.
        let mut loss_sum = Tensor::f_zeros([], (Kind::Double, device))?;
        let bs = cfg.batch_size as i64;
        let mut start = 0i64;
        while start < n {
            observer.on_batch()?;
            let len = bs.min(n - start);
            let u = users.f_narrow(0, start, len)?;
            let i = items.f_narrow(0, start, len)?;
            let y = labels.f_narrow(0, start, len)?;
            let loss = net
                .logits(&u, &i)
                .f_binary_cross_entropy_with_logits::<Tensor>(&y, None, None, Reduction::Mean)?;
            opt.zero_grad();
            loss.backward();
            opt.step();
            let _ = loss_sum.f_add_(
                &loss
                    .f_detach()?
                    .f_to_kind(Kind::Double)?
                    .f_mul_scalar(len as f64)?,
            )?;
            start += len;
        }
        let loss = loss_sum.f_double_value(&[])? / n as f64;
        if !loss.is_finite() {
            bail!(
                "training diverged at epoch {epoch} (loss is {loss}); lower learning_rate (now {})",
                cfg.learning_rate
            );
        }
        total_samples += n as usize;
        let report = EpochReport {
            epoch,
            epochs: cfg.epochs,
            loss,
            samples: n as usize,
            seconds: epoch_start.elapsed().as_secs_f64(),
        };
        observer.on_epoch(&report)?;
        epochs.push(report);
    }
    let seconds = started.elapsed().as_secs_f64();
    let weights = export_weights(&vs)?;
    Ok(TrainOutcome {
        weights,
        device: device_name(device),
        final_loss: epochs.last().map(|e| e.loss).unwrap_or(f64::NAN),
        seconds,
        samples: total_samples,
        epochs,
    })
}
