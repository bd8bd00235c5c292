//! The serving kernel: scores (user, item) pairs on the CPU without libtorch.
//!
//! At load time the item side is precomputed so a request costs little per candidate:
//! - GMF: `hᵀ(p ⊙ q) = p · (h ⊙ q)`, so the GMF half of the output weights is folded into
//!   every item vector.
//! - MLP: `W₁[p; q] + b₁ = W₁ᵤp + (W₁ᵢq + b₁)`; the item term is stored per item, the user
//!   term is computed once per request. Each candidate then costs one add + ReLU of width
//!   `layers[1]` and the (small) upper layers.

use crate::codec::{ModelArtifact, Tensor32};
use crate::ids::{IdIndex, IdRef};
use crate::slab::Slab;
use crate::spec::ModelSpec;
use anyhow::{anyhow, bail, Result};

#[derive(Debug, Clone)]
pub(crate) struct Dense {
    /// Row-major [out, in].
    pub(crate) weight: Slab<f32>,
    pub(crate) bias: Slab<f32>,
    pub(crate) inputs: usize,
    pub(crate) outputs: usize,
}

impl Dense {
    fn apply_relu(&self, x: &[f32], y: &mut [f32]) {
        for (o, y) in y.iter_mut().enumerate().take(self.outputs) {
            let row = &self.weight[o * self.inputs..(o + 1) * self.inputs];
            *y = (dot(row, x) + self.bias[o]).max(0.0);
        }
    }
}

#[inline]
fn dot(a: &[f32], b: &[f32]) -> f32 {
    // Four accumulators let the compiler vectorise without -ffast-math.
    let mut acc = [0f32; 4];
    let chunks = a.len() / 4;
    for c in 0..chunks {
        for l in 0..4 {
            acc[l] += a[c * 4 + l] * b[c * 4 + l];
        }
    }
    let mut s = (acc[0] + acc[1]) + (acc[2] + acc[3]);
    for j in chunks * 4..a.len() {
        s += a[j] * b[j];
    }
    s
}

#[derive(Debug, Clone)]
pub(crate) struct GmfSide {
    pub(crate) factors: usize,
    pub(crate) user: Slab<f32>,
    /// Item vectors pre-multiplied by the GMF output weights.
    pub(crate) item_folded: Slab<f32>,
    /// The first stage's item side, in blocks of [`BLOCK`] items stored feature-major
    /// (`[block][factor + 1][item in block]`), so a block's scores are `factors + 1` vector
    /// multiply-adds. Rows 0..factors are `item_folded`; the last row is each item's prior: the
    /// rest of the logit for a typical user (the MLP tower's output at the mean user, plus the
    /// output bias), so the first stage `p·q̃ + prior` is still one dot product (see
    /// [`ScoringModel::user_vector`]). Padding items score -inf.
    pub(crate) first_stage_blocks: Slab<f32>,
}

/// Items per block of the first stage's layout: one AVX register of f32.
pub(crate) const BLOCK: usize = 8;

#[derive(Debug, Clone)]
pub(crate) struct MlpSide {
    pub(crate) embed: usize,
    pub(crate) hidden: usize,
    pub(crate) user_embedding: Slab<f32>,
    /// Row-major [hidden, embed]: the user half of the first layer.
    pub(crate) first_user_weight: Slab<f32>,
    /// Per item: W₁ᵢ q + b₁, row-major [items, hidden].
    pub(crate) item_pre: Slab<f32>,
    pub(crate) upper: Vec<Dense>,
    /// Output weights over the last MLP layer.
    pub(crate) output: Slab<f32>,
}

/// A model ready to score: id lookups, seen lists, popularity and the folded weights, every
/// array a [`Slab`], so the same kernel runs on a freshly decoded model and on a serving image
/// mapped in place (`crate::image`).
#[derive(Debug, Clone)]
pub struct ScoringModel {
    pub spec: ModelSpec,
    pub users: IdIndex,
    pub items: IdIndex,
    pub(crate) seen_ptr: Slab<u64>,
    pub(crate) seen_items: Slab<u32>,
    pub(crate) popularity: Slab<u64>,
    /// Item indices by descending popularity (ties by index): the cold-start answer.
    pub(crate) by_popularity: Slab<u32>,
    pub(crate) gmf: Option<GmfSide>,
    pub(crate) mlp: Option<MlpSide>,
    pub(crate) output_bias: f32,
}

/// Per-request working memory for one user, computed once and reused for every candidate.
pub struct UserContext<'m> {
    model: &'m ScoringModel,
    gmf_user: &'m [f32],
    mlp_user_pre: Vec<f32>,
    scratch_a: Vec<f32>,
    scratch_b: Vec<f32>,
}

/// Moves a weight out of the decoded map (no copy: a new connection's first call pays for every
/// byte it touches).
fn take(weights: &mut std::collections::BTreeMap<String, Tensor32>, name: &str, shape: &[usize]) -> Result<Vec<f32>> {
    let t = weights.remove(name).ok_or_else(|| anyhow!("stored model lacks tensor {name}"))?;
    if t.shape != shape {
        bail!("stored tensor {name} has shape {:?}, expected {:?}", t.shape, shape);
    }
    Ok(t.data)
}

