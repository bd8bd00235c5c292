//! GMF, MLP and NeuMF as libtorch modules (the training side). Variable names follow the
//! PyTorch `state_dict` of the equivalent `nn.Module`, so a stored blob reads naturally there:
//! `gmf.user_embedding.weight`, `mlp.layers.0.weight`, `output.weight`, …

use crate::codec::Tensor32;
use crate::spec::{Architecture, ModelSpec, Precision};
use anyhow::{Context, Result};
use std::collections::BTreeMap;
use tch::nn::{self, Module};
use tch::{Kind, Tensor};

/// Separate GMF and MLP embedding tables (sharing them hurts, He et al. §3.4).
#[derive(Debug)]
pub struct NcfNet {
    architecture: Architecture,
    gmf: Option<(nn::Embedding, nn::Embedding)>,
    mlp: Option<(nn::Embedding, nn::Embedding, Vec<nn::Linear>)>,
    output: nn::Linear,
    /// Dropout on the MLP's hidden activations, applied only when training.
    dropout: f64,
    /// Kind the training forward pass computes in after the embedding lookups (Float, or
    /// BFloat16 for mixed precision); evaluation always runs in f32.
    compute: Kind,
    /// Embedding rows are gathered with `index_select`, whose backward is one scatter-add,
    /// instead of `embedding`, whose dense backward sorts the ids (a dozen kernels per table);
    /// false for sparse gradients, which only `embedding` produces.
    index_select_lookup: bool,
}

fn xavier_uniform(fan_in: usize, fan_out: usize) -> nn::Init {
    let bound = (6.0 / (fan_in + fan_out) as f64).sqrt();
    nn::Init::Uniform { lo: -bound, up: bound }
}

impl NcfNet {
    /// Paper initialisation: N(0, 0.01) embeddings, Glorot-uniform dense layers, zero biases;
    /// the output layer uses LeCun-uniform (gain 1) as in the reference implementation.
    pub fn new(root: &nn::Path, spec: &ModelSpec, n_users: usize, n_items: usize) -> Self {
        Self::with_gradients(root, spec, n_users, n_items, false)
    }

    /// `sparse_embeddings`: embedding tables produce sparse gradients (for `optim::CpuAdam`).
    pub fn with_gradients(
        root: &nn::Path,
        spec: &ModelSpec,
        n_users: usize,
        n_items: usize,
        sparse_embeddings: bool,
    ) -> Self {
        let emb_cfg = nn::EmbeddingConfig {
            sparse: sparse_embeddings,
            ws_init: nn::Init::Randn { mean: 0.0, stdev: 0.01 },
            ..Default::default()
        };
        let (nu, ni) = (n_users as i64, n_items as i64);
        let gmf = spec.architecture.has_gmf().then(|| {
            let p = root / "gmf";
            let f = spec.factors as i64;
            (nn::embedding(&p / "user_embedding", nu, f, emb_cfg), nn::embedding(&p / "item_embedding", ni, f, emb_cfg))
        });
        let mlp = spec.architecture.has_mlp().then(|| {
            let p = root / "mlp";
            let d = spec.mlp_embedding_dim() as i64;
            let layers = spec
                .layers
                .windows(2)
                .enumerate()
                .map(|(k, w)| {
                    let cfg = nn::LinearConfig {
                        ws_init: xavier_uniform(w[0], w[1]),
                        bs_init: Some(nn::Init::Const(0.0)),
                        bias: true,
                    };
                    nn::linear(&p / "layers" / k, w[0] as i64, w[1] as i64, cfg)
                })
                .collect();
            (
                nn::embedding(&p / "user_embedding", nu, d, emb_cfg),
                nn::embedding(&p / "item_embedding", ni, d, emb_cfg),
                layers,
            )
        });
        let width = spec.output_input_dim();
        let bound = (3.0 / width as f64).sqrt();
        let output = nn::linear(
            root / "output",
            width as i64,
            1,
            nn::LinearConfig {
                ws_init: nn::Init::Uniform { lo: -bound, up: bound },
                bs_init: Some(nn::Init::Const(0.0)),
                bias: true,
            },
        );
        Self {
            architecture: spec.architecture,
            gmf,
            mlp,
            output,
            dropout: 0.0,
            compute: Kind::Float,
            index_select_lookup: !sparse_embeddings,
        }
    }

    pub fn with_dropout(mut self, p: f64) -> Self {
        self.dropout = p;
        self
    }

    /// Mixed precision for training (see `Precision`): the variables stay f32, each training
    /// forward pass computes in `kind` and autograd casts the gradients back.
    pub fn with_training_precision(mut self, precision: Precision) -> Self {
        self.compute = match precision {
            Precision::Fp32 => Kind::Float,
            Precision::Bf16 => Kind::BFloat16,
        };
        self
    }

