//! What a model is (architecture and shape) and how it is trained, with validation that turns
//! nonsense into one-line messages the SQL layer can raise as-is.

use serde::{Deserialize, Serialize};
use std::fmt;

/// The three models of He et al. (2017).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Architecture {
    Gmf,
    Mlp,
    NeuMF,
}

impl Architecture {
    pub fn parse(name: &str) -> Result<Self, String> {
        match name.trim().to_ascii_lowercase().as_str() {
            "gmf" => Ok(Self::Gmf),
            "mlp" => Ok(Self::Mlp),
            "neumf" => Ok(Self::NeuMF),
            other => Err(format!("unknown architecture \"{other}\": use 'gmf', 'mlp' or 'neumf'")),
        }
    }
    pub fn has_gmf(self) -> bool {
        matches!(self, Self::Gmf | Self::NeuMF)
    }
    pub fn has_mlp(self) -> bool {
        matches!(self, Self::Mlp | Self::NeuMF)
    }
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Gmf => "gmf",
            Self::Mlp => "mlp",
            Self::NeuMF => "neumf",
        }
    }
}

impl fmt::Display for Architecture {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// The shape of a model: enough to rebuild it from stored weights.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ModelSpec {
    pub architecture: Architecture,
    /// GMF embedding width ("predictive factors").
    pub factors: usize,
    /// MLP tower widths; `layers[0]` is the concatenated input (2 × MLP embedding width).
    pub layers: Vec<usize>,
}

impl ModelSpec {
    pub fn mlp_embedding_dim(&self) -> usize {
        self.layers[0] / 2
    }
    /// Width of the vector the output layer reads.
    pub fn output_input_dim(&self) -> usize {
        let gmf = if self.architecture.has_gmf() { self.factors } else { 0 };
        let mlp = if self.architecture.has_mlp() { *self.layers.last().unwrap() } else { 0 };
        gmf + mlp
    }

    pub fn validate(&self) -> Result<(), String> {
        if self.factors == 0 || self.factors > 4096 {
            return Err(format!("factors must be between 1 and 4096, got {}", self.factors));
        }
        if self.architecture.has_mlp() {
            if self.layers.len() < 2 {
                return Err(format!(
                    "layers must list at least two widths (the input, 2 × embedding, and one hidden layer), got {:?}",
                    self.layers
                ));
            }
            if let Some(bad) = self.layers.iter().find(|&&w| w == 0 || w > 16384) {
                return Err(format!("every layer width must be between 1 and 16384, got {bad}"));
            }
            if !self.layers[0].is_multiple_of(2) {
                return Err(format!(
                    "layers[0] is the concatenated user+item embedding and must be even, got {}",
                    self.layers[0]
                ));
            }
        }
        Ok(())
    }
}

/// Where training runs.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum DeviceChoice {
    Auto,
    Cpu,
    Cuda,
}

impl DeviceChoice {
    pub fn parse(name: &str) -> Result<Self, String> {
        match name.trim().to_ascii_lowercase().as_str() {
            "auto" => Ok(Self::Auto),
            "cpu" => Ok(Self::Cpu),
            "cuda" | "gpu" => Ok(Self::Cuda),
            other => Err(format!("unknown device \"{other}\": use 'auto', 'cpu' or 'cuda'")),
        }
    }
}

/// The arithmetic of the training forward pass. Weights, gradients and the optimizer state stay
/// f32 either way, and so does the stored model.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Precision {
    #[default]
    Fp32,
    /// Mixed precision: embeddings are gathered in f32, then the GMF product, the MLP and the
    /// output layer compute in bfloat16 (f32's exponent range, so no loss scaling is needed);
    /// for GPUs with bfloat16 tensor cores (compute capability 8.0 on).
    Bf16,
}

impl Precision {
    pub fn parse(name: &str) -> Result<Self, String> {
        match name.trim().to_ascii_lowercase().as_str() {
            "fp32" | "float32" => Ok(Self::Fp32),
            "bf16" | "bfloat16" | "mixed" => Ok(Self::Bf16),
            other => Err(format!("unknown precision \"{other}\": use 'fp32' or 'bf16' (mixed precision)")),
        }
    }
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Fp32 => "fp32",
            Self::Bf16 => "bf16",
        }
    }
}