impl ScoringModel {
    pub fn from_artifact(mut art: ModelArtifact) -> Result<Self> {
        let spec = art.spec.clone();
        spec.validate().map_err(anyhow::Error::msg)?;
        let (nu, ni) = (art.user_ids.len(), art.item_ids.len());
        let w = &mut art.weights;
        let out_dim = spec.output_input_dim();
        let output = take(w, "output.weight", &[1, out_dim])?;
        let output_bias = take(w, "output.bias", &[1])?[0];

        let gmf = if spec.architecture.has_gmf() {
            let f = spec.factors;
            let user = take(w, "gmf.user_embedding.weight", &[nu, f])?;
            let mut item_folded = take(w, "gmf.item_embedding.weight", &[ni, f])?;
            let h = &output[..f];
            for row in item_folded.chunks_exact_mut(f) {
                for (x, hk) in row.iter_mut().zip(h) {
                    *x *= hk;
                }
            }
            Some(GmfSide {
                factors: f,
                user: user.into(),
                item_folded: item_folded.into(),
                first_stage_blocks: Slab::default(),
            })
        } else {
            None
        };

        let mlp = if spec.architecture.has_mlp() {
            let d = spec.mlp_embedding_dim();
            let h1 = spec.layers[1];
            let user_embedding = take(w, "mlp.user_embedding.weight", &[nu, d])?;
            let item_embedding = take(w, "mlp.item_embedding.weight", &[ni, d])?;
            let w1 = take(w, "mlp.layers.0.weight", &[h1, 2 * d])?;
            let b1 = take(w, "mlp.layers.0.bias", &[h1])?;
            let mut first_user_weight = Vec::with_capacity(h1 * d);
            // The item half transposed ([embed, hidden]), so the per-item product below runs
            // over contiguous outputs and vectorises.
            let mut first_item_weight_t = vec![0f32; d * h1];
            for (o, row) in w1.chunks_exact(2 * d).enumerate() {
                first_user_weight.extend_from_slice(&row[..d]);
                for (j, &x) in row[d..].iter().enumerate() {
                    first_item_weight_t[j * h1 + o] = x;
                }
            }
            let mut item_pre = vec![0f32; ni * h1];
            // Summed in f64 (still vectorised), so the stored term is the exactly rounded one.
            let mut sums = vec![0f64; h1];
            for (q, pre) in item_embedding.chunks_exact(d).zip(item_pre.chunks_exact_mut(h1)) {
                sums.iter_mut().zip(&b1).for_each(|(s, &b)| *s = b as f64);
                for (&qj, column) in q.iter().zip(first_item_weight_t.chunks_exact(h1)) {
                    let qj = qj as f64;
                    for (s, &w) in sums.iter_mut().zip(column) {
                        *s += w as f64 * qj;
                    }
                }
                pre.iter_mut().zip(&sums).for_each(|(p, &s)| *p = s as f32);
            }
            let upper = spec
                .layers
                .windows(2)
                .enumerate()
                .skip(1)
                .map(|(k, win)| {
                    Ok(Dense {
                        weight: take(w, &format!("mlp.layers.{k}.weight"), &[win[1], win[0]])?.into(),
                        bias: take(w, &format!("mlp.layers.{k}.bias"), &[win[1]])?.into(),
                        inputs: win[0],
                        outputs: win[1],
                    })
                })
                .collect::<Result<Vec<_>>>()?;
            let gmf_width = if spec.architecture.has_gmf() { spec.factors } else { 0 };
            Some(MlpSide {
                embed: d,
                hidden: h1,
                user_embedding: user_embedding.into(),
                first_user_weight: first_user_weight.into(),
                item_pre: item_pre.into(),
                upper,
                output: output[gmf_width..].to_vec().into(),
            })
        } else {
            None
        };

        if art.seen_ptr.len() != nu + 1 || art.popularity.len() != ni {
            bail!("stored model's seen lists or popularity do not match its id maps");
        }
        // Checked once here, so serving can slice the seen lists without bounds surprises.
        let ptr = &art.seen_ptr;
        if ptr[0] != 0 || ptr[nu] != art.seen_items.len() as u64 || ptr.windows(2).any(|w| w[0] > w[1]) {
            bail!("stored model's seen-list offsets are inconsistent");
        }
        if art.seen_items.iter().any(|&i| i as usize >= ni) {
            bail!("stored model's seen lists name items it does not have");
        }
        let mut by_popularity: Vec<u32> = (0..ni as u32).collect();
        by_popularity.sort_by_key(|&i| (std::cmp::Reverse(art.popularity[i as usize]), i));
        let mut model = Self {
            spec,
            by_popularity: by_popularity.into(),
            users: IdIndex::from_map(&art.user_ids),
            items: IdIndex::from_map(&art.item_ids),
            seen_ptr: art.seen_ptr.into(),
            seen_items: art.seen_items.into(),
            popularity: art.popularity.into(),
            gmf,
            mlp,
            output_bias,
        };
        model.compute_first_stage();
        Ok(model)
    }

    /// Fills `gmf.first_stage_blocks`. An item's prior is the logit without its GMF term for a
    /// user whose first MLP layer input is the mean over users (the MLP is not linear, so this
    /// is an estimate that only steers the shortlist; the final scores are exact).
    fn compute_first_stage(&mut self) {
        let Some(g) = &self.gmf else { return };
        let ni = self.n_items();
        let prior: Vec<f32> = match &self.mlp {
            None => vec![self.output_bias; ni],
            Some(m) => {
                let nu = self.n_users().max(1);
                let mut mean = vec![0f32; m.embed];
                for p in m.user_embedding.chunks_exact(m.embed) {
                    mean.iter_mut().zip(p).for_each(|(a, &x)| *a += x / nu as f32);
                }
                let pre: Vec<f32> =
                    (0..m.hidden).map(|o| dot(&m.first_user_weight[o * m.embed..(o + 1) * m.embed], &mean)).collect();
                // The mean user with a zero GMF vector: the logit is then the prior.
                let zeros = vec![0f32; g.factors];
                let mut ctx = UserContext {
                    model: self,
                    gmf_user: &zeros,
                    mlp_user_pre: pre,
                    scratch_a: Vec::new(),
                    scratch_b: Vec::new(),
                };
                let items: Vec<u32> = (0..ni as u32).collect();
                let mut out = Vec::with_capacity(ni);
                for chunk in items.chunks(4096) {
                    let mut part = Vec::new();
                    ctx.logits(chunk, &mut part);
                    out.extend(part);
                }
                out
            }
        };
        let f = g.factors;
        let mut blocks = vec![0f32; ni.div_ceil(BLOCK) * (f + 1) * BLOCK];
        for (b, block) in blocks.chunks_exact_mut((f + 1) * BLOCK).enumerate() {
            for l in 0..BLOCK {
                let i = b * BLOCK + l;
                for j in 0..f {
                    block[j * BLOCK + l] = if i < ni { g.item_folded[i * f + j] } else { 0.0 };
                }
                block[f * BLOCK + l] = if i < ni { prior[i] } else { f32::NEG_INFINITY };
            }
        }
        let g = GmfSide { first_stage_blocks: blocks.into(), ..g.clone() };
        self.gmf = Some(g);
    }

