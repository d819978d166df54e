//! `task = "lowshot"` (`tasks/voc07_lowshot.toml`, `tasks/places205_lowshot.toml`): SVMs
//! trained on k examples per class, over several drawn samples, at every cost; scored on the
//! full test split (protocols.md section 3).
//!
//! Two cost choices are reported side by side: the paper's (the cost with the best mean TEST
//! mAP over the samples, a choice made on the test set) and an honest one (per class by
//! cross-validation on the sample when k >= folds, otherwise one cost per sample chosen by
//! mAP on the training images outside the sample).

use super::voc07_svm::Splits;
use super::{data_spec, RunContext, TaskOutput};
use crate::config;
use crate::data::Dataset;
use crate::linear::lowshot::{draw, one_vs_rest, Draw, Sampling};
use crate::linear::metrics::voc_ap;
use crate::linear::protocol::{
    best_cost, cv_scores, journal_dir, normalised_rows, primal_scores, progress, SvmProtocol,
};
use crate::linear::svm::{Gram, Kernel, Rows};
use crate::linear::sweep::{sweep, Subset};
use crate::report::{Metric, Spread};
use anyhow::{Context, Result};
use ndarray::Array2;
use rayon::prelude::*;
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

/// One (sample, k, class) chain's outcome.
#[derive(Clone, Debug, Serialize)]
struct ChainResult {
    /// Test AP per cost (grid order).
    test_ap: Vec<f64>,
    /// Honest choice inputs: mean CV AP per cost, or AP on the rows outside the sample.
    choice_ap: Vec<f64>,
    /// True when `choice_ap` comes from cross-validation.
    by_cv: bool,
}

/// Runs the low-shot protocol at every tap.
pub fn run(ctx: &RunContext) -> Result<TaskOutput> {
    let doc = &ctx.setup.doc;
    let protocol = SvmProtocol::from_doc(doc)?;
    let cfg: LowShotConfig = config::section(doc, "lowshot")?;
    // The draws are made once, on the whole training split's labels, whatever is extracted.
    let train_spec = data_spec(doc, "train")?;
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
            let test = ctx.setup.features(&data_spec(doc, "test")?, ctx.taps)?;
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
            &cfg,
            &draws,
            (&train_rows, &train_labels),
            (&test_rows, &test_labels),
            &journal,
            tr.tap.name(),
        )?;
        let tap = tr.tap.name();
        let summary = summarise(&protocol, &cfg, &chains, classes.len());
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
        return crate::linear::lowshot::import_fair(Path::new(&cfg.fair_samples), cfg, labels);
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

