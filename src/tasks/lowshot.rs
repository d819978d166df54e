//! `task = "lowshot"` (`tasks/voc07_lowshot.toml`, `tasks/places205_lowshot.toml`): SVMs
//! trained on k examples per class, over several drawn samples, at every cost; scored on the
//! full test split (protocols.md section 3).
//!
//! Two cost choices are reported side by side: the paper's (the cost with the best mean TEST
//! mAP over the samples, a choice made on the test set) and an honest one (per class by
//! cross-validation on the sample when k >= folds, otherwise one cost per sample chosen by
//! mAP on the training images outside the sample).

use super::{RunContext, Splits, TaskOutput};
use crate::config;
use crate::data::Dataset;
use crate::linear::chains::{run_chains, summarise};
use crate::linear::lowshot::{draw, import_fair, one_vs_rest, Draw, Sampling};
use crate::linear::protocol::{journal_dir, normalised_rows, SvmProtocol};
use crate::report::{Metric, Spread};
use anyhow::{Context, Result};
use ndarray::Array2;
use serde::{Deserialize, Serialize};
use serde_json::json;
use std::collections::HashMap;
use std::path::Path;

/// The `[lowshot]` section of a task file.
#[derive(Clone, Debug, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct LowShotConfig {
    /// Examples per class.
    pub k: Vec<usize>,
    /// One recorded seed per sample (the number of samples is their count).
    pub seeds: Vec<u64>,
    /// How a training set is drawn.
    pub sampling: Sampling,
    /// Negatives drawn per positive (`positives` sampling).
    pub negatives_per_positive: usize,
    /// A folder of FAIR's fixed draws `train_targets_sample{s}_k{k}.npy` to use instead of
    /// drawing (empty: draw).
    #[serde(default)]
    pub fair_samples: String,
    /// Which training images go through the trunk: `all` of the split (FAIR's VOC07 way), or
    /// only those some draw uses (FAIR's Places205 way, which extracts the sampled lists).
    pub extract: Extract,
}

/// Which training images a low-shot run extracts.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Extract {
    /// The whole training split.
    All,
    /// The images of the draws only.
    Drawn,
}

/// The sections this task reads besides the shared ones (`[svm]`: the solver and the grid).
pub const SECTIONS: &[&str] = &["lowshot", "svm"];