    pub fn n_users(&self) -> usize {
        self.users.len()
    }
    pub fn n_items(&self) -> usize {
        self.items.len()
    }
    pub fn user_index(&self, id: IdRef<'_>) -> Option<u32> {
        self.users.get(id)
    }
    #[inline]
    pub fn item_index(&self, id: IdRef<'_>) -> Option<u32> {
        self.items.get(id)
    }
    /// Items the user interacted with in training, sorted by index.
    pub fn seen(&self, user: u32) -> &[u32] {
        let u = user as usize;
        &self.seen_items[self.seen_ptr[u] as usize..self.seen_ptr[u + 1] as usize]
    }
    pub fn popularity(&self) -> &[u64] {
        &self.popularity
    }

    /// The `k` most popular items with the share of users who interacted with each, for users
    /// the model does not know.
    pub fn most_popular(&self, k: usize) -> Vec<(u32, f64)> {
        let users = self.n_users().max(1) as f64;
        self.by_popularity.iter().take(k).map(|&i| (i, self.popularity[i as usize] as f64 / users)).collect()
    }

    /// Approximate heap footprint, for cache accounting.
    pub fn memory_bytes(&self) -> usize {
        let f = |v: usize| v * 4;
        let mut n =
            f(self.seen_items.len() + self.by_popularity.len()) + 8 * (self.seen_ptr.len() + self.popularity.len());
        if let Some(g) = &self.gmf {
            n += f(g.user.len() + g.item_folded.len());
        }
        if let Some(m) = &self.mlp {
            n += f(m.user_embedding.len() + m.first_user_weight.len() + m.item_pre.len());
            n += m.upper.iter().map(|d| f(d.weight.len() + d.bias.len())).sum::<usize>();
        }
        n + self.users.memory_bytes() + self.items.memory_bytes()
    }

    pub fn user_context(&self, user: u32) -> UserContext<'_> {
        let u = user as usize;
        let gmf_user: &[f32] = match &self.gmf {
            Some(g) => &g.user[u * g.factors..(u + 1) * g.factors],
            None => &[],
        };
        let (mlp_user_pre, widest) = match &self.mlp {
            Some(m) => {
                let p = &m.user_embedding[u * m.embed..(u + 1) * m.embed];
                let pre = (0..m.hidden).map(|o| dot(&m.first_user_weight[o * m.embed..(o + 1) * m.embed], p)).collect();
                (pre, m.hidden.max(m.upper.iter().map(|d| d.outputs).max().unwrap_or(0)))
            }
            None => (Vec::new(), 0),
        };
        UserContext { model: self, gmf_user, mlp_user_pre, scratch_a: vec![0.0; widest], scratch_b: vec![0.0; widest] }
    }
}