/// Trains every (sample, k, class) chain over the cost grid.
fn run_chains(
    protocol: &SvmProtocol,
    cfg: &LowShotConfig,
    draws: &[Vec<Draw>],
    (train, train_labels): (&Rows, &Array2<i32>),
    (test, test_labels): (&Rows, &Array2<i32>),
    journal: &Path,
    tap: &str,
) -> Result<Vec<(usize, usize, usize, ChainResult)>> {
    let (order, sorted) = protocol.ascending();
    let params = protocol.params();
    let nc = train_labels.ncols();
    // Small sets: every chain gathers its kernel from the Gram and cross products.
    let small = train.len() <= protocol.gram_max_rows && test.len() <= protocol.gram_max_rows;
    let grams = if small {
        Some((
            Gram::of(train, protocol.gram_precision).context("cannot compute the Gram matrix")?,
            Gram::cross(test, train, protocol.gram_precision)
                .context("cannot compute the test cross products")?,
        ))
    } else {
        None
    };
    let jobs: Vec<(usize, usize, usize)> = (0..draws.len())
        .flat_map(|s| (0..cfg.k.len()).flat_map(move |k| (0..nc).map(move |c| (s, k, c))))
        .collect();
    let per_chain =
        |k: usize| sorted.len() * (1 + usize::from(cfg.k[k] >= protocol.folds) * protocol.folds);
    let units: usize = jobs.iter().map(|&(_, k, _)| per_chain(k)).sum();
    let bar = progress(units, &format!("low-shot {tap}"));
    let tick = || bar.inc(1);
    let all_test: Vec<usize> = (0..test.len()).collect();
    let results = jobs
        .par_iter()
        .map(|&(s, k, c)| {
            let rows = &draws[s][k].rows[c];
            let positive: Vec<bool> = rows.iter().map(|&i| train_labels[[i, c]] > 0).collect();
            let by_cv = cfg.k[k] >= protocol.folds;
            // The training images outside the sample choose the cost only when k is too
            // small for cross-validation.
            let outside: Vec<usize> = if by_cv {
                Vec::new()
            } else {
                let in_sample: std::collections::HashSet<usize> = rows.iter().copied().collect();
                (0..train.len())
                    .filter(|i| !in_sample.contains(i) && train_labels[[*i, c]] != 0)
                    .collect()
            };
            let local: Vec<usize> = (0..rows.len()).collect();
            let compact = grams.as_ref().map(|(g, cross)| {
                (
                    g.gather(rows, rows),
                    cross.gather(&all_test, rows),
                    g.gather(&outside, rows),
                )
            });
            let subset = match &compact {
                Some((g, _, _)) => Subset {
                    kernel: Kernel::Gram(g),
                    index: &local,
                    positive: &positive,
                },
                None => Subset {
                    kernel: Kernel::Primal(train),
                    index: rows,
                    positive: &positive,
                },
            };
            let test_col: Vec<i32> = test_labels.column(c).to_vec();
            let out_col: Vec<i32> = outside.iter().map(|&i| train_labels[[i, c]]).collect();
            let stem = format!("ls_s{s}_k{}_c{c}", cfg.k[k]);
            let points = sweep(
                &subset,
                &sorted,
                &params,
                protocol.warm_start,
                |j| protocol.seed(&[s, cfg.k[k], c], j),
                &journal.join(format!("{stem}.state")),
                |_, sol| {
                    let (test_scores, out_scores) = match &compact {
                        Some((_, cross, outside_cross)) => (
                            sol.decisions(cross),
                            (!by_cv).then(|| sol.decisions(outside_cross)),
                        ),
                        None => (
                            primal_scores(sol, train, test, &all_test),
                            (!by_cv).then(|| primal_scores(sol, train, train, &outside)),
                        ),
                    };
                    let mut v = vec![voc_ap(&test_scores, &test_col)];
                    v.extend(out_scores.map(|o| voc_ap(&o, &out_col)));
                    v
                },
                &tick,
            )?;
            let mut test_ap = vec![0.0; sorted.len()];
            let mut choice_ap = vec![0.0; sorted.len()];
            for (j, p) in points.iter().enumerate() {
                test_ap[order[j]] = p.scores[0];
                if !by_cv {
                    choice_ap[order[j]] = p.scores.get(1).copied().unwrap_or(0.0);
                }
            }
            if by_cv {
                choice_ap =
                    cv_scores(protocol, &subset, &[s, cfg.k[k], c], journal, &stem, &tick)?.0;
            }
            Ok((
                s,
                k,
                c,
                ChainResult {
                    test_ap,
                    choice_ap,
                    by_cv,
                },
            ))
        })
        .collect::<Result<Vec<_>>>()?;
    bar.finish_and_clear();
    Ok(results)
}

/// mAPs per k position over the samples, for both cost choices.
struct Summary {
    paper: Vec<Vec<f64>>,
    paper_costs: Vec<f64>,
    honest: Vec<Vec<f64>>,
}

fn summarise(
    protocol: &SvmProtocol,
    cfg: &LowShotConfig,
    chains: &[(usize, usize, usize, ChainResult)],
    nc: usize,
) -> Summary {
    let samples = chains.iter().map(|c| c.0 + 1).max().unwrap_or(0);
    let costs = protocol.costs.len();
    let mut paper = Vec::new();
    let mut paper_costs = Vec::new();
    let mut honest = Vec::new();
    for k in 0..cfg.k.len() {
        // map[s][cost]: mean test AP over classes.
        let mut map = vec![vec![0.0; costs]; samples];
        let mut fixed = vec![vec![0.0; costs]; samples];
        for (s, _, _, r) in chains.iter().filter(|c| c.1 == k) {
            for j in 0..costs {
                map[*s][j] += 100.0 * r.test_ap[j] / nc as f64;
                fixed[*s][j] += r.choice_ap[j] / nc as f64;
            }
        }
        let mean: Vec<f64> = (0..costs)
            .map(|j| map.iter().map(|m| m[j]).sum::<f64>() / samples as f64)
            .collect();
        let best = best_cost(&mean);
        paper.push(map.iter().map(|m| m[best]).collect());
        paper_costs.push(protocol.costs[best]);
        honest.push(
            (0..samples)
                .map(|s| {
                    let sample_fixed = best_cost(&fixed[s]);
                    chains
                        .iter()
                        .filter(|c| c.0 == s && c.1 == k)
                        .map(|(_, _, _, r)| {
                            let j = if r.by_cv {
                                best_cost(&r.choice_ap)
                            } else {
                                sample_fixed
                            };
                            100.0 * r.test_ap[j] / nc as f64
                        })
                        .sum()
                })
                .collect(),
        );
    }
    Summary {
        paper,
        paper_costs,
        honest,
    }
}
