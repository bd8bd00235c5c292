//! Trains on a leave-one-out split without PostgreSQL, for benchmarks and for choosing
//! defaults: `loo PREFIX [--key value …]` reads PREFIX.train.tsv (user, item, rating, ts) and
//! PREFIX.test.negative (user, test item, 99 negatives) and prints one JSON line.
//!
//!   --validate true   hold out each user's latest training interaction (+99 fixed negatives)
//!                     for early stopping / model selection; the test set is only scored once,
//!                     at the end, with the serving kernel
//!   --trace-test true score the test set after every epoch (time-to-quality; no selection)
//! Hyper-parameters: --arch --factors --layers 64,32,16,8 --epochs --batch --lr --neg
//!   --sampling uniform|popularity|hard --exponent --pool --share --wd (number or auto) --dropout
//!   --schedule constant|cosine --patience --pretrain --threads --seed
use neumf_core::codec::ModelArtifact;
use neumf_core::dataset::{Interactions, InteractionsBuilder};
use neumf_core::eval::{self, PairScorer};
use neumf_core::holdout::{leave_one_out, Holdout};
use neumf_core::ids::{IdKind, IdMap, IdRef};
use neumf_core::infer::ScoringModel;
use neumf_core::spec::{Architecture, DeviceChoice, LrSchedule, Precision, Sampling, TrainConfig};
use neumf_core::train::{train, train_and_refit, EpochReport, TrainObserver};
use std::collections::HashMap;
use std::time::Instant;

struct Kernel<'a>(&'a ScoringModel);
impl PairScorer for Kernel<'_> {
    fn score_pairs(&mut self, users: &[u32], items: &[u32]) -> anyhow::Result<Vec<f32>> {
        Ok(users.iter().zip(items).map(|(&u, &i)| self.0.user_context(u).logit(i)).collect())
    }
}

struct Progress {
    verbose: bool,
    started: Instant,
    train_seconds: f64,
    trace: Vec<(usize, f64, f64, f64)>,
}
impl TrainObserver for Progress {
    fn on_epoch(&mut self, r: &EpochReport) -> anyhow::Result<()> {
        self.train_seconds += r.seconds;
        if let Some(v) = r.validation {
            self.trace.push((r.epoch, self.train_seconds, v.hr, v.ndcg));
        }
        if self.verbose {
            eprintln!(
                "{} {}/{} loss {:.4} lr {:.5} {:.0} samples/s val {:?} (wall {:.1}s)",
                r.phase,
                r.epoch,
                r.epochs,
                r.loss,
                r.learning_rate,
                r.samples_per_second(),
                r.validation.map(|v| (v.hr, v.ndcg)),
                self.started.elapsed().as_secs_f64()
            );
        }
        Ok(())
    }
}