impl UserContext<'_> {
    /// The model's logit for this user and item index.
    pub fn logit(&mut self, item: u32) -> f32 {
        let m = self.model;
        let i = item as usize;
        let mut s = m.output_bias;
        if let Some(g) = &m.gmf {
            s += dot(self.gmf_user, &g.item_folded[i * g.factors..(i + 1) * g.factors]);
        }
        if let Some(mlp) = &m.mlp {
            let pre = &mlp.item_pre[i * mlp.hidden..(i + 1) * mlp.hidden];
            let a = &mut self.scratch_a[..mlp.hidden];
            for ((a, &u), &p) in a.iter_mut().zip(&self.mlp_user_pre).zip(pre) {
                *a = (u + p).max(0.0);
            }
            let mut width = mlp.hidden;
            for layer in &mlp.upper {
                layer.apply_relu(&self.scratch_a[..width], &mut self.scratch_b[..layer.outputs]);
                std::mem::swap(&mut self.scratch_a, &mut self.scratch_b);
                width = layer.outputs;
            }
            s += dot(&mlp.output, &self.scratch_a[..width]);
        }
        s
    }

    /// Predicted probability of interaction.
    pub fn score(&mut self, item: u32) -> f32 {
        sigmoid(self.logit(item))
    }

    /// Logits for many items at once, into `out` (cleared first). Activations are kept
    /// feature-major ([feature][candidate]) so every layer is a sequence of `y += w · x` over
    /// contiguous candidate rows, which the compiler vectorises; same values as [`Self::logit`]
    /// up to float summation order.
    pub fn logits(&mut self, items: &[u32], out: &mut Vec<f32>) {
        #[cfg(target_arch = "x86_64")]
        {
            if std::is_x86_feature_detected!("avx2") && std::is_x86_feature_detected!("fma") {
                // SAFETY: the CPU has the features the function is compiled for.
                return unsafe { self.logits_avx2(items, out) };
            }
        }
        self.logits_portable(items, out)
    }

    /// Adds the GMF term to `out` (one slot per candidate) and writes the first MLP layer
    /// feature-major into `z` with row stride `stride` (≥ candidates; padding stays 0):
    /// z[j·stride + c] = relu(user_pre[j] + item_pre[item_c][j]).
    #[inline(always)]
    fn gmf_and_first_layer(&self, items: &[u32], out: &mut [f32], stride: usize, z: &mut Vec<f32>) {
        let m = self.model;
        if let Some(g) = &m.gmf {
            for (o, &i) in out.iter_mut().zip(items) {
                let i = i as usize;
                *o += dot(self.gmf_user, &g.item_folded[i * g.factors..(i + 1) * g.factors]);
            }
        }
        let Some(mlp) = &m.mlp else { return };
        z.clear();
        z.resize(mlp.hidden * stride, 0.0);
        for (c, &i) in items.iter().enumerate() {
            let pre = &mlp.item_pre[i as usize * mlp.hidden..(i as usize + 1) * mlp.hidden];
            for (j, (&u, &p)) in self.mlp_user_pre.iter().zip(pre).enumerate() {
                z[j * stride + c] = (u + p).max(0.0);
            }
        }
    }

    /// The same computation with AVX2 + FMA intrinsics, chosen at run time so the library still
    /// runs on any x86-64. Candidates are padded to a multiple of 8 (one register); the dense
    /// layers are register-blocked ([`dense_relu_avx2`]).
    #[cfg(target_arch = "x86_64")]
    #[target_feature(enable = "avx2,fma")]
    unsafe fn logits_avx2(&mut self, items: &[u32], out: &mut Vec<f32>) {
        use std::arch::x86_64::*;
        let m = self.model;
        let n = items.len();
        let np = n.next_multiple_of(8);
        out.clear();
        out.resize(np, m.output_bias);
        let mut z = std::mem::take(&mut self.scratch_a);
        self.gmf_and_first_layer(items, out, np, &mut z);
        let Some(mlp) = &m.mlp else {
            out.truncate(n);
            self.scratch_a = z;
            return;
        };
        let mut next = std::mem::take(&mut self.scratch_b);
        for layer in &mlp.upper {
            let (inputs, outputs) = (layer.inputs, layer.outputs);
            next.clear();
            next.resize(outputs * np, 0.0);
            let (w, x, y) = (layer.weight.as_ptr(), z.as_ptr(), next.as_mut_ptr());
            // Two candidate registers at a time where there are 16 left: each weight broadcast
            // then feeds two FMAs, and 8 independent sums hide the FMA latency.
            let mut cb = 0;
            while cb + 16 <= np {
                dense_relu_avx2::<2>(w, &layer.bias, inputs, outputs, x, y, np, cb);
                cb += 16;
            }
            if cb < np {
                dense_relu_avx2::<1>(w, &layer.bias, inputs, outputs, x, y, np, cb);
            }
            std::mem::swap(&mut z, &mut next);
        }
        let (x, o) = (z.as_ptr(), out.as_mut_ptr());
        for cb in (0..np).step_by(8) {
            let mut a = _mm256_loadu_ps(o.add(cb));
            for (j, &h) in mlp.output.iter().enumerate() {
                a = _mm256_fmadd_ps(_mm256_set1_ps(h), _mm256_loadu_ps(x.add(j * np + cb)), a);
            }
            _mm256_storeu_ps(o.add(cb), a);
        }
        out.truncate(n);
        self.scratch_a = z;
        self.scratch_b = next;
    }

    #[inline(always)]
    fn logits_portable(&mut self, items: &[u32], out: &mut Vec<f32>) {
        let m = self.model;
        let n = items.len();
        out.clear();
        out.resize(n, m.output_bias);
        let mut z = std::mem::take(&mut self.scratch_a);
        self.gmf_and_first_layer(items, out, n, &mut z);
        let Some(mlp) = &m.mlp else {
            self.scratch_a = z;
            return;
        };
        let mut next = std::mem::take(&mut self.scratch_b);
        for layer in &mlp.upper {
            next.clear();
            next.resize(layer.outputs * n, 0.0);
            for o in 0..layer.outputs {
                let y = &mut next[o * n..(o + 1) * n];
                y.fill(layer.bias[o]);
                let w = &layer.weight[o * layer.inputs..(o + 1) * layer.inputs];
                for (j, &wj) in w.iter().enumerate() {
                    for (y, &x) in y.iter_mut().zip(&z[j * n..(j + 1) * n]) {
                        *y += wj * x;
                    }
                }
                for y in y.iter_mut() {
                    *y = y.max(0.0);
                }
            }
            std::mem::swap(&mut z, &mut next);
        }
        for (j, &h) in mlp.output.iter().enumerate() {
            for (o, &x) in out.iter_mut().zip(&z[j * n..(j + 1) * n]) {
                *o += h * x;
            }
        }
        self.scratch_a = z;
        self.scratch_b = next;
    }
}

/// One dense layer + ReLU over `B` blocks of 8 candidates starting at `cb`, feature-major:
/// y[o·np + c] = relu(bias[o] + Σⱼ w[o·inputs + j] · x[j·np + c]). Four outputs at a time keep
/// 4·B sums in registers across all inputs; nothing is stored until an output is complete.
///
/// # Safety
/// The CPU must have AVX2 and FMA; `w` holds outputs·inputs floats, `x` inputs·np and `y`
/// outputs·np, with cb + 8·B ≤ np.
#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx2,fma")]
#[allow(clippy::too_many_arguments)]
unsafe fn dense_relu_avx2<const B: usize>(
    w: *const f32,
    bias: &[f32],
    inputs: usize,
    outputs: usize,
    x: *const f32,
    y: *mut f32,
    np: usize,
    cb: usize,
) {
    use std::arch::x86_64::*;
    let zero = _mm256_setzero_ps();
    let mut o = 0;
    while o + 4 <= outputs {
        let mut acc = [[zero; B]; 4];
        for (k, row) in acc.iter_mut().enumerate() {
            *row = [_mm256_set1_ps(bias[o + k]); B];
        }
        for j in 0..inputs {
            let mut xv = [zero; B];
            for (b, v) in xv.iter_mut().enumerate() {
                *v = _mm256_loadu_ps(x.add(j * np + cb + 8 * b));
            }
            for (k, row) in acc.iter_mut().enumerate() {
                let wv = _mm256_set1_ps(*w.add((o + k) * inputs + j));
                for (a, &v) in row.iter_mut().zip(&xv) {
                    *a = _mm256_fmadd_ps(wv, v, *a);
                }
            }
        }
        for (k, row) in acc.iter().enumerate() {
            for (b, &a) in row.iter().enumerate() {
                _mm256_storeu_ps(y.add((o + k) * np + cb + 8 * b), _mm256_max_ps(a, zero));
            }
        }
        o += 4;
    }
    while o < outputs {
        let mut acc = [_mm256_set1_ps(bias[o]); B];
        for j in 0..inputs {
            let wv = _mm256_set1_ps(*w.add(o * inputs + j));
            for (b, a) in acc.iter_mut().enumerate() {
                *a = _mm256_fmadd_ps(wv, _mm256_loadu_ps(x.add(j * np + cb + 8 * b)), *a);
            }
        }
        for (b, &a) in acc.iter().enumerate() {
            _mm256_storeu_ps(y.add(o * np + cb + 8 * b), _mm256_max_ps(a, zero));
        }
        o += 1;
    }
}