/// How negatives are drawn each epoch (always exact: never a known positive).
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase", tag = "kind")]
pub enum Sampling {
    /// Uniform over the items the user has not interacted with.
    Uniform,
    /// P(i) ∝ count(i)^exponent (word2vec's 0.75 by default).
    Popularity { exponent: f64 },
    /// A `share` of the negatives are the highest-scoring of `pool` uniform candidates under the
    /// current model; the rest are uniform.
    Hard { pool: usize, share: f64 },
}

impl Sampling {
    pub fn parse(name: &str, exponent: f64, pool: usize, share: f64) -> Result<Self, String> {
        match name.trim().to_ascii_lowercase().as_str() {
            "uniform" => Ok(Self::Uniform),
            "popularity" => Ok(Self::Popularity { exponent }),
            "hard" => Ok(Self::Hard { pool, share }),
            other => Err(format!("unknown sampling \"{other}\": use 'uniform', 'popularity' or 'hard'")),
        }
    }
    pub fn name(&self) -> &'static str {
        match self {
            Self::Uniform => "uniform",
            Self::Popularity { .. } => "popularity",
            Self::Hard { .. } => "hard",
        }
    }
}

/// Learning-rate schedule over the epochs.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum LrSchedule {
    Constant,
    /// Cosine decay from the learning rate to 0 over the planned epochs.
    Cosine,
}

impl LrSchedule {
    pub fn parse(name: &str) -> Result<Self, String> {
        match name.trim().to_ascii_lowercase().as_str() {
            "constant" => Ok(Self::Constant),
            "cosine" => Ok(Self::Cosine),
            other => Err(format!("unknown lr_schedule \"{other}\": use 'constant' or 'cosine'")),
        }
    }
    /// Multiplier for epoch `epoch` (0-based) of `epochs`.
    pub fn factor(self, epoch: usize, epochs: usize) -> f64 {
        match self {
            Self::Constant => 1.0,
            Self::Cosine => 0.5 * (1.0 + (std::f64::consts::PI * epoch as f64 / epochs.max(1) as f64).cos()),
        }
    }
}

/// The MLP tower for `factors` predictive factors: [8f, 4f, 2f, f] (64-32-16-8 at f = 8).
/// What a training needs at least, in bytes (`TrainConfig::memory_need`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct MemoryNeed {
    /// Embedding tables and dense layers with their gradients and Adam's state.
    pub tables: u64,
    /// One epoch's training samples.
    pub epoch: u64,
    /// One batch's activations and their gradients.
    pub batch: u64,
}

impl MemoryNeed {
    pub fn total(&self) -> u64 {
        self.tables + self.epoch + self.batch
    }

    /// The refusal when the total exceeds `available` bytes: what it would need and why. The
    /// words "out of memory" make it SQLSTATE 53200 like an allocation failure (`failure`).
    pub fn check(&self, available: u64) -> Result<(), String> {
        if self.total() <= available {
            return Ok(());
        }
        let gb = |b: u64| format!("{:.1} GB", b as f64 / 1e9);
        Err(format!(
            "out of memory before starting: this training needs at least {} ({} for the model's weights, gradients and Adam state, {} for an epoch's samples, {} for one batch), more than the {} of memory this machine has",
            gb(self.total()),
            gb(self.tables),
            gb(self.epoch),
            gb(self.batch),
            gb(available)
        ))
    }
}

pub fn default_layers(factors: usize) -> Vec<usize> {
    vec![8 * factors, 4 * factors, 2 * factors, factors]
}

fn default_recency_half_life() -> f64 {
    5.0
}

/// The shipped defaults (see [`TrainConfig::recommended`]).
pub struct Recommended {
    pub factors: usize,
    pub batch_size: usize,
    pub learning_rate: f64,
    pub epochs: usize,
    pub negatives: usize,
    pub patience: usize,
    /// AdamW's decay as a timescale in epochs (see [`TrainConfig::with_recommended_weight_decay`]).
    pub weight_decay_epochs: f64,
    pub dropout: f64,
    pub lr_schedule: LrSchedule,
    pub sampling: Sampling,
    pub pretrain: bool,
    pub finetune_lr_factor: f64,
    pub refit: bool,
    pub recency_weight: f64,
    pub recency_half_life: f64,
    pub seed: u64,
    /// Parameters of the samplers, used when `sampling` names them.
    pub popularity_exponent: f64,
    pub hard_pool: usize,
    pub hard_share: f64,
}

