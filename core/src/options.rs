//! `neumf_train`'s options as SQL passes them (NULL = the recommended default) and their
//! resolution into a [`TrainConfig`]: the one place where defaults are applied and values are
//! checked, before any data is read. Model names are checked here too.

use crate::dataset::Interactions;
use crate::spec::RECOMMENDED;
use crate::spec::{default_layers, Architecture, DeviceChoice, LrSchedule, Precision, Sampling, TrainConfig};
use serde::{Deserialize, Serialize};

/// Model names are at most this many bytes, like PostgreSQL identifiers.
pub const MAX_MODEL_NAME_BYTES: usize = 63;

/// Users with at least two interactions can give one to a validation holdout; automatic
/// validation needs this many such users.
pub const MIN_VALIDATION_USERS: usize = 10;

/// Epoch budget of a warm start when `epochs` is NULL; early stopping on the validation
/// holdout ends it after a few (5–9 on MovieLens-100K: bench/warm_start.sh sweep).
pub const WARM_START_EPOCHS: usize = 20;

/// Why a model name was refused.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum NameError {
    Empty,
    TooLong {
        bytes: usize,
    },
    /// Leading or trailing white space, or a control character: names that print alike but
    /// differ would be different models.
    Unprintable,
}

impl NameError {
    pub fn message(&self, name: &str) -> String {
        match self {
            Self::Empty => "model name is empty".into(),
            Self::TooLong { bytes } => {
                let shown: String = name.chars().take(20).collect();
                format!("model name \"{shown}…\" is too long ({bytes} bytes; at most {MAX_MODEL_NAME_BYTES})")
            }
            Self::Unprintable => format!(
                "model name \"{}\" has leading or trailing white space or a control character",
                name.escape_debug()
            ),
        }
    }
}

/// Whether `source` is written as a (possibly schema-qualified, possibly quoted) relation name
/// rather than a query: a query always has a space, a parenthesis or a comment somewhere that
/// a name cannot have.
pub fn is_qualified_name(source: &str) -> bool {
    let mut rest = source;
    for part in 0.. {
        if part == 3 {
            return false;
        }
        let end = if let Some(quoted) = rest.strip_prefix('"') {
            // "" is an escaped quote inside a quoted identifier.
            let mut i = 0;
            let bytes = quoted.as_bytes();
            loop {
                match bytes.get(i) {
                    None => return false,
                    Some(b'"') if bytes.get(i + 1) == Some(&b'"') => i += 2,
                    // "" alone is no name.
                    Some(b'"') if i == 0 => return false,
                    Some(b'"') => break i + 2,
                    Some(_) => i += 1,
                }
            }
        } else {
            let len = rest
                .char_indices()
                // PostgreSQL takes any non-ASCII character as a letter in an identifier.
                .find(|&(i, c)| {
                    !(c == '_'
                        || c.is_ascii_alphabetic()
                        || !c.is_ascii()
                        || (i > 0 && (c.is_ascii_digit() || c == '$')))
                })
                .map_or(rest.len(), |(i, _)| i);
            if len == 0 {
                return false;
            }
            len
        };
        rest = &rest[end..];
        match rest.strip_prefix('.') {
            Some(next) => rest = next,
            None => return rest.is_empty(),
        }
    }
    unreachable!()
}

/// Checks a name for a new model (existing names are only looked up).
pub fn check_model_name(name: &str) -> Result<(), NameError> {
    if name.is_empty() {
        return Err(NameError::Empty);
    }
    if name.len() > MAX_MODEL_NAME_BYTES {
        return Err(NameError::TooLong { bytes: name.len() });
    }
    if name.trim() != name || name.chars().any(char::is_control) {
        return Err(NameError::Unprintable);
    }
    Ok(())
}

/// The options of `neumf_train`, each None when the caller left it NULL. A background job
/// keeps them as JSON (serde: `serde_json::to_value`, and back borrowing from the `Value`).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct TrainOptions<'a> {
    #[serde(borrow)]
    pub architecture: Option<&'a str>,
    pub factors: Option<i32>,
    pub layers: Option<Vec<i32>>,
    pub epochs: Option<i32>,
    pub batch_size: Option<i32>,
    pub learning_rate: Option<f64>,
    pub negatives: Option<i32>,
    pub min_rating: Option<f64>,
    pub seed: Option<i64>,
    #[serde(borrow)]
    pub device: Option<&'a str>,
    #[serde(borrow)]
    pub sampling: Option<&'a str>,
    pub popularity_exponent: Option<f64>,
    pub hard_pool: Option<i32>,
    pub hard_share: Option<f64>,
    pub weight_decay: Option<f64>,
    pub dropout: Option<f64>,
    #[serde(borrow)]
    pub lr_schedule: Option<&'a str>,
    pub validation: Option<bool>,
    pub patience: Option<i32>,
    pub pretrain: Option<bool>,
    pub refit: Option<bool>,
    pub recency_weight: Option<f64>,
    pub recency_half_life: Option<f64>,
    pub mixed_precision: Option<bool>,
    /// Make the new version the served one (not part of the configuration: it is about the
    /// stored result).
    pub activate: Option<bool>,
    /// Start from the active version's weights (`warm::warm_start_weights`).
    pub warm_start: Option<bool>,
    /// libtorch CPU threads (the `neumf.train_threads` setting).
    pub threads: usize,
}