thread_local! {
    /// Per-thread marks for dropping repeated candidates in O(n): `marks[item] == stamp` means
    /// "already taken in this call". A backend is one thread, so this is one array per backend.
    static CANDIDATE_MARKS: std::cell::RefCell<(Vec<u32>, u32)> = const { std::cell::RefCell::new((Vec::new(), 0)) };
}

impl ScoringModel {
    /// The top `k` of `candidates` (item indices; None for an unknown id, skipped) for `user`:
    /// (position in `candidates`, probability), best first. A repeated item counts once, at its
    /// first position.
    pub fn rank(&self, user: u32, candidates: impl Iterator<Item = Option<u32>>, k: usize) -> Vec<(usize, f32)> {
        let mut items: Vec<u32> = Vec::with_capacity(candidates.size_hint().0);
        let mut positions: Vec<u32> = Vec::with_capacity(items.capacity());
        // A short list against a big catalogue: sort out repeats instead of touching a mark per
        // catalogue item (which would cost a new connection's first call, and its private
        // memory, in proportion to the catalogue).
        if candidates.size_hint().1.is_some_and(|n| n.saturating_mul(16) < self.n_items()) {
            (items, positions) = first_occurrences(candidates);
            let mut logits = Vec::with_capacity(items.len());
            self.user_context(user).logits(&items, &mut logits);
            let scored: Vec<(f32, u32)> = logits.into_iter().zip(positions).collect();
            return top_k(scored, k).into_iter().map(|(logit, pos)| (pos as usize, sigmoid(logit))).collect();
        }
        CANDIDATE_MARKS.with_borrow_mut(|(marks, stamp)| {
            if marks.len() < self.n_items() {
                marks.resize(self.n_items(), 0);
            }
            *stamp = stamp.wrapping_add(1);
            if *stamp == 0 {
                // Wrapped after 2^32 calls: old marks could collide, so start clean.
                marks.fill(0);
                *stamp = 1;
            }
            for (pos, item) in candidates.enumerate() {
                let Some(item) = item else { continue };
                let mark = &mut marks[item as usize];
                if *mark != *stamp {
                    *mark = *stamp;
                    items.push(item);
                    positions.push(pos as u32);
                }
            }
        });
        let mut logits = Vec::with_capacity(items.len());
        self.user_context(user).logits(&items, &mut logits);
        let scored: Vec<(f32, u32)> = logits.into_iter().zip(positions).collect();
        top_k(scored, k).into_iter().map(|(logit, pos)| (pos as usize, sigmoid(logit))).collect()
    }
}

/// Why a two-stage recommendation cannot run.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TwoStageError {
    /// The model has no GMF part to shortlist with (an MLP-only model).
    NoGmf,
}

impl ScoringModel {
    /// Item indices the user has not interacted with (all items when `exclude_seen` is false).
    fn unseen_items(&self, user: u32, exclude_seen: bool) -> impl Iterator<Item = u32> + '_ {
        let seen = if exclude_seen { self.seen(user) } else { &[] };
        // `seen` is sorted, so one forward walk leaves the user's items out.
        let mut next_seen = seen.iter().peekable();
        (0..self.n_items() as u32).filter(move |item| {
            if next_seen.peek() == Some(&item) {
                next_seen.next();
                return false;
            }
            true
        })
    }

    /// The top `k` items of the whole catalogue for `user` as (item index, probability), best
    /// first, leaving out the user's training items when `exclude_seen`.
    ///
    /// `shortlist` = Some(n) runs two stages: every item is scored by its GMF term alone (one
    /// dot product of `factors` floats: the user's GMF vector with the item's, output weights
    /// folded in), the best n go on, and only they get the full NeuMF score. Exact when None.
    pub fn recommend(
        &self,
        user: u32,
        k: usize,
        exclude_seen: bool,
        shortlist: Option<usize>,
    ) -> Result<Vec<(u32, f32)>, TwoStageError> {
        let items: Vec<u32> = match shortlist {
            None => self.unseen_items(user, exclude_seen).collect(),
            Some(n) => {
                let g = self.gmf.as_ref().ok_or(TwoStageError::NoGmf)?;
                let seen = if exclude_seen { self.seen(user) } else { &[] };
                let u = self.user_vector(user).ok_or(TwoStageError::NoGmf)?;
                // Never more than the catalogue: n and k come from SQL and may be huge.
                let mut best = TopK::new(n.max(k).min(self.n_items()));
                #[cfg(target_arch = "x86_64")]
                let done = if std::is_x86_feature_detected!("avx2") && std::is_x86_feature_detected!("fma") {
                    // SAFETY: the CPU has the features the function is compiled for.
                    unsafe { first_stage_avx2(&g.first_stage_blocks, &u, self.n_items(), seen, &mut best) };
                    true
                } else {
                    false
                };
                #[cfg(not(target_arch = "x86_64"))]
                let done = false;
                if !done {
                    first_stage_portable(&g.first_stage_blocks, &u, self.n_items(), seen, &mut best);
                }
                let mut shortlisted: Vec<u32> = best.into_sorted().into_iter().map(|(_, i)| i).collect();
                // Index order reads the item arrays forward.
                shortlisted.sort_unstable();
                shortlisted
            }
        };
        let mut logits = Vec::with_capacity(items.len());
        self.user_context(user).logits(&items, &mut logits);
        let scored: Vec<(f32, u32)> = logits.into_iter().zip(items).collect();
        Ok(top_k(scored, k).into_iter().map(|(logit, item)| (item, sigmoid(logit))).collect())
    }

    /// The user's first-stage vector: the GMF user vector and a trailing 1. Its dot product
    /// with [`Self::item_vector`] is the first-stage score of a two-stage recommendation (the
    /// GMF term plus the item's prior). None for an MLP-only model.
    pub fn user_vector(&self, user: u32) -> Option<Vec<f32>> {
        let g = self.gmf.as_ref()?;
        let mut v = g.user[user as usize * g.factors..(user as usize + 1) * g.factors].to_vec();
        v.push(1.0);
        Some(v)
    }

    /// The item's first-stage vector: its GMF vector with the output weights folded in, and
    /// its prior (see [`Self::user_vector`]), read from its column of the first-stage blocks.
    pub fn item_vector(&self, item: u32) -> Option<Vec<f32>> {
        let g = self.gmf.as_ref()?;
        let (i, width) = (item as usize, (g.factors + 1) * BLOCK);
        let block = &g.first_stage_blocks[i / BLOCK * width..(i / BLOCK + 1) * width];
        Some(block.iter().skip(i % BLOCK).step_by(BLOCK).copied().collect())
    }
}