/// Chosen on ML-100K's validation holdout (each user's latest training interaction + 99 fixed
/// negatives), never on test data: pretraining had the best validation NDCG@10 and
/// full-catalogue recall across factor sizes; refitting on all data gives back every user's
/// latest interaction; weight decay with a timescale of 5 epochs (AdamW coefficient 0.10 on
/// ML-100K) beat none and 1.7–10.4 epochs. bench/README.md has the sweeps.
pub const RECOMMENDED: Recommended = Recommended {
    factors: 16,
    batch_size: 256,
    learning_rate: 0.001,
    epochs: 30,
    negatives: 4,
    patience: 4,
    weight_decay_epochs: 5.0,
    dropout: 0.0,
    lr_schedule: LrSchedule::Constant,
    sampling: Sampling::Uniform,
    pretrain: true,
    finetune_lr_factor: 0.3,
    refit: true,
    recency_weight: 3.0,
    recency_half_life: 5.0,
    seed: 42,
    popularity_exponent: 0.75,
    hard_pool: 8,
    hard_share: 0.5,
};

/// Everything `neumf_train` accepts besides the source.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct TrainConfig {
    /// Flattened, so the stored hyper-parameters keep `architecture`, `factors` and `layers` at
    /// the top level, where the `neumf_models` view reads them.
    #[serde(flatten)]
    pub spec: ModelSpec,
    pub epochs: usize,
    pub batch_size: usize,
    pub learning_rate: f64,
    /// Sampled negatives per positive, drawn afresh every epoch.
    pub negatives: usize,
    pub seed: u64,
    pub device: DeviceChoice,
    /// libtorch intra-op threads on CPU.
    pub threads: usize,
    pub sampling: Sampling,
    /// Decoupled weight decay (AdamW); 0 = plain Adam.
    pub weight_decay: f64,
    /// Dropout on the MLP's hidden activations while training.
    pub dropout: f64,
    pub lr_schedule: LrSchedule,
    /// Stop after this many epochs without a better validation HR@K (0 = never stop early).
    pub patience: usize,
    /// NeuMF only: train GMF and MLP first and start from their weights (He et al. §3.4.1).
    pub pretrain: bool,
    /// With `pretrain`, NeuMF fine-tunes at `learning_rate × finetune_lr_factor` (the paper
    /// fine-tunes gently, with plain SGD, so as not to undo the pretrained start).
    pub finetune_lr_factor: f64,
    /// With a validation holdout: after choosing each phase's epochs on it, train again on all
    /// the data for those epochs (see `train::train_and_refit`).
    pub refit: bool,
    /// Recency weighting (needs timestamps): a positive with `a` later interactions of its user
    /// weighs 1 + recency_weight × 2^(−a / recency_half_life), normalised to mean 1, so user
    /// vectors lean towards current taste. 0 = every positive weighs the same.
    #[serde(default)]
    pub recency_weight: f64,
    #[serde(default = "default_recency_half_life")]
    pub recency_half_life: f64,
    #[serde(default)]
    pub precision: Precision,
    /// Cut-off K of the validation metrics.
    pub eval_k: usize,
    /// Rows rated below this (or unrated) are not interactions; None = every row is one.
    #[serde(default)]
    pub min_rating: Option<f64>,
    /// Hold out each user's latest interaction for validation. None = decide from the data
    /// ([`TrainConfig::for_data`]); the trainer receives it decided.
    #[serde(default)]
    pub validation: Option<bool>,
}

impl TrainConfig {
    /// The paper's defaults (factors 8, MLP 64-32-16-8, 4 negatives, batch 256, Adam 1e-3, 20 epochs).
    pub fn paper_defaults() -> Self {
        Self {
            spec: ModelSpec { architecture: Architecture::NeuMF, factors: 8, layers: vec![64, 32, 16, 8] },
            epochs: 20,
            batch_size: 256,
            learning_rate: 0.001,
            negatives: 4,
            seed: 42,
            device: DeviceChoice::Auto,
            threads: 1,
            sampling: Sampling::Uniform,
            weight_decay: 0.0,
            dropout: 0.0,
            lr_schedule: LrSchedule::Constant,
            patience: 0,
            pretrain: false,
            finetune_lr_factor: 1.0,
            refit: false,
            recency_weight: 0.0,
            recency_half_life: default_recency_half_life(),
            precision: Precision::Fp32,
            eval_k: 10,
            min_rating: None,
            validation: None,
        }
    }

