//! Adam / AdamW for CPU training as one vectorised pass over the parameters' memory.
//!
//! On CPU two things dominate an NCF step with libtorch's defaults: the optimizer's ~8 small
//! tensor operations per parameter, and dense embedding gradients (every step zero-fills and
//! accumulates whole tables for a few hundred touched rows). Here embeddings produce sparse
//! gradients, which are scattered into a reused dense buffer, and one loop applies exactly
//! `torch.optim.Adam` / `AdamW`'s arithmetic (bias-corrected, eps added after the
//! bias-corrected square root) to every element, touched or not, so the trajectory is the
//! dense optimizer's.
//!
//! On a GPU a step is bound by how many kernels it launches, not by arithmetic: libtorch's Adam
//! launches ~8 per parameter, plus zeroing and accumulating each `.grad`. `FlatAdam` keeps every
//! parameter as a view into one flat buffer, takes the gradients straight from autograd
//! (nothing accumulates into `.grad`) and applies the same arithmetic to the whole buffer in a
//! dozen kernels.

use anyhow::{bail, Result};
use tch::{Device, Kind, Tensor};

pub struct CpuAdam {
    params: Vec<Tensor>,
    m: Vec<Vec<f32>>,
    v: Vec<Vec<f32>>,
    /// Dense gradient buffers for parameters whose gradients arrive sparse (kept zeroed).
    scratch: Vec<Vec<f32>>,
    step: i32,
    pub lr: f64,
    beta1: f64,
    beta2: f64,
    eps: f64,
    /// Decoupled (AdamW) weight decay.
    weight_decay: f64,
}

struct Hyper {
    b1: f32,
    b2: f32,
    step_size: f32,
    bias2_sqrt: f32,
    decay: f32,
    eps: f32,
}

/// The Adam update of one parameter; `g` is read and left as is.
#[inline]
fn update(w: &mut [f32], g: &[f32], m: &mut [f32], v: &mut [f32], h: &Hyper) {
    for (((w, &g), m), v) in w.iter_mut().zip(g).zip(m.iter_mut()).zip(v.iter_mut()) {
        let mj = h.b1 * *m + (1.0 - h.b1) * g;
        let vj = h.b2 * *v + (1.0 - h.b2) * g * g;
        *m = mj;
        *v = vj;
        *w = *w * h.decay - h.step_size * mj / (vj.sqrt() / h.bias2_sqrt + h.eps);
    }
}

impl CpuAdam {
    pub fn new(params: Vec<Tensor>, lr: f64, weight_decay: f64) -> Result<Self> {
        for p in &params {
            if p.device() != Device::Cpu || p.kind() != Kind::Float || !p.is_contiguous() {
                bail!("CpuAdam needs contiguous f32 CPU parameters");
            }
        }
        let zeros = |p: &Tensor| vec![0.0f32; p.numel()];
        Ok(Self {
            m: params.iter().map(zeros).collect(),
            v: params.iter().map(zeros).collect(),
            scratch: params.iter().map(|_| Vec::new()).collect(),
            params,
            step: 0,
            lr,
            beta1: 0.9,
            beta2: 0.999,
            eps: 1e-8,
            weight_decay,
        })
    }

