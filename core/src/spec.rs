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
            other => Err(format!(
                "unknown architecture \"{other}\": use 'gmf', 'mlp' or 'neumf'"
            )),
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
        let gmf = if self.architecture.has_gmf() {
            self.factors
        } else {
            0
        };
        let mlp = if self.architecture.has_mlp() {
            *self.layers.last().unwrap()
        } else {
            0
        };
        gmf + mlp
    }

    pub fn validate(&self) -> Result<(), String> {
        if self.factors == 0 || self.factors > 4096 {
            return Err(format!(
                "factors must be between 1 and 4096, got {}",
                self.factors
            ));
        }
        if self.architecture.has_mlp() {
            if self.layers.len() < 2 {
                return Err(format!(
                    "layers must list at least two widths (the input, 2 × embedding, and one hidden layer), got {:?}",
                    self.layers
                ));
            }
            if let Some(bad) = self.layers.iter().find(|&&w| w == 0 || w > 16384) {
                return Err(format!(
                    "every layer width must be between 1 and 16384, got {bad}"
                ));
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
            other => Err(format!(
                "unknown device \"{other}\": use 'auto', 'cpu' or 'cuda'"
            )),
        }
    }
}

/// Everything `neumf_train` accepts besides the source.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct TrainConfig {
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
}

impl TrainConfig {
    /// The paper's defaults (factors 8, MLP 64-32-16-8, 4 negatives, batch 256, Adam 1e-3, 20 epochs).
    pub fn paper_defaults() -> Self {
        Self {
            spec: ModelSpec {
                architecture: Architecture::NeuMF,
                factors: 8,
                layers: vec![64, 32, 16, 8],
            },
            epochs: 20,
            batch_size: 256,
            learning_rate: 0.001,
            negatives: 4,
            seed: 42,
            device: DeviceChoice::Auto,
            threads: 1,
        }
    }

    pub fn validate(&self) -> Result<(), String> {
        self.spec.validate()?;
        if self.epochs == 0 || self.epochs > 100_000 {
            return Err(format!(
                "epochs must be between 1 and 100000, got {}",
                self.epochs
            ));
        }
        if self.batch_size == 0 || self.batch_size > (1 << 24) {
            return Err(format!(
                "batch_size must be between 1 and 16777216, got {}",
                self.batch_size
            ));
        }
        if !(self.learning_rate.is_finite()
            && self.learning_rate > 0.0
            && self.learning_rate <= 10.0)
        {
            return Err(format!(
                "learning_rate must be in (0, 10], got {}",
                self.learning_rate
            ));
        }
        if self.negatives == 0 || self.negatives > 1000 {
            return Err(format!(
                "negatives (per positive) must be between 1 and 1000, got {}",
                self.negatives
            ));
        }
        if self.threads == 0 || self.threads > 1024 {
            return Err(format!(
                "thread count must be between 1 and 1024, got {}",
                self.threads
            ));
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

    #[test]
    fn rejects_nonsense_with_a_message() {
        let mut c = TrainConfig::paper_defaults();
        c.spec.factors = 0;
        assert!(c.validate().unwrap_err().contains("factors"));
        let mut c = TrainConfig::paper_defaults();
        c.spec.layers = vec![];
        assert!(c.validate().unwrap_err().contains("layers"));
        let mut c = TrainConfig::paper_defaults();
        c.spec.layers = vec![63, 32];
        assert!(c.validate().unwrap_err().contains("even"));
        let mut c = TrainConfig::paper_defaults();
        c.epochs = 0;
        assert!(c.validate().unwrap_err().contains("epochs"));
        let mut c = TrainConfig::paper_defaults();
        c.learning_rate = -1.0;
        assert!(c.validate().unwrap_err().contains("learning_rate"));
        let mut c = TrainConfig::paper_defaults();
        c.negatives = 0;
        assert!(c.validate().unwrap_err().contains("negatives"));
        // GMF ignores the MLP tower entirely.
        let mut c = TrainConfig::paper_defaults();
        c.spec.architecture = Architecture::Gmf;
        c.spec.layers = vec![];
        c.validate().unwrap();
    }

    #[test]
    fn parses_names() {
        assert_eq!(Architecture::parse("NeuMF").unwrap(), Architecture::NeuMF);
        assert!(Architecture::parse("bert").unwrap_err().contains("'gmf'"));
        assert_eq!(DeviceChoice::parse("cuda").unwrap(), DeviceChoice::Cuda);
        assert!(DeviceChoice::parse("tpu").is_err());
    }

    #[test]
    fn output_width() {
        let s = ModelSpec {
            architecture: Architecture::NeuMF,
            factors: 8,
            layers: vec![64, 32, 16, 8],
        };
        assert_eq!(s.output_input_dim(), 16);
        assert_eq!(s.mlp_embedding_dim(), 32);
    }
}