/// The known candidates, each at its first position, in position order: (items, positions).
fn first_occurrences(candidates: impl Iterator<Item = Option<u32>>) -> (Vec<u32>, Vec<u32>) {
    let mut firsts: Vec<(u32, u32)> =
        candidates.enumerate().filter_map(|(pos, item)| Some((item?, pos as u32))).collect();
    firsts.sort_unstable();
    firsts.dedup_by_key(|(item, _)| *item);
    firsts.sort_unstable_by_key(|&(_, pos)| pos);
    firsts.into_iter().unzip()
}

pub fn sigmoid(x: f32) -> f32 {
    1.0 / (1.0 + (-x).exp())
}

#[derive(PartialEq)]
struct Key(f32, u32);
impl Eq for Key {}
impl PartialOrd for Key {
    fn partial_cmp(&self, other: &Self) -> Option<std::cmp::Ordering> {
        Some(self.cmp(other))
    }
}
/// Greater = better: higher score, then lower index.
impl Ord for Key {
    fn cmp(&self, other: &Self) -> std::cmp::Ordering {
        self.0.total_cmp(&other.0).then(other.1.cmp(&self.1))
    }
}

/// The `k` best `(score, index)` pairs of a stream (as [`top_k`]), holding only `k` at a time:
/// a min-heap whose root is the bar a newcomer must clear, so a long stream costs one
/// comparison per element and rarely a heap update.
pub struct TopK {
    k: usize,
    heap: std::collections::BinaryHeap<std::cmp::Reverse<Key>>,
}

impl TopK {
    pub fn new(k: usize) -> Self {
        // Capacity grows as items come: k is a bound, not an allocation request.
        TopK { k, heap: std::collections::BinaryHeap::with_capacity(k.min(1 << 16) + 1) }
    }

    /// The score below which nothing can enter (-inf until `k` are held).
    #[inline]
    pub fn bar(&self) -> f32 {
        if self.heap.len() < self.k {
            f32::NEG_INFINITY
        } else {
            self.heap.peek().map_or(f32::INFINITY, |r| r.0 .0)
        }
    }

    #[inline]
    pub fn push(&mut self, score: f32, index: u32) {
        let key = Key(score, index);
        if self.heap.len() < self.k {
            self.heap.push(std::cmp::Reverse(key));
        } else if let Some(mut worst) = self.heap.peek_mut() {
            if key > worst.0 {
                *worst = std::cmp::Reverse(key);
            }
        }
    }

    /// Best first.
    pub fn into_sorted(self) -> Vec<(f32, u32)> {
        let mut best: Vec<(f32, u32)> = self.heap.into_iter().map(|std::cmp::Reverse(Key(s, i))| (s, i)).collect();
        best.sort_unstable_by(|a, b| b.0.total_cmp(&a.0).then(a.1.cmp(&b.1)));
        best
    }
}

pub fn streaming_top_k(scored: impl Iterator<Item = (f32, u32)>, k: usize) -> Vec<(f32, u32)> {
    let mut best = TopK::new(k);
    scored.for_each(|(s, i)| best.push(s, i));
    best.into_sorted()
}

/// Offers the items of one block, skipping padding and (sorted) `seen` items; only those at or
/// above the bar are looked up in `seen`.
#[inline(always)]
fn offer_block(scores: &[f32; BLOCK], block: usize, n_items: usize, seen: &[u32], best: &mut TopK) {
    let bar = best.bar();
    if scores.iter().all(|&s| s < bar) {
        return;
    }
    for (l, &s) in scores.iter().enumerate() {
        let i = block * BLOCK + l;
        if i < n_items && s >= best.bar() && seen.binary_search(&(i as u32)).is_err() {
            best.push(s, i as u32);
        }
    }
}

/// First-stage scores of every item (`u` · item, over `GmfSide::first_stage_blocks`) into `best`.
fn first_stage_portable(blocks: &[f32], u: &[f32], n_items: usize, seen: &[u32], best: &mut TopK) {
    let width = u.len() * BLOCK;
    for (b, block) in blocks.chunks_exact(width).enumerate() {
        let mut scores = [0f32; BLOCK];
        for (&uj, row) in u.iter().zip(block.chunks_exact(BLOCK)) {
            for (s, &x) in scores.iter_mut().zip(row) {
                *s += uj * x;
            }
        }
        offer_block(&scores, b, n_items, seen, best);
    }
}

