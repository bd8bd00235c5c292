//! The serving kernel: scores (user, item) pairs on the CPU without libtorch.
//!
//! At load time the item side is precomputed so a request costs little per candidate:
//! - GMF: `hᵀ(p ⊙ q) = p · (h ⊙ q)`, so the GMF half of the output weights is folded into
//!   every item vector.
//! - MLP: `W₁[p; q] + b₁ = W₁ᵤp + (W₁ᵢq + b₁)`; the item term is stored per item, the user
//!   term is computed once per request. Each candidate then costs one add + ReLU of width
//!   `layers[1]` and the (small) upper layers.

use crate::codec::{ModelArtifact, Tensor32};
use crate::ids::{DenseLookup, IdMap, IdRef};
use crate::spec::ModelSpec;
use anyhow::{anyhow, bail, Result};

#[derive(Debug, Clone)]
struct Dense {
    /// Row-major [out, in].
    weight: Vec<f32>,
    bias: Vec<f32>,
    inputs: usize,
    outputs: usize,
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
struct GmfSide {
    factors: usize,
    user: Vec<f32>,
    /// Item vectors pre-multiplied by the GMF output weights.
    item_folded: Vec<f32>,
}

#[derive(Debug, Clone)]
struct MlpSide {
    embed: usize,
    hidden: usize,
    user_embedding: Vec<f32>,
    /// Row-major [hidden, embed]: the user half of the first layer.
    first_user_weight: Vec<f32>,
    /// Per item: W₁ᵢ q + b₁, row-major [items, hidden].
    item_pre: Vec<f32>,
    upper: Vec<Dense>,
    /// Output weights over the last MLP layer.
    output: Vec<f32>,
}

/// A decoded model ready to score: id maps, seen lists, popularity and the folded weights.
#[derive(Debug, Clone)]
pub struct ScoringModel {
    pub spec: ModelSpec,
    pub users: IdMap,
    pub items: IdMap,
    /// Direct-address tables over `users` / `items` when their bigint ids are nearly dense.
    user_lookup: Option<DenseLookup>,
    item_lookup: Option<DenseLookup>,
    seen_ptr: Vec<u64>,
    seen_items: Vec<u32>,
    popularity: Vec<u64>,
    /// Item indices by descending popularity (ties by index): the cold-start answer.
    by_popularity: Vec<u32>,
    gmf: Option<GmfSide>,
    mlp: Option<MlpSide>,
    output_bias: f32,
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

/// Dense index of `id`: through the direct-address table for a bigint id when there is one.
#[inline]
fn index_of(map: &IdMap, dense: Option<&DenseLookup>, id: IdRef<'_>) -> Option<u32> {
    match (dense, id) {
        (Some(dense), IdRef::Int(v)) => dense.get(v),
        _ => map.get(id),
    }
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
            Some(GmfSide { factors: f, user, item_folded })
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
                        weight: take(w, &format!("mlp.layers.{k}.weight"), &[win[1], win[0]])?,
                        bias: take(w, &format!("mlp.layers.{k}.bias"), &[win[1]])?,
                        inputs: win[0],
                        outputs: win[1],
                    })
                })
                .collect::<Result<Vec<_>>>()?;
            let gmf_width = if spec.architecture.has_gmf() { spec.factors } else { 0 };
            Some(MlpSide {
                embed: d,
                hidden: h1,
                user_embedding,
                first_user_weight,
                item_pre,
                upper,
                output: output[gmf_width..].to_vec(),
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
        Ok(Self {
            spec,
            by_popularity,
            user_lookup: DenseLookup::build(&art.user_ids),
            item_lookup: DenseLookup::build(&art.item_ids),
            users: art.user_ids,
            items: art.item_ids,
            seen_ptr: art.seen_ptr,
            seen_items: art.seen_items,
            popularity: art.popularity,
            gmf,
            mlp,
            output_bias,
        })
    }

    pub fn n_users(&self) -> usize {
        self.users.len()
    }
    pub fn n_items(&self) -> usize {
        self.items.len()
    }
    pub fn user_index(&self, id: IdRef<'_>) -> Option<u32> {
        index_of(&self.users, self.user_lookup.as_ref(), id)
    }
    #[inline]
    pub fn item_index(&self, id: IdRef<'_>) -> Option<u32> {
        index_of(&self.items, self.item_lookup.as_ref(), id)
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
        n += [&self.user_lookup, &self.item_lookup]
            .iter()
            .filter_map(|l| l.as_ref())
            .map(|l| l.memory_bytes())
            .sum::<usize>();
        n + 48 * (self.users.len() + self.items.len())
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

pub fn sigmoid(x: f32) -> f32 {
    1.0 / (1.0 + (-x).exp())
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
mod tests {
    use super::*;

    /// A small NeuMF with random weights: 3 users, 7 items, f = 4, tower 8-6-5-3 (so one
    /// layer has a block of four outputs plus a remainder and another has only a remainder).
    fn random_model() -> ScoringModel {
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
            user_ids: IdMap::from_ints((0..nu as i64).collect()),
            item_ids: IdMap::from_ints((0..ni as i64).collect()),
            seen_ptr: vec![0; nu + 1],
            seen_items: vec![],
            popularity: vec![0; ni],
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
        // Marks from one call must not leak into the next.
        assert_eq!(model.rank(0, [Some(5)].into_iter(), 3).len(), 1);
        assert!(model.rank(0, [None, None].into_iter(), 3).is_empty());
    }

    #[test]
    fn top_k_is_partial_and_stable() {
        let v = vec![(0.1, 0), (0.9, 1), (0.5, 2), (0.9, 3), (0.2, 4)];
        assert_eq!(top_k(v.clone(), 3), vec![(0.9, 1), (0.9, 3), (0.5, 2)]);
        assert_eq!(top_k(v.clone(), 10).len(), 5);
        assert!(top_k(v, 0).is_empty());
    }
}
