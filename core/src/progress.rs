//! What training reports: per-epoch progress and the final summary. Plain data (serde), so the
//! trainer library can hand it across its C ABI as JSON.

use crate::eval::RankingMetrics;
use serde::{Deserialize, Serialize};

/// Progress after one epoch.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct EpochReport {
    /// "gmf" / "mlp" while pretraining, "… refit" while refitting, else the architecture.
    pub phase: String,
    pub epoch: usize,
    pub epochs: usize,
    /// Mean BCE over the epoch's samples.
    pub loss: f64,
    pub samples: usize,
    pub seconds: f64,
    pub learning_rate: f64,
    /// Sampled HR@K / NDCG@K on the validation holdout, when there is one.
    pub validation: Option<RankingMetrics>,
}

impl EpochReport {
    pub fn samples_per_second(&self) -> f64 {
        self.samples as f64 / self.seconds.max(1e-9)
    }
}

/// Everything about a finished training but the weights.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct TrainSummary {
    pub device: String,
    pub final_loss: f64,
    /// Wall time of the training epochs (and validation), all phases.
    pub seconds: f64,
    /// Training samples processed, all phases.
    pub samples: usize,
    pub epochs: Vec<EpochReport>,
    /// Epoch (of the final phase) whose weights were kept.
    pub best_epoch: usize,
    /// Validation metrics of the kept weights: sampled and full-catalogue.
    pub validation: Option<RankingMetrics>,
    /// Users in the validation holdout (0 without one), and whether it went by timestamp.
    pub holdout_users: usize,
    pub holdout_by_ts: bool,
    pub refit: bool,
}

impl TrainSummary {
    pub fn samples_per_second(&self) -> f64 {
        self.samples as f64 / self.seconds.max(1e-9)
    }
}