fn main() -> anyhow::Result<()> {
    let args: Vec<String> = std::env::args().collect();
    let prefix = args.get(1).cloned().ok_or_else(|| anyhow::anyhow!("usage: loo PREFIX [--key value]…"))?;
    let opts: HashMap<String, String> = args[2..]
        .chunks(2)
        .map(|kv| (kv[0].trim_start_matches("--").to_string(), kv.get(1).cloned().unwrap_or_default()))
        .collect();
    let get = |k: &str, d: &str| opts.get(k).cloned().unwrap_or_else(|| d.to_string());
    let num = |k: &str, d: f64| get(k, &d.to_string()).parse::<f64>().unwrap();

    let mut cfg = TrainConfig::paper_defaults();
    cfg.spec.architecture = Architecture::parse(&get("arch", "neumf")).map_err(anyhow::Error::msg)?;
    cfg.spec.factors = num("factors", 8.0) as usize;
    let f = cfg.spec.factors;
    let default_layers = format!("{},{},{},{}", 8 * f, 4 * f, 2 * f, f);
    cfg.spec.layers = get("layers", &default_layers).split(',').map(|x| x.parse().unwrap()).collect();
    cfg.epochs = num("epochs", 20.0) as usize;
    cfg.batch_size = num("batch", 256.0) as usize;
    cfg.learning_rate = num("lr", 0.001);
    cfg.negatives = num("neg", 4.0) as usize;
    cfg.sampling = Sampling::parse(
        &get("sampling", "uniform"),
        num("exponent", 0.75),
        num("pool", 8.0) as usize,
        num("share", 0.5),
    )
    .map_err(anyhow::Error::msg)?;
    // "--wd auto": the recommended decay for this data (a timescale of epochs), set below.
    let wd_auto = get("wd", "0") == "auto";
    cfg.weight_decay = if wd_auto { 0.0 } else { num("wd", 0.0) };
    cfg.dropout = num("dropout", 0.0);
    cfg.lr_schedule = LrSchedule::parse(&get("schedule", "constant")).map_err(anyhow::Error::msg)?;
    cfg.patience = num("patience", 0.0) as usize;
    cfg.pretrain = get("pretrain", "false") == "true";
    cfg.finetune_lr_factor = num("ft", 1.0);
    cfg.recency_weight = num("recency", 0.0);
    cfg.recency_half_life = num("half-life", 5.0);
    cfg.precision = Precision::parse(&get("precision", "fp32")).map_err(anyhow::Error::msg)?;
    cfg.threads = num("threads", 1.0) as usize;
    cfg.seed = num("seed", 42.0) as u64;
    cfg.device = DeviceChoice::parse(&get("device", "cpu")).map_err(anyhow::Error::msg)?;

    // Items from the test file get ids too (as in the reference), so every test candidate has
    // an embedding; they are trained only as negatives.
    let mut b = InteractionsBuilder::new(IdMap::new(IdKind::BigInt), IdMap::new(IdKind::BigInt));
    let train_text = std::fs::read_to_string(format!("{prefix}.train.tsv"))?;
    let neg_text = std::fs::read_to_string(format!("{prefix}.test.negative"))?;
    let mut test_rows = Vec::new();
    for line in neg_text.lines() {
        let mut parts = line.split('\t');
        let u: i64 = parts.next().unwrap().parse()?;
        let i: i64 = parts.next().unwrap().parse()?;
        let negs: Vec<i64> = parts.next().unwrap().split(',').map(|x| x.parse().unwrap()).collect();
        test_rows.push((u, i, negs));
    }
    for line in train_text.lines() {
        let v: Vec<f64> = line.split('\t').map(|x| x.parse().unwrap()).collect();
        let u = b.users.intern_int(v[0] as i64);
        let i = b.items.intern_int(v[1] as i64);
        b.push_at(u, i, v[3]);
    }
    for (u, i, negs) in &test_rows {
        b.users.intern_int(*u);
        b.items.intern_int(*i);
        for &n in negs {
            b.items.intern_int(n);
        }
    }
    let full: Interactions = b.finish();
    if wd_auto {
        cfg = cfg.with_recommended_weight_decay(full.len());
    }
    let (train_data, holdout) = if get("validate", "false") == "true" {
        let (t, h) = leave_one_out(&full, 99, num("holdout-seed", cfg.seed as f64) as u64);
        (t, Some(h))
    } else {
        (full.clone(), None)
    };
    let test = {
        let mut h = Holdout { per_user: 100, ..Default::default() };
        for (u, i, negs) in &test_rows {
            let u = full.user_ids.get(IdRef::Int(*u)).unwrap();
            h.users.push(u);
            h.items.push(full.item_ids.get(IdRef::Int(*i)).unwrap());
            h.candidates.push(*h.items.last().unwrap());
            h.candidates.extend(negs.iter().map(|&n| full.item_ids.get(IdRef::Int(n)).unwrap()));
        }
        h
    };
    let trace_test = get("trace-test", "false") == "true";
    let eval_holdout = if trace_test { Some(&test) } else { holdout.as_ref() };

    let mut progress = Progress {
        verbose: get("verbose", "false") == "true",
        started: Instant::now(),
        train_seconds: 0.0,
        trace: vec![],
    };
    cfg.refit = get("refit", "false") == "true";
    let out = match &holdout {
        Some(h) if cfg.refit && !trace_test => train_and_refit(&full, &train_data, h, &cfg, &mut progress)?,
        _ => train(&train_data, eval_holdout, &cfg, &mut progress)?,
    };
    let art = ModelArtifact::new(cfg.spec.clone(), out.weights, &full);
    let model = ScoringModel::from_artifact(art)?;
    let test_metrics = eval::sampled(&mut Kernel(&model), &test, 10)?;
    let trace: Vec<String> =
        progress.trace.iter().map(|(e, s, hr, nd)| format!("[{e},{s:.2},{hr:.4},{nd:.4}]")).collect();
    println!(
        "{{\"hr10\": {:.4}, \"ndcg10\": {:.4}, \"train_s\": {:.2}, \"samples_per_s\": {:.0}, \"best_epoch\": {}, \"epochs_run\": {}, \"validation\": {}, \"trace\": [{}], \"config\": {}}}",
        test_metrics.hr,
        test_metrics.ndcg,
        progress.train_seconds,
        out.summary.samples as f64 / progress.train_seconds.max(1e-9),
        out.summary.best_epoch,
        out.summary.epochs.len(),
        serde_json::to_string(&out.summary.validation)?,
        trace.join(","),
        serde_json::to_string(&cfg)?
    );
    Ok(())
}