/// The same with AVX2 + FMA: one register per block, two accumulators to hide FMA latency.
#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx2,fma")]
unsafe fn first_stage_avx2(blocks: &[f32], u: &[f32], n_items: usize, seen: &[u32], best: &mut TopK) {
    use std::arch::x86_64::*;
    let width = u.len() * BLOCK;
    let mut scores = [0f32; BLOCK];
    for (b, block) in blocks.chunks_exact(width).enumerate() {
        let p = block.as_ptr();
        let (mut even, mut odd) = (_mm256_setzero_ps(), _mm256_setzero_ps());
        let mut j = 0;
        while j + 2 <= u.len() {
            even = _mm256_fmadd_ps(_mm256_set1_ps(u[j]), _mm256_loadu_ps(p.add(j * BLOCK)), even);
            odd = _mm256_fmadd_ps(_mm256_set1_ps(u[j + 1]), _mm256_loadu_ps(p.add((j + 1) * BLOCK)), odd);
            j += 2;
        }
        if j < u.len() {
            even = _mm256_fmadd_ps(_mm256_set1_ps(u[j]), _mm256_loadu_ps(p.add(j * BLOCK)), even);
        }
        _mm256_storeu_ps(scores.as_mut_ptr(), _mm256_add_ps(even, odd));
        offer_block(&scores, b, n_items, seen, best);
    }
}