    /// Logits (pre-sigmoid) for a batch of (user, item) index pairs, in evaluation mode.
    pub fn logits(&self, users: &Tensor, items: &Tensor) -> Tensor {
        self.logits_t(users, items, false)
    }

    fn lookup(&self, table: &nn::Embedding, ids: &Tensor) -> Tensor {
        if self.index_select_lookup {
            table.ws.index_select(0, ids)
        } else {
            table.forward(ids)
        }
    }

    /// Logits with dropout active (and the training precision used) when `train` is set.
    pub fn logits_t(&self, users: &Tensor, items: &Tensor, train: bool) -> Tensor {
        let kind = if train { self.compute } else { Kind::Float };
        // In f32 no cast is called at all: even a no-op `to_kind` costs a dispatch, and a GPU
        // step is bound by how many operations the host issues.
        let cast = |t: Tensor| if kind == Kind::Float { t } else { t.to_kind(kind) };
        let dense = |layer: &nn::Linear, x: &Tensor| {
            if kind == Kind::Float {
                x.linear(&layer.ws, layer.bs.as_ref())
            } else {
                x.linear(&layer.ws.to_kind(kind), layer.bs.as_ref().map(|b| b.to_kind(kind)))
            }
        };
        let gmf = self.gmf.as_ref().map(|(pu, qi)| cast(self.lookup(pu, users)) * cast(self.lookup(qi, items)));
        let mlp = self.mlp.as_ref().map(|(pu, qi, layers)| {
            let mut z = cast(Tensor::cat(&[self.lookup(pu, users), self.lookup(qi, items)], 1));
            for layer in layers {
                z = dense(layer, &z).relu();
                if train && self.dropout > 0.0 {
                    z = z.dropout(self.dropout, true);
                }
            }
            z
        });
        let features = match (gmf, mlp) {
            (Some(g), Some(m)) => Tensor::cat(&[g, m], 1),
            (Some(g), None) => g,
            (None, Some(m)) => m,
            (None, None) => unreachable!("architecture {} has no branch", self.architecture),
        };
        // The loss is computed in f32 whatever the forward pass used.
        let logits = dense(&self.output, &features).squeeze_dim(1);
        if kind == Kind::Float {
            logits
        } else {
            logits.to_kind(Kind::Float)
        }
    }
}

/// Copies every variable to host memory as f32, keyed by its PyTorch-style name.
pub fn export_weights(vs: &nn::VarStore) -> Result<BTreeMap<String, Tensor32>> {
    let mut out = BTreeMap::new();
    for (name, t) in vs.variables() {
        let host = t.f_detach()?.f_to_device(tch::Device::Cpu)?.f_to_kind(Kind::Float)?.f_contiguous()?;
        let shape: Vec<usize> = host.size().iter().map(|&d| d as usize).collect();
        let numel: usize = shape.iter().product();
        let mut data = vec![0f32; numel];
        host.f_copy_data(&mut data, numel).with_context(|| format!("copying {name} to host"))?;
        out.insert(name, Tensor32 { shape, data });
    }
    Ok(out)
}

/// Overwrites the variables of `vs` with host weights of the same names and shapes.
pub fn load_weights(vs: &mut nn::VarStore, weights: &BTreeMap<String, Tensor32>) -> Result<()> {
    let device = vs.device();
    let _guard = tch::no_grad_guard();
    for (name, mut var) in vs.variables() {
        let w = weights.get(&name).with_context(|| format!("weights lack {name}"))?;
        let shape: Vec<i64> = w.shape.iter().map(|&d| d as i64).collect();
        let src = Tensor::f_from_slice(&w.data)?.f_reshape(&shape)?.f_to(device)?;
        var.f_copy_(&src).with_context(|| format!("loading {name}"))?;
    }
    Ok(())
}

/// Loads the host weights whose names and shapes match variables of `vs`; returns how many.
pub fn load_matching(vs: &mut nn::VarStore, weights: &BTreeMap<String, Tensor32>) -> Result<usize> {
    let device = vs.device();
    let _guard = tch::no_grad_guard();
    let mut loaded = 0;
    for (name, mut var) in vs.variables() {
        let Some(w) = weights.get(&name) else { continue };
        let shape: Vec<i64> = w.shape.iter().map(|&d| d as i64).collect();
        if var.size() != shape {
            continue;
        }
        let src = Tensor::f_from_slice(&w.data)?.f_reshape(&shape)?.f_to(device)?;
        var.f_copy_(&src).with_context(|| format!("loading {name}"))?;
        loaded += 1;
    }
    Ok(loaded)
}