    /// Applies one update from the accumulated gradients, then clears them.
    pub fn step(&mut self) -> Result<()> {
        self.step += 1;
        let h = Hyper {
            b1: self.beta1 as f32,
            b2: self.beta2 as f32,
            step_size: (self.lr / (1.0 - self.beta1.powi(self.step))) as f32,
            bias2_sqrt: (1.0 - self.beta2.powi(self.step)).sqrt() as f32,
            decay: (1.0 - self.lr * self.weight_decay) as f32,
            eps: self.eps as f32,
        };
        for (k, p) in self.params.iter().enumerate() {
            let mut grad = p.grad();
            if !grad.defined() {
                continue;
            }
            let n = self.m[k].len();
            // SAFETY: p is a contiguous f32 CPU tensor of n elements (checked in new()) and
            // nothing else reads or writes it during the step.
            let w = unsafe { std::slice::from_raw_parts_mut(p.data_ptr() as *mut f32, n) };
            if grad.is_sparse() {
                // Rows of an embedding table: scatter-add into the zeroed scratch buffer.
                let scratch = &mut self.scratch[k];
                if scratch.len() != n {
                    *scratch = vec![0.0; n];
                }
                let rows = p.size()[0].max(1) as usize;
                let width = n / rows;
                let indices: Vec<i64> = Vec::try_from(&grad.f_internal_indices()?.f_reshape([-1])?)?;
                let values = grad.f_internal_values()?.f_contiguous()?;
                let values: Vec<f32> = Vec::try_from(&values.f_reshape([-1])?)?;
                for (j, &row) in indices.iter().enumerate() {
                    let dst = &mut scratch[row as usize * width..(row as usize + 1) * width];
                    for (d, s) in dst.iter_mut().zip(&values[j * width..(j + 1) * width]) {
                        *d += s;
                    }
                }
                update(w, scratch, &mut self.m[k], &mut self.v[k], &h);
                for &row in &indices {
                    scratch[row as usize * width..(row as usize + 1) * width].fill(0.0);
                }
                // An empty sparse gradient for the next backward to accumulate into.
                let _ = grad.f_zero_()?;
            } else {
                // SAFETY: autograd gives dense gradients the parameter's contiguous layout.
                let g = unsafe { std::slice::from_raw_parts_mut(grad.data_ptr() as *mut f32, n) };
                update(w, g, &mut self.m[k], &mut self.v[k], &h);
                g.fill(0.0);
            }
        }
        Ok(())
    }
}

/// Adam / AdamW over one flat buffer that every parameter is a view of (see the module notes);
/// the arithmetic is `CpuAdam`'s. For dense gradients on any device.
pub struct FlatAdam {
    params: Vec<Tensor>,
    flat: Tensor,
    m: Tensor,
    v: Tensor,
    step: i32,
    pub lr: f64,
    beta1: f64,
    beta2: f64,
    eps: f64,
    weight_decay: f64,
}

impl FlatAdam {
    /// Moves the parameters' data into one buffer (their values are kept); `params` must be
    /// the leaf variables being trained, all of one device and kind.
    pub fn new(mut params: Vec<Tensor>, lr: f64, weight_decay: f64) -> Result<Self> {
        let _guard = tch::no_grad_guard();
        let pieces = params.iter().map(|p| p.f_detach()?.f_reshape([-1])).collect::<Result<Vec<_>, _>>()?;
        let flat = Tensor::f_cat(&pieces, 0)?;
        let mut offset = 0;
        for p in &mut params {
            let n = p.numel() as i64;
            p.f_set_data(&flat.f_narrow(0, offset, n)?.f_view(p.size().as_slice())?)?;
            offset += n;
        }
        Ok(Self {
            m: flat.f_zeros_like()?,
            v: flat.f_zeros_like()?,
            flat,
            params,
            step: 0,
            lr,
            beta1: 0.9,
            beta2: 0.999,
            eps: 1e-8,
            weight_decay,
        })
    }