/// Indices of the `k` largest `(key, index)` pairs, best first; ties broken by lower index.
/// Partial selection: O(n + k log k).
pub fn top_k(mut scored: Vec<(f32, u32)>, k: usize) -> Vec<(f32, u32)> {
    let better = |a: &(f32, u32), b: &(f32, u32)| b.0.total_cmp(&a.0).then(a.1.cmp(&b.1));
    if k == 0 {
        return Vec::new();
    }
    if scored.len() > k {
        scored.select_nth_unstable_by(k - 1, better);
        scored.truncate(k);
    }
    scored.sort_unstable_by(better);
    scored
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;
    use crate::ids::IdMap;

    /// A small NeuMF with random weights: 3 users, 7 items, f = 4, tower 8-6-5-3 (so one
    /// layer has a block of four outputs plus a remainder and another has only a remainder).
    pub(crate) fn random_model() -> ScoringModel {
        random_model_with(IdMap::from_ints((0..3).collect()), IdMap::from_ints((0..7).collect()))
    }

    /// The same shape with text ids and a few seen items.
    pub(crate) fn random_text_model() -> ScoringModel {
        let texts = |n: usize| IdMap::from_texts((0..n).map(|i| format!("id-{i}").into()).collect());
        random_model_with(texts(3), texts(7))
    }

    fn random_model_with(users: IdMap, items: IdMap) -> ScoringModel {
        use crate::codec::ModelArtifact;
        use crate::spec::Architecture;
        use std::collections::BTreeMap;
        let (nu, ni, f, layers) = (3usize, 7usize, 4usize, vec![8usize, 6, 5, 3]);
        let mut seed = 1u32;
        let mut rnd = |n: usize| -> Tensor32 {
            let data = (0..n)
                .map(|_| {
                    seed = seed.wrapping_mul(1_664_525).wrapping_add(1_013_904_223);
                    (seed >> 8) as f32 / (1u32 << 24) as f32 - 0.5
                })
                .collect();
            Tensor32 { shape: vec![n], data }
        };
        let mut w = BTreeMap::new();
        let mut put = |name: &str, shape: Vec<usize>| {
            let mut t = rnd(shape.iter().product());
            t.shape = shape;
            w.insert(name.to_string(), t);
        };
        put("gmf.user_embedding.weight", vec![nu, f]);
        put("gmf.item_embedding.weight", vec![ni, f]);
        put("mlp.user_embedding.weight", vec![nu, 4]);
        put("mlp.item_embedding.weight", vec![ni, 4]);
        put("mlp.layers.0.weight", vec![6, 8]);
        put("mlp.layers.0.bias", vec![6]);
        put("mlp.layers.1.weight", vec![5, 6]);
        put("mlp.layers.1.bias", vec![5]);
        put("mlp.layers.2.weight", vec![3, 5]);
        put("mlp.layers.2.bias", vec![3]);
        put("output.weight", vec![1, f + 3]);
        put("output.bias", vec![1]);
        let art = ModelArtifact {
            spec: ModelSpec { architecture: Architecture::NeuMF, factors: f, layers },
            weights: w,
            seen_ptr: if users.kind() == crate::ids::IdKind::Text { vec![0, 2, 2, 3] } else { vec![0; nu + 1] },
            seen_items: if users.kind() == crate::ids::IdKind::Text { vec![1, 4, 0] } else { vec![] },
            user_ids: users,
            item_ids: items,
            popularity: (0..ni as u64).map(|i| i * 7 % 5).collect(),
        };
        ScoringModel::from_artifact(art).unwrap()
    }

    #[test]
    fn batched_logits_match_one_by_one() {
        let model = random_model();
        // Candidate counts that hit every blocking of the AVX2 path: one padded register, a
        // full pair of registers plus a padded one, two pairs, and a pair plus a single.
        let pool: Vec<u32> =
            vec![3, 0, 6, 6, 2, 1, 5, 4, 0, 2, 3, 6, 1, 5, 5, 0, 4, 2, 6, 3, 1, 1, 0, 6, 2, 4, 3, 5, 0, 6, 1, 2];
        for n in [1, 5, 13, 21, 24, 32] {
            let items = &pool[..n];
            for u in 0..model.n_users() as u32 {
                let mut ctx = model.user_context(u);
                let mut batch = Vec::new();
                ctx.logits(items, &mut batch);
                assert_eq!(batch.len(), n);
                for (&i, &b) in items.iter().zip(&batch) {
                    assert!((ctx.logit(i) - b).abs() < 1e-5, "{n} candidates");
                }
            }
        }
    }

    #[test]
    fn rank_skips_unknown_counts_repeats_once_and_sorts() {
        let model = random_model();
        let candidates = [Some(5), None, Some(2), Some(5), Some(0), Some(6), Some(2), Some(1)];
        for u in 0..model.n_users() as u32 {
            let got = model.rank(u, candidates.iter().copied(), 3);
            // Brute force: first position of each distinct known item, by probability.
            let mut want: Vec<(usize, f32)> = Vec::new();
            for (pos, c) in candidates.iter().enumerate() {
                if let Some(i) = c {
                    if !candidates[..pos].contains(&Some(*i)) {
                        want.push((pos, model.user_context(u).score(*i)));
                    }
                }
            }
            want.sort_by(|a, b| b.1.total_cmp(&a.1));
            want.truncate(3);
            assert_eq!(got.iter().map(|r| r.0).collect::<Vec<_>>(), want.iter().map(|r| r.0).collect::<Vec<_>>());
            for (g, w) in got.iter().zip(&want) {
                assert!((g.1 - w.1).abs() < 1e-6);
            }
        }
        // The sorting path (short lists, big catalogues) keeps the same first positions.
        let (items, positions) = first_occurrences(candidates.iter().copied());
        assert_eq!(items, vec![5, 2, 0, 6, 1]);
        assert_eq!(positions, vec![0, 2, 4, 5, 7]);
        // Marks from one call must not leak into the next.
        assert_eq!(model.rank(0, [Some(5)].into_iter(), 3).len(), 1);
        assert!(model.rank(0, [None, None].into_iter(), 3).is_empty());
    }

    #[test]
    fn top_k_is_partial_and_stable() {
        let v = vec![(0.1, 0), (0.9, 1), (0.5, 2), (0.9, 3), (0.2, 4)];
        assert_eq!(top_k(v.clone(), 3), vec![(0.9, 1), (0.9, 3), (0.5, 2)]);
        for k in 0..7 {
            assert_eq!(streaming_top_k(v.iter().copied(), k), top_k(v.clone(), k), "k = {k}");
        }
        let many: Vec<(f32, u32)> = (0..1000u32).map(|i| (((i * 7919) % 101) as f32, i)).collect();
        assert_eq!(streaming_top_k(many.iter().copied(), 37), top_k(many, 37));
        assert_eq!(top_k(v.clone(), 10).len(), 5);
        assert!(top_k(v, 0).is_empty());
    }

    #[test]
    fn two_stage_with_a_full_shortlist_is_exact_and_vectors_give_the_gmf_term() {
        let model = random_text_model();
        for u in 0..model.n_users() as u32 {
            for exclude in [true, false] {
                let exact = model.recommend(u, 4, exclude, None).unwrap();
                assert_eq!(model.recommend(u, 4, exclude, Some(model.n_items())).unwrap(), exact);
                let short = model.recommend(u, 2, exclude, Some(1)).unwrap();
                assert_eq!(short.len(), 2, "the shortlist is never shorter than k");
                if exclude {
                    assert!(exact.iter().all(|(i, _)| !model.seen(u).contains(i)));
                }
            }
            let p = model.user_vector(u).unwrap();
            let g = model.gmf.as_ref().unwrap();
            let f = g.factors;
            for i in 0..model.n_items() as u32 {
                let first_stage = dot(&p, &model.item_vector(i).unwrap());
                let gmf: f32 = (0..f).map(|j| g.user[u as usize * f + j] * g.item_folded[i as usize * f + j]).sum();
                let prior = *model.item_vector(i).unwrap().last().unwrap();
                assert!((first_stage - gmf - prior).abs() < 1e-5);
                assert_eq!(&model.item_vector(i).unwrap()[..f], &g.item_folded[i as usize * f..(i as usize + 1) * f]);
            }
            // The shortlist is the top n by that dot product among unseen items, re-ranked.
            for n in [1, 3, 5] {
                let unseen: Vec<u32> = (0..model.n_items() as u32).filter(|i| !model.seen(u).contains(i)).collect();
                let first: Vec<(f32, u32)> =
                    unseen.iter().map(|&i| (dot(&p, &model.item_vector(i).unwrap()), i)).collect();
                let mut shortlist: Vec<u32> = top_k(first, n.max(2)).into_iter().map(|x| x.1).collect();
                shortlist.sort_unstable();
                let mut logits = Vec::new();
                model.user_context(u).logits(&shortlist, &mut logits);
                let want: Vec<u32> =
                    top_k(logits.into_iter().zip(shortlist).collect(), 2).into_iter().map(|x| x.1).collect();
                let got: Vec<u32> = model.recommend(u, 2, true, Some(n)).unwrap().into_iter().map(|x| x.0).collect();
                assert_eq!(got, want, "user {u}, shortlist of {n}");
            }
            // Every item's prior is a finite logit (only padding scores -inf).
            assert!((0..model.n_items() as u32).all(|i| model.item_vector(i).unwrap().last().unwrap().is_finite()));
        }
    }

    #[test]
    fn first_stage_kernels_agree() {
        let (n_items, f1) = (1003usize, 5usize);
        let blocks: Vec<f32> =
            (0..n_items.div_ceil(BLOCK) * f1 * BLOCK).map(|x| ((x * 7919 % 1009) as f32 / 500.0) - 1.0).collect();
        let u = [0.3f32, -1.2, 0.7, 0.05, 1.0];
        let seen = [2u32, 17, 400, 1002];
        let mut portable = TopK::new(50);
        first_stage_portable(&blocks, &u, n_items, &seen, &mut portable);
        let portable = portable.into_sorted();
        assert_eq!(portable.len(), 50);
        assert!(portable.iter().all(|(_, i)| (*i as usize) < n_items && !seen.contains(i)));
        #[cfg(target_arch = "x86_64")]
        if std::is_x86_feature_detected!("avx2") && std::is_x86_feature_detected!("fma") {
            let mut fast = TopK::new(50);
            // SAFETY: the CPU has the features.
            unsafe { first_stage_avx2(&blocks, &u, n_items, &seen, &mut fast) };
            let fast = fast.into_sorted();
            assert_eq!(fast.iter().map(|x| x.1).collect::<Vec<_>>(), portable.iter().map(|x| x.1).collect::<Vec<_>>());
        }
    }
}