/// A refused option: what is wrong, quoting the value, and what to do instead.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OptionError {
    pub message: String,
    pub hint: String,
}

impl From<String> for OptionError {
    /// The core's messages put their remedy, if any, after "; use " or ": use "; it becomes
    /// the hint. Without one, the hint points to the default.
    fn from(text: String) -> Self {
        for separator in ["; use ", ": use "] {
            if let Some((message, remedy)) = text.split_once(separator) {
                return Self { message: message.to_string(), hint: format!("Use {remedy}.") };
            }
        }
        Self {
            message: text,
            hint: "Leave the option NULL for its recommended default (README: neumf_train options).".into(),
        }
    }
}

impl std::fmt::Display for OptionError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{} ({})", self.message, self.hint)
    }
}

/// A count from SQL: negative values cannot be counts; the range is [`TrainConfig::validate`]'s.
fn count(name: &str, value: i32) -> Result<usize, String> {
    usize::try_from(value).map_err(|_| format!("{name} must be positive, got {value}"))
}

impl TrainOptions<'_> {
    pub fn activate(&self) -> bool {
        self.activate.unwrap_or(true)
    }

    /// Applies the recommended defaults to what was left out and validates the result. The
    /// weight decay and validation still depend on the data: see [`Self::for_data`].
    pub fn resolve(&self) -> Result<TrainConfig, OptionError> {
        let mut cfg = TrainConfig::recommended();
        if let Some(name) = self.architecture {
            cfg.spec.architecture = Architecture::parse(name)?;
        }
        if let Some(f) = self.factors {
            cfg.spec.factors = count("factors", f)?;
            cfg.spec.layers = default_layers(cfg.spec.factors);
        }
        if let Some(layers) = &self.layers {
            cfg.spec.layers = layers.iter().map(|&w| count("every layer width", w)).collect::<Result<_, _>>()?;
        }
        if let Some(e) = self.epochs {
            cfg.epochs = count("epochs", e)?;
        }
        if let Some(b) = self.batch_size {
            cfg.batch_size = count("batch_size", b)?;
        }
        cfg.learning_rate = self.learning_rate.unwrap_or_else(|| TrainConfig::scaled_learning_rate(cfg.batch_size));
        if let Some(n) = self.negatives {
            cfg.negatives = count("negatives", n)?;
        }
        cfg.min_rating = self.min_rating;
        if let Some(seed) = self.seed {
            cfg.seed = seed as u64;
        }
        if let Some(device) = self.device {
            cfg.device = DeviceChoice::parse(device)?;
        }
        cfg.threads = self.threads;
        // A sampler's parameters are checked whenever they are given, even when another
        // sampler is chosen and they go unused (0.1.0's SQL passes them all, as defaults).
        let exponent = self.popularity_exponent.unwrap_or(RECOMMENDED.popularity_exponent);
        let pool = match self.hard_pool {
            Some(p) => count("hard_pool", p)?,
            None => RECOMMENDED.hard_pool,
        };
        let share = self.hard_share.unwrap_or(RECOMMENDED.hard_share);
        if let Some(name) = self.sampling {
            cfg.sampling = Sampling::parse(name, exponent, pool, share)?;
        }
        // The recommended decay needs the data's size (for_data); 0 stands in until then.
        cfg.weight_decay = self.weight_decay.unwrap_or(0.0);
        cfg.dropout = self.dropout.unwrap_or(cfg.dropout);
        if let Some(s) = self.lr_schedule {
            cfg.lr_schedule = LrSchedule::parse(s)?;
        }
        if let Some(p) = self.patience {
            cfg.patience = usize::try_from(p)
                .map_err(|_| format!("patience must be 0 (never stop early) or positive, got {p}"))?;
        }
        // Pretraining is NeuMF's; the other architectures simply do not default to it.
        cfg.pretrain = self.pretrain.unwrap_or(cfg.pretrain && cfg.spec.architecture == Architecture::NeuMF);
        if self.warm_start == Some(true) {
            if self.pretrain == Some(true) {
                return Err(OptionError::from(
                    "pretrain => true and warm_start => true exclude each other (a warm start begins from trained weights); use pretrain => NULL".to_string(),
                ));
            }
            cfg.pretrain = false;
            if self.epochs.is_none() {
                cfg.epochs = WARM_START_EPOCHS;
            }
        }
        cfg.refit = self.refit.unwrap_or(cfg.refit);
        cfg.recency_weight = self.recency_weight.unwrap_or(cfg.recency_weight);
        cfg.recency_half_life = self.recency_half_life.unwrap_or(cfg.recency_half_life);
        cfg.precision = if self.mixed_precision == Some(true) { Precision::Bf16 } else { Precision::Fp32 };
        cfg.validation = self.validation;
        cfg.validate()?;
        for sampling in [Sampling::Popularity { exponent }, Sampling::Hard { pool, share }] {
            TrainConfig { sampling, ..cfg.clone() }.validate()?;
        }
        Ok(cfg)
    }

    /// Completes `cfg` (from [`Self::resolve`]) for the data it will train on: the recommended
    /// weight decay, whether to validate, no recency weighting without timestamps; and checks
    /// what only the data can tell.
    pub fn for_data(&self, mut cfg: TrainConfig, data: &Interactions) -> Result<TrainConfig, OptionError> {
        // A warm start's few epochs fine-tune trained weights: decay would only shrink them
        // (validated: bench/warm_start.sh sweep), so it defaults to none.
        if self.weight_decay.is_none() && self.warm_start != Some(true) {
            // A timescale in epochs, so it needs the data's size; always valid by construction
            // (learning_rate × weight_decay = 1 / (5 × steps per epoch) ≤ 0.2).
            cfg = cfg.with_recommended_weight_decay(data.len());
        }
        let eligible = (0..data.n_users()).filter(|&u| data.user_ptr[u + 1] - data.user_ptr[u] >= 2).count();
        cfg.validation = Some(match self.validation {
            Some(false) => false,
            Some(true) if eligible == 0 => {
                return Err(OptionError::from(
                    "validation => true needs users with at least two interactions and this source has none; use validation => NULL (automatic) or false"
                        .to_string(),
                ))
            }
            Some(true) => true,
            None => eligible >= MIN_VALIDATION_USERS,
        });
        if data.ts.is_none() {
            cfg.recency_weight = 0.0;
        }
        cfg.check_fits(data.len())?;
        cfg.validate()?;
        Ok(cfg)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn err(o: TrainOptions<'_>) -> String {
        o.resolve().expect_err("should be refused").to_string()
    }

    #[test]
    fn left_out_options_take_the_recommended_defaults() {
        let cfg = TrainOptions { threads: 1, ..Default::default() }.resolve().unwrap();
        let mut expected = TrainConfig::recommended();
        expected.threads = 1;
        assert_eq!(cfg, expected);
    }

    #[test]
    fn given_options_are_applied_and_checked_once() {
        let o = TrainOptions {
            architecture: Some("gmf"),
            factors: Some(4),
            batch_size: Some(1024),
            sampling: Some("hard"),
            hard_pool: Some(16),
            threads: 2,
            ..Default::default()
        };
        let cfg = o.resolve().unwrap();
        assert_eq!(cfg.spec.layers, default_layers(4));
        assert!(!cfg.pretrain, "only NeuMF pretrains by default");
        assert_eq!(cfg.learning_rate, TrainConfig::scaled_learning_rate(1024));
        assert_eq!(cfg.sampling, Sampling::Hard { pool: 16, share: RECOMMENDED.hard_share });
        assert!(err(TrainOptions { factors: Some(-3), threads: 1, ..Default::default() })
            .contains("factors must be positive, got -3"));
        assert!(err(TrainOptions { factors: Some(0), threads: 1, ..Default::default() })
            .contains("factors must be between 1 and 4096, got 0"));
        assert!(
            err(TrainOptions { patience: Some(-1), threads: 1, ..Default::default() }).contains("patience must be 0")
        );
        assert!(
            err(TrainOptions { min_rating: Some(f64::NAN), threads: 1, ..Default::default() }).contains("min_rating")
        );
        let e = TrainOptions { device: Some("tpu"), threads: 1, ..Default::default() }.resolve().unwrap_err();
        assert_eq!(e.message, "unknown device \"tpu\"");
        assert_eq!(e.hint, "Use 'auto', 'cpu' or 'cuda'.");
    }

    #[test]
    fn the_data_decides_weight_decay_validation_and_fit() {
        // 20 users with 3 items each, no timestamps.
        let users: Vec<u32> = (0..60).map(|i| i / 3).collect();
        let items: Vec<u32> = (0..60).map(|i| i % 7).collect();
        let data = Interactions::from_pairs(20, 7, &users, &items, None);
        let o = TrainOptions { threads: 1, batch_size: Some(16), ..Default::default() };
        let cfg = o.for_data(o.resolve().unwrap(), &data).unwrap();
        assert_eq!(cfg.validation, Some(true));
        assert!(cfg.weight_decay > 0.0);
        assert_eq!(cfg.recency_weight, 0.0, "no timestamps, no recency weighting");
        let o = TrainOptions { threads: 1, batch_size: Some(1_000_000), ..Default::default() };
        let e = o.for_data(o.resolve().unwrap(), &data).unwrap_err();
        assert!(e.message.contains("larger than an epoch") && e.hint.starts_with("Use a batch_size of at most"), "{e}");
        let lone = Interactions::from_pairs(1, 1, &[0], &[0], None);
        let o = TrainOptions { threads: 1, batch_size: Some(1), validation: Some(true), ..Default::default() };
        assert!(o.for_data(o.resolve().unwrap(), &lone).unwrap_err().message.contains("validation => true"));
    }

    #[test]
    fn names_and_queries_are_told_apart() {
        for name in
            ["small", "public.small", "\"My Table\"", "db.\"s\".t", "événements", "t_1$x", "\"a\"\"b\"", "prix€"]
        {
            assert!(is_qualified_name(name), "{name}");
        }
        for query in [
            "SELECT user_id, item_id FROM small",
            "WITH x AS (SELECT 1) SELECT * FROM x",
            "-- recent\nSELECT * FROM small",
            "/* c */ SELECT 1",
            "(SELECT 1)",
            "TABLE small",
            "",
            "a.b.c.d",
            "1abc",
            "\"unterminated",
            "small;",
        ] {
            assert!(!is_qualified_name(query), "{query}");
        }
    }

    #[test]
    fn model_names_are_bounded_and_printable() {
        assert_eq!(check_model_name("movies"), Ok(()));
        assert_eq!(check_model_name("événements ☃"), Ok(()));
        assert_eq!(check_model_name(&"a".repeat(63)), Ok(()));
        assert_eq!(check_model_name(""), Err(NameError::Empty));
        assert_eq!(check_model_name(&"a".repeat(64)), Err(NameError::TooLong { bytes: 64 }));
        assert_eq!(check_model_name(" x"), Err(NameError::Unprintable));
        assert_eq!(check_model_name("x\ny"), Err(NameError::Unprintable));
        assert!(NameError::TooLong { bytes: 100_000 }.message(&"n".repeat(100_000)).len() < 100);
    }

    /// A background job keeps its options as JSON and reads them back borrowing from it.
    #[test]
    fn options_round_trip_through_json() {
        let o = TrainOptions {
            architecture: Some("gmf"),
            layers: Some(vec![8, 4]),
            learning_rate: Some(0.01),
            sampling: Some("pop\"ular"),
            warm_start: Some(true),
            threads: 3,
            ..Default::default()
        };
        let json = serde_json::to_value(&o).unwrap();
        let back = TrainOptions::deserialize(&json).unwrap();
        assert_eq!(back, o);
    }

    #[test]
    fn a_warm_start_skips_pretraining_and_weight_decay() {
        let users: Vec<u32> = (0..60).map(|i| i / 3).collect();
        let items: Vec<u32> = (0..60).map(|i| i % 7).collect();
        let data = Interactions::from_pairs(20, 7, &users, &items, None);
        let o = TrainOptions { warm_start: Some(true), batch_size: Some(16), threads: 1, ..Default::default() };
        let cfg = o.for_data(o.resolve().unwrap(), &data).unwrap();
        assert_eq!(cfg.epochs, WARM_START_EPOCHS);
        assert!(!cfg.pretrain);
        assert_eq!(cfg.weight_decay, 0.0);
        assert_eq!(cfg.validation, Some(true), "early stopping still chooses the epochs");
        let given = TrainOptions { epochs: Some(3), weight_decay: Some(0.01), ..o };
        let cfg = given.for_data(given.resolve().unwrap(), &data).unwrap();
        assert_eq!((cfg.epochs, cfg.weight_decay), (3, 0.01));
    }
}