/// Runs the low-shot protocol at every tap.
pub fn run(ctx: &RunContext) -> Result<TaskOutput> {
    let doc = &ctx.setup.doc;
    let protocol = SvmProtocol::from_doc(doc)?;
    let cfg: LowShotConfig = config::section(doc, "lowshot")?;
    // The draws are made once, on the whole training split's labels, whatever is extracted.
    let data = ctx.setup.data();
    let train_spec = data.spec("train")?;
    let full = ctx.setup.dataset(&train_spec)?;
    let classes = full.classes.clone();
    let full_labels = one_vs_rest(dataset_targets(&full)?.view(), classes.len());
    let full_draws = draws(&cfg, &full_labels, &classes)?;
    let splits = match cfg.extract {
        Extract::All => Splits::load(ctx)?,
        Extract::Drawn => {
            let mut used = vec![false; full.samples.len()];
            full_draws
                .iter()
                .flatten()
                .flat_map(|d| d.rows.iter().flatten())
                .for_each(|&i| used[i] = true);
            let subset = Dataset {
                spec: format!("{train_spec} (low-shot draws)"),
                samples: (0..used.len())
                    .filter(|&i| used[i])
                    .map(|i| full.samples[i].clone())
                    .collect(),
                objects: None,
                classes: classes.clone(),
            };
            let entries = ctx.setup.entries(&subset, ctx.taps)?;
            let test = ctx.setup.features(&data.spec("test")?, ctx.taps)?;
            Splits {
                train: (subset, entries),
                test,
            }
        }
    };
    let mut out = TaskOutput {
        cache: splits.cache_refs(),
        ..Default::default()
    };
    let mut taps = Vec::new();
    for (tr, te) in splits.train.1.iter().zip(&splits.test.1) {
        let store = &ctx.setup.store;
        let (train, test) = (store.read(&tr.key)?, store.read(&te.key)?);
        let train_labels = one_vs_rest(train.targets.view(), classes.len());
        let test_labels = one_vs_rest(test.targets.view(), classes.len());
        let draws = remap(&full_draws, &full, &train.ids);
        let train_rows = normalised_rows(&train.features, protocol.norm_eps)?;
        let test_rows = normalised_rows(&test.features, protocol.norm_eps)?;
        let journal = journal_dir(
            store.root(),
            &[
                tr.key.digest(),
                te.key.digest(),
                classes.join(","),
                serde_json::to_string(&cfg)?,
            ],
            &protocol,
        )?;
        std::fs::create_dir_all(&journal)?;
        let chains = run_chains(
            &protocol,
            &cfg.k,
            &draws,
            (&train_rows, &train_labels),
            (&test_rows, &test_labels),
            &journal,
            tr.tap.name(),
        )?;
        let tap = tr.tap.name();
        let summary = summarise(&protocol, &cfg.k, &chains, classes.len());
        for (variant, per_k) in [
            ("paper-choice", &summary.paper),
            ("honest", &summary.honest),
        ] {
            for (&k, maps) in cfg.k.iter().zip(per_k) {
                let (mean, spread) = Spread::of(maps).context("no samples")?;
                out.metrics.push(Metric {
                    tap: tap.to_string(),
                    name: "mAP".into(),
                    value: mean,
                    k: Some(k),
                    spread: Some(spread),
                    variant: Some(variant.into()),
                });
            }
        }
        taps.push(json!({
            "tap": tap,
            "journal": journal,
            "paper_choice_costs": summary.paper_costs,
            "paper_choice_map": summary.paper,
            "honest_map": summary.honest,
            "chains": chains.iter().map(|(s, k, c, r)| json!({
                "sample": s, "k": cfg.k[*k], "class": classes[*c], "test_ap": r.test_ap,
                "choice_ap": r.choice_ap, "choice_by_cv": r.by_cv,
            })).collect::<Vec<_>>(),
        }));
    }
    out.details = json!({ "protocol": protocol, "lowshot": cfg, "taps": taps });
    Ok(out)
}

/// The targets of a dataset as a matrix (`[class]` rows for single-label sets).
fn dataset_targets(d: &Dataset) -> Result<Array2<i32>> {
    let width = d.samples.first().map_or(1, |s| s.target.len());
    let flat: Vec<i32> = d
        .samples
        .iter()
        .flat_map(|s| s.target.iter().copied())
        .collect();
    Array2::from_shape_vec((d.samples.len(), width), flat)
        .with_context(|| format!("{}: images carry targets of different lengths", d.spec))
}

/// Draws over the rows of `full` as rows of an entry listing `ids` (a subset of `full`, or
/// `full` without the images skipped as unreadable); images the entry lacks are dropped.
fn remap(draws: &[Vec<Draw>], full: &Dataset, ids: &[String]) -> Vec<Vec<Draw>> {
    let position: HashMap<&str, usize> = ids
        .iter()
        .enumerate()
        .map(|(i, id)| (id.as_str(), i))
        .collect();
    let at: Vec<Option<usize>> = full
        .samples
        .iter()
        .map(|s| position.get(s.id.as_str()).copied())
        .collect();
    draws
        .iter()
        .map(|per_k| {
            per_k
                .iter()
                .map(|d| Draw {
                    rows: d
                        .rows
                        .iter()
                        .map(|rows| rows.iter().filter_map(|&i| at[i]).collect())
                        .collect(),
                })
                .collect()
        })
        .collect()
}

/// The draws per (sample, k position).
fn draws(cfg: &LowShotConfig, labels: &Array2<i32>, classes: &[String]) -> Result<Vec<Vec<Draw>>> {
    if !cfg.fair_samples.is_empty() {
        return import_fair(
            Path::new(&cfg.fair_samples),
            cfg.seeds.len(),
            &cfg.k,
            labels,
        );
    }
    cfg.seeds
        .iter()
        .map(|&seed| {
            cfg.k
                .iter()
                .map(|&k| {
                    draw(
                        labels.view(),
                        cfg.sampling,
                        k,
                        cfg.negatives_per_positive,
                        seed,
                        classes,
                    )
                })
                .collect()
        })
        .collect()
}
