//! Low-shot SVM chains (protocols.md section 3): every (sample, k, class) trained over the
//! cost grid on its drawn rows and scored on the full test split, and their summary under the
//! two cost choices (the paper's, made on the test set, and an honest one, by
//! cross-validation on the sample when k >= folds, else on the training rows outside it).

use super::lowshot::Draw;
use super::protocol::{
    best_cost, cv_scores, lock_journal, primal_scores, trainings_bar, SvmProtocol,
};
use super::svm::{Gram, Kernel, Rows};
use super::sweep::{sweep, Subset};
use crate::metrics::voc_ap;
use anyhow::{Context, Result};
use ndarray::Array2;
use rayon::prelude::*;
use serde::Serialize;
use std::path::Path;

/// One (sample, k, class) chain's outcome.
#[derive(Clone, Debug, Serialize)]
pub struct ChainResult {
    /// Test AP per cost (grid order).
    pub test_ap: Vec<f64>,
    /// Honest choice inputs: mean CV AP per cost, or AP on the rows outside the sample.
    pub choice_ap: Vec<f64>,
    /// True when `choice_ap` comes from cross-validation.
    pub by_cv: bool,
}

/// Trains every (sample, k, class) chain over the cost grid.
pub fn run_chains(
    protocol: &SvmProtocol,
    ks: &[usize],
    draws: &[Vec<Draw>],
    (train, train_labels): (&Rows, &Array2<i32>),
    (test, test_labels): (&Rows, &Array2<i32>),
    journal: &Path,
    tap: &str,
) -> Result<Vec<(usize, usize, usize, ChainResult)>> {
    let _lock = lock_journal(journal)?;
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
        .flat_map(|s| (0..ks.len()).flat_map(move |k| (0..nc).map(move |c| (s, k, c))))
        .collect();
    let per_chain =
        |k: usize| sorted.len() * (1 + usize::from(ks[k] >= protocol.folds) * protocol.folds);
    let units: usize = jobs.iter().map(|&(_, k, _)| per_chain(k)).sum();
    let bar = trainings_bar(units, &format!("low-shot {tap}"));
    let tick = || bar.inc(1);
    let all_test: Vec<usize> = (0..test.len()).collect();
    let results = jobs
        .par_iter()
        .map(|&(s, k, c)| {
            let rows = &draws[s][k].rows[c];
            let positive: Vec<bool> = rows.iter().map(|&i| train_labels[[i, c]] > 0).collect();
            let by_cv = ks[k] >= protocol.folds;
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
            let stem = format!("ls_s{s}_k{}_c{c}", ks[k]);
            let points = sweep(
                &subset,
                &sorted,
                &params,
                protocol.warm_start,
                |j| protocol.seed(&[s, ks[k], c], j),
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
                choice_ap = cv_scores(protocol, &subset, &[s, ks[k], c], journal, &stem, &tick)?.0;
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
pub struct Summary {
    /// The paper's choice: per k position, each sample's mAP (percent) at the cost with the
    /// best mean test mAP over the samples.
    pub paper: Vec<Vec<f64>>,
    /// That cost, per k position.
    pub paper_costs: Vec<f64>,
    /// The honest choice: per k position, each sample's mAP (percent) with the costs chosen
    /// by cross-validation or on the training rows outside the sample.
    pub honest: Vec<Vec<f64>>,
}

/// Summarises the chains of `ks.len()` k positions over `nc` classes under both cost
/// choices.
pub fn summarise(
    protocol: &SvmProtocol,
    ks: &[usize],
    chains: &[(usize, usize, usize, ChainResult)],
    nc: usize,
) -> Summary {
    let samples = chains.iter().map(|c| c.0 + 1).max().unwrap_or(0);
    let costs = protocol.costs.len();
    let mut paper = Vec::new();
    let mut paper_costs = Vec::new();
    let mut honest = Vec::new();
    for k in 0..ks.len() {
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