    /// Back-propagates `loss` to the parameters and applies one update.
    pub fn backward_step(&mut self, loss: &Tensor) -> Result<()> {
        let grads = Tensor::f_run_backward(&[loss], &self.params, false, false)?;
        let _guard = tch::no_grad_guard();
        let pieces = grads.iter().map(|g| g.f_reshape([-1])).collect::<Result<Vec<_>, _>>()?;
        let g = Tensor::f_cat(&pieces, 0)?;
        self.step += 1;
        let step_size = self.lr / (1.0 - self.beta1.powi(self.step));
        let bias2_sqrt = (1.0 - self.beta2.powi(self.step)).sqrt();
        if self.weight_decay > 0.0 {
            let _ = self.flat.f_mul_scalar_(1.0 - self.lr * self.weight_decay)?;
        }
        // m ← β1·m + (1−β1)·g and v ← β2·v + (1−β2)·g², each as one lerp.
        let _ = self.m.f_lerp_(&g, 1.0 - self.beta1)?;
        let _ = self.v.f_lerp_(&g.f_square()?, 1.0 - self.beta2)?;
        // w −= step_size · m / (√v / bias2_sqrt + eps), folded into one addcdiv_ whose divisor
        // is (√v + eps · bias2_sqrt) · (−1 / (step_size · bias2_sqrt)): fewer kernel launches.
        let mut divisor = self.v.f_sqrt()?;
        let _ = divisor.f_add_scalar_(self.eps * bias2_sqrt)?.f_mul_scalar_(-1.0 / (step_size * bias2_sqrt))?;
        let _ = self.flat.f_addcdiv_(&self.m, &divisor)?;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use tch::nn::{self, Module, OptimizerConfig};

    /// Trains a tiny embedding + linear model for 30 steps with libtorch's Adam / AdamW and with
    /// one of ours (`make(vs, weight_decay)` returns a step: backward and update from a loss),
    /// and asserts both end at the same weights. `sparse`: our run's embedding gives sparse
    /// gradients.
    fn assert_follows_libtorch_adam(sparse: bool, make: impl Fn(&nn::VarStore, f64) -> Box<dyn FnMut(&Tensor)>) {
        for wd in [0.0, 0.1] {
            let ids = Tensor::from_slice(&[0i64, 3, 3, 5, 1, 0, 7, 3]);
            let y = Tensor::randn([8, 1], (Kind::Float, Device::Cpu));
            let run = |ours: bool| -> Vec<f32> {
                let vs = nn::VarStore::new(Device::Cpu);
                let cfg =
                    nn::EmbeddingConfig { sparse: sparse && ours, ws_init: nn::Init::Const(0.5), ..Default::default() };
                let emb = nn::embedding(vs.root() / "e", 10, 4, cfg);
                let lin = nn::linear(
                    vs.root() / "l",
                    4,
                    1,
                    nn::LinearConfig { ws_init: nn::Init::Const(0.1), bs_init: Some(nn::Init::Const(0.0)), bias: true },
                );
                let mut theirs = (if wd > 0.0 {
                    nn::adamw(0.9, 0.999, wd).build(&vs, 0.05)
                } else {
                    nn::Adam::default().build(&vs, 0.05)
                })
                .unwrap();
                let mut mine = ours.then(|| make(&vs, wd));
                for _ in 0..30 {
                    let loss = (lin.forward(&emb.forward(&ids)) - &y).square().mean(Kind::Float);
                    match mine.as_mut() {
                        Some(step) => step(&loss),
                        None => {
                            theirs.zero_grad();
                            loss.backward();
                            theirs.step();
                        }
                    }
                }
                // The variable store's own tensors: FlatAdam's updates must reach them.
                let by_name: std::collections::BTreeMap<_, _> = vs.variables().into_iter().collect();
                by_name.values().flat_map(|t| Vec::<f32>::try_from(&t.flatten(0, -1)).unwrap()).collect()
            };
            let (a, b) = (run(true), run(false));
            assert!(a.iter().any(|p| (p - 0.5).abs() > 1e-2 && (p - 0.1).abs() > 1e-2), "nothing trained: {a:?}");
            for (p, q) in a.iter().zip(&b) {
                // Same formula, different float operation order: allow rounding drift over 30
                // steps, far below what any change to the arithmetic would cause (~1e-2).
                assert!((p - q).abs() <= 1e-5 + 1e-4 * q.abs(), "wd {wd}: {a:?} vs {b:?}");
            }
        }
    }

    /// CpuAdam, with sparse embedding gradients, follows libtorch's Adam and AdamW.
    #[test]
    fn matches_libtorch_adam() {
        // Seeded: the data is random, so a failure must be reproducible.
        tch::manual_seed(7);
        assert_follows_libtorch_adam(true, |vs, wd| {
            let mut adam = CpuAdam::new(vs.trainable_variables(), 0.05, wd).unwrap();
            Box::new(move |loss| {
                loss.backward();
                adam.step().unwrap();
            })
        });
    }

    /// FlatAdam (the GPU optimizer, run here on the CPU) follows libtorch's Adam and AdamW.
    #[test]
    fn flat_adam_matches_libtorch_adam() {
        tch::manual_seed(11);
        assert_follows_libtorch_adam(false, |vs, wd| {
            let mut adam = FlatAdam::new(vs.trainable_variables(), 0.05, wd).unwrap();
            Box::new(move |loss| adam.backward_step(loss).unwrap())
        });
    }
}