    /// The defaults `neumf_train` ships: chosen on a validation split carved from ML-100K's
    /// training data (see bench/README.md), not on the test negatives. The weight decay depends
    /// on the data's size: set it with [`Self::with_recommended_weight_decay`] (0 until then).
    pub fn recommended() -> Self {
        let mut c = Self::paper_defaults();
        c.spec.factors = RECOMMENDED.factors;
        c.spec.layers = default_layers(RECOMMENDED.factors);
        c.batch_size = RECOMMENDED.batch_size;
        c.learning_rate = RECOMMENDED.learning_rate;
        c.epochs = RECOMMENDED.epochs;
        c.negatives = RECOMMENDED.negatives;
        c.patience = RECOMMENDED.patience;
        c.dropout = RECOMMENDED.dropout;
        c.lr_schedule = RECOMMENDED.lr_schedule;
        c.sampling = RECOMMENDED.sampling;
        c.pretrain = RECOMMENDED.pretrain;
        c.finetune_lr_factor = RECOMMENDED.finetune_lr_factor;
        c.refit = RECOMMENDED.refit;
        c.recency_weight = RECOMMENDED.recency_weight;
        c.recency_half_life = RECOMMENDED.recency_half_life;
        c.seed = RECOMMENDED.seed;
        c
    }

    /// Learning rate for a batch size when none is given: the recommended rate, scaled by
    /// √(batch / recommended batch) (square-root scaling keeps Adam stable at large batches).
    pub fn scaled_learning_rate(batch_size: usize) -> f64 {
        let r = Self::recommended();
        (r.learning_rate * (batch_size as f64 / r.batch_size as f64).sqrt()).clamp(1e-5, 0.05)
    }

    /// Optimizer steps in one epoch over `interactions` positives.
    pub fn steps_per_epoch(&self, interactions: usize) -> usize {
        (interactions * (1 + self.negatives)).div_ceil(self.batch_size.max(1)).max(1)
    }

    /// Sets the recommended weight decay for `interactions` positives, after the learning rate,
    /// batch size and negatives are final. AdamW multiplies every weight by 1 − lr·wd each step,
    /// so the decay forgets over 1/(lr·wd) steps; the default fixes that timescale in epochs
    /// (Wang & Aitchison 2024, "How to set AdamW's weight decay as you scale model and dataset
    /// size"). A fixed coefficient would regularise a 20M-row table ~200× harder per epoch
    /// than ML-100K; with a fixed timescale each embedding row shrinks, between two of its
    /// updates, by an amount set by its own interaction count, whatever the table's size.
    pub fn with_recommended_weight_decay(mut self, interactions: usize) -> Self {
        let steps = self.steps_per_epoch(interactions) as f64;
        self.weight_decay = 1.0 / (self.learning_rate * RECOMMENDED.weight_decay_epochs * steps);
        self
    }

    /// A lower bound on the memory a training needs, in bytes, from the data's size alone, so
    /// an impossible training is refused before anything is allocated (see `MemoryNeed`).
    pub fn memory_need(&self, n_users: usize, n_items: usize, interactions: usize) -> MemoryNeed {
        let spec = &self.spec;
        let rows = (n_users + n_items) as u64;
        let mut params = 0u64;
        if spec.architecture.has_gmf() {
            params += rows * spec.factors as u64;
        }
        if spec.architecture.has_mlp() {
            params += rows * spec.mlp_embedding_dim() as u64;
            params += spec.layers.windows(2).map(|w| (w[0] * w[1] + w[1]) as u64).sum::<u64>();
        }
        params += spec.output_input_dim() as u64 + 1;
        // Weights, their gradient and Adam's two moments, in f32.
        let tables = params * 4 * 4;
        // An epoch's samples: user and item indices (i64) and a label (f32), drawn and then
        // permuted (two copies).
        let samples = (interactions as u64) * (1 + self.negatives as u64);
        let epoch = samples * (8 + 8 + 4) * 2;
        // One batch's activations, kept for the backward pass, and their gradients (f32).
        let width: usize = spec.layers.iter().sum::<usize>() + spec.output_input_dim() + 2 * spec.factors;
        let batch = self.batch_size as u64 * width as u64 * 4 * 2;
        MemoryNeed { tables, epoch, batch }
    }

    /// Whether an epoch over `interactions` positives holds at least one batch.
    pub fn check_fits(&self, interactions: usize) -> Result<(), String> {
        let per_epoch = interactions * (1 + self.negatives);
        if self.batch_size > per_epoch {
            return Err(format!(
                "batch_size {} is larger than an epoch ({interactions} interactions × (1 + {} negatives) = {per_epoch} samples); use a batch_size of at most {per_epoch}",
                self.batch_size, self.negatives
            ));
        }
        Ok(())
    }

    pub fn validate(&self) -> Result<(), String> {
        self.spec.validate()?;
        if self.epochs == 0 || self.epochs > 100_000 {
            return Err(format!("epochs must be between 1 and 100000, got {}", self.epochs));
        }
        if self.batch_size == 0 || self.batch_size > (1 << 24) {
            return Err(format!("batch_size must be between 1 and 16777216, got {}", self.batch_size));
        }
        if !(self.learning_rate.is_finite() && self.learning_rate > 0.0 && self.learning_rate <= 10.0) {
            return Err(format!("learning_rate must be in (0, 10], got {}", self.learning_rate));
        }
        if self.negatives == 0 || self.negatives > 1000 {
            return Err(format!("negatives (per positive) must be between 1 and 1000, got {}", self.negatives));
        }
        if self.threads == 0 || self.threads > 1024 {
            return Err(format!("thread count must be between 1 and 1024, got {}", self.threads));
        }
        match self.sampling {
            Sampling::Popularity { exponent } if !(exponent.is_finite() && exponent > 0.0 && exponent <= 10.0) => {
                return Err(format!("popularity exponent must be in (0, 10], got {exponent}"));
            }
            Sampling::Hard { pool, share } => {
                if !(2..=1000).contains(&pool) {
                    return Err(format!("hard_pool must be between 2 and 1000, got {pool}"));
                }
                if !(share.is_finite() && share > 0.0 && share <= 1.0) {
                    return Err(format!("hard_share must be in (0, 1], got {share}"));
                }
            }
            _ => {}
        }
        // Each step multiplies the weights by 1 − learning_rate × weight_decay.
        if !(self.weight_decay.is_finite() && self.weight_decay >= 0.0 && self.learning_rate * self.weight_decay < 1.0)
        {
            return Err(format!(
                "weight_decay must be ≥ 0 with learning_rate × weight_decay < 1 (each step multiplies the weights by 1 − their product), got {} at learning_rate {}",
                self.weight_decay, self.learning_rate
            ));
        }
        if !(self.dropout.is_finite() && (0.0..1.0).contains(&self.dropout)) {
            return Err(format!("dropout must be in [0, 1), got {}", self.dropout));
        }
        if self.pretrain && self.spec.architecture != Architecture::NeuMF {
            return Err(format!(
                "pretrain => true needs architecture => 'neumf' (it initialises NeuMF from GMF and MLP), got '{}'",
                self.spec.architecture
            ));
        }
        if !(self.finetune_lr_factor.is_finite() && self.finetune_lr_factor > 0.0 && self.finetune_lr_factor <= 10.0) {
            return Err(format!("finetune_lr_factor must be in (0, 10], got {}", self.finetune_lr_factor));
        }
        if !(self.recency_weight.is_finite() && (0.0..=1000.0).contains(&self.recency_weight)) {
            return Err(format!("recency_weight must be in [0, 1000], got {}", self.recency_weight));
        }
        if !(self.recency_half_life.is_finite() && self.recency_half_life > 0.0 && self.recency_half_life <= 1e6) {
            return Err(format!(
                "recency_half_life (interactions) must be in (0, 1000000], got {}",
                self.recency_half_life
            ));
        }
        if let Some(m) = self.min_rating {
            if !m.is_finite() {
                return Err(format!("min_rating must be a finite number, got {m}"));
            }
        }
        if self.eval_k == 0 || self.eval_k > 1000 {
            return Err(format!("eval_k must be between 1 and 1000, got {}", self.eval_k));
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn paper_defaults_are_valid() {
        TrainConfig::paper_defaults().validate().unwrap();
    }

    /// The error for `paper_defaults()` changed by `change` mentions `needle`.
    fn rejects(change: impl FnOnce(&mut TrainConfig), needle: &str) {
        let mut c = TrainConfig::paper_defaults();
        change(&mut c);
        let err = c.validate().expect_err(needle);
        assert!(err.contains(needle), "{err}");
    }

    #[test]
    fn rejects_nonsense_with_a_message() {
        rejects(|c| c.spec.factors = 0, "factors");
        rejects(|c| c.spec.layers = vec![], "layers");
        rejects(|c| c.spec.layers = vec![63, 32], "even");
        rejects(|c| c.epochs = 0, "epochs");
        rejects(|c| c.learning_rate = -1.0, "learning_rate");
        rejects(|c| c.negatives = 0, "negatives");
        rejects(|c| c.sampling = Sampling::Popularity { exponent: 0.0 }, "exponent");
        rejects(|c| c.sampling = Sampling::Hard { pool: 1, share: 0.5 }, "hard_pool");
        rejects(|c| c.dropout = 1.0, "dropout");
        rejects(|c| c.weight_decay = -0.1, "weight_decay");
        rejects(|c| c.weight_decay = 1.0 / c.learning_rate, "weight_decay");
        rejects(
            |c| {
                c.spec.architecture = Architecture::Mlp;
                c.pretrain = true;
            },
            "pretrain",
        );
        rejects(|c| c.recency_weight = -1.0, "recency_weight");
        rejects(|c| c.recency_half_life = 0.0, "recency_half_life");
        TrainConfig::recommended().validate().unwrap();
        // GMF ignores the MLP tower entirely.
        let mut c = TrainConfig::paper_defaults();
        c.spec.architecture = Architecture::Gmf;
        c.spec.layers = vec![];
        c.validate().unwrap();
    }

    /// The default decay keeps its timescale in epochs: 1/(lr·wd) steps = 5 epochs of steps,
    /// whatever the data's size, batch or learning rate.
    #[test]
    fn recommended_weight_decay_has_a_fixed_timescale() {
        // ML-100K's training split: 99,057 positives × 5 / 256 = 1,935 steps per epoch.
        let ml100k = TrainConfig::recommended().with_recommended_weight_decay(99_057);
        assert!((ml100k.weight_decay - 0.1034).abs() < 1e-3, "{}", ml100k.weight_decay);
        for (interactions, batch) in [(99_057, 256), (20_000_000, 65_536), (300, 256), (1_000, 2_000)] {
            let mut c = TrainConfig::recommended();
            c.batch_size = batch;
            c.learning_rate = TrainConfig::scaled_learning_rate(batch);
            let c = c.with_recommended_weight_decay(interactions);
            let timescale_steps = 1.0 / (c.learning_rate * c.weight_decay);
            let epochs = timescale_steps / c.steps_per_epoch(interactions) as f64;
            assert!((epochs - RECOMMENDED.weight_decay_epochs).abs() < 1e-9, "{interactions}/{batch}: {epochs}");
            c.validate().unwrap();
        }
        assert_eq!(TrainConfig::recommended().weight_decay, 0.0);
    }

    #[test]
    fn parses_names() {
        assert_eq!(Architecture::parse("NeuMF").unwrap(), Architecture::NeuMF);
        assert!(Architecture::parse("bert").unwrap_err().contains("'gmf'"));
        assert_eq!(DeviceChoice::parse("cuda").unwrap(), DeviceChoice::Cuda);
        // The memory bound: 1M users × NeuMF f=1024 (layers 8192…) needs its tables' 4 copies.
        let mut big = TrainConfig::paper_defaults();
        big.spec.factors = 1024;
        big.spec.layers = default_layers(1024);
        let need = big.memory_need(1_000_000, 10_000, 10_000_000);
        let rows = 1_010_000u64;
        assert!(need.tables >= rows * (1024 + 4096) * 16, "{need:?}");
        let err = need.check(64_000_000_000).unwrap_err();
        assert!(err.contains("out of memory") && err.contains("needs at least"), "{err}");
        assert!(TrainConfig::paper_defaults().memory_need(943, 1682, 100_000).check(1_000_000_000).is_ok());
        assert!(DeviceChoice::parse("tpu").is_err());
    }

    #[test]
    fn output_width() {
        let s = ModelSpec { architecture: Architecture::NeuMF, factors: 8, layers: vec![64, 32, 16, 8] };
        assert_eq!(s.output_input_dim(), 16);
        assert_eq!(s.mlp_embedding_dim(), 32);
    }
}
