//! The VOC07 / COCO2014 SVM protocol (protocols.md section 2): one binary SVM per class,
//! the cost chosen per class by the mean AP of k-fold cross-validation on the training set,
//! refit on all of it, and scored on the test set with VOC all-points AP.

use super::folds::{split, stratified_test_folds};
use super::metrics::{average_precision, voc_ap};
use super::svm::{Rows, Solution, SvmParams};
use super::sweep::{sweep, CostPoint, Subset};
use anyhow::{bail, Context, Result};
use indicatif::{ProgressBar, ProgressStyle};
use ndarray::{ArrayD, ArrayView2};
use rayon::prelude::*;
use serde::{Deserialize, Serialize};
use std::path::{Path, PathBuf};

/// The `[svm]` section of a task file.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SvmProtocol {
    /// The cost grid, in the order ties are broken (the first best wins).
    pub costs: Vec<f64>,
    /// Weight of positives (`class_weight={1: 2, -1: 1}`).
    pub pos_weight: f64,
    /// Weight of negatives.
    pub neg_weight: f64,
    /// Stopping tolerance.
    pub tol: f64,
    /// Most passes over the data.
    pub max_iter: usize,
    /// Value of the regularised bias feature (`intercept_scaling`).
    pub bias: f64,
    /// LIBLINEAR's shrinking heuristic.
    pub shrinking: bool,
    /// Start each cost from the previous (smaller) cost's solution.
    pub warm_start: bool,
    /// Cross-validation folds (stratified, unshuffled).
    pub folds: usize,
    /// Row normalisation `x / (||x|| + norm_eps)`.
    pub norm_eps: f64,
    /// Seed of the solver's per-pass order.
    pub seed: u64,
}

impl SvmProtocol {
    /// Reads `[svm]`; `costs` is a list of numbers or the name of a grid in
    /// `[svm.cost_grids]` (`fair`, `vissl`).
    pub fn from_doc(doc: &toml::Table) -> Result<SvmProtocol> {
        let mut svm = doc
            .get("svm")
            .and_then(|s| s.as_table())
            .cloned()
            .context("the task file has no [svm] section (see tasks/voc07_svm.toml)")?;
        let grids = svm.remove("cost_grids");
        if let Some(toml::Value::String(name)) = svm.get("costs").cloned() {
            let grid = grids
                .as_ref()
                .and_then(|g| g.get(&name))
                .cloned()
                .with_context(|| {
                    format!("svm.costs = \"{name}\" names no grid in [svm.cost_grids]")
                })?;
            svm.insert("costs".into(), grid);
        }
        let protocol: SvmProtocol = toml::Value::Table(svm)
            .try_into()
            .context("invalid [svm] section")?;
        if protocol.costs.is_empty() || protocol.costs.iter().any(|c| !(*c > 0.0)) {
            bail!(
                "svm.costs must be positive numbers, got {:?}",
                protocol.costs
            );
        }
        if protocol.folds < 2 {
            bail!("svm.folds must be at least 2, got {}", protocol.folds);
        }
        Ok(protocol)
    }

    /// The solver parameters (cost and seed are set per cost).
    pub fn params(&self) -> SvmParams {
        SvmParams {
            cost: self.costs[0],
            pos_weight: self.pos_weight,
            neg_weight: self.neg_weight,
            tol: self.tol,
            max_iter: self.max_iter,
            bias: self.bias,
            shrinking: self.shrinking,
            seed: self.seed,
        }
    }

    /// Positions of the costs in ascending order (the sweep order).
    pub fn ascending(&self) -> Vec<usize> {
        let mut order: Vec<usize> = (0..self.costs.len()).collect();
        order.sort_by(|&a, &b| self.costs[a].total_cmp(&self.costs[b]));
        order
    }

    /// A chain's seed: the protocol seed mixed with the chain and the cost position.
    pub fn seed(&self, chain: &[usize], cost: usize) -> u64 {
        chain.iter().chain(std::iter::once(&cost)).fold(
            self.seed ^ 0x5851_F42D_4C95_7F2D,
            |h, &v| {
                (h ^ v as u64)
                    .wrapping_mul(0x1000_0000_01B3)
                    .rotate_left(17)
            },
        )
    }
}

/// Rows L2-normalised in float64: `x / (||x|| + eps)`, from an `N x ...` feature array.
pub fn normalised_rows(features: &ArrayD<f32>, eps: f64) -> Result<Rows> {
    let n = features.shape().first().copied().unwrap_or(0);
    let dim = if n == 0 { 0 } else { features.len() / n };
    let flat: Vec<f32> = features.iter().copied().collect();
    let mut data = Vec::with_capacity(flat.len());
    for row in flat.chunks_exact(dim.max(1)) {
        let norm = row.iter().map(|&v| v as f64 * v as f64).sum::<f64>().sqrt();
        if !norm.is_finite() {
            bail!("a feature row holds NaN or infinity: re-extract the features");
        }
        data.extend(row.iter().map(|&v| v as f64 / (norm + eps)));
    }
    Ok(Rows::new(data, dim))
}

/// The outcome for one class.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct ClassResult {
    /// Class position.
    pub index: usize,
    /// Class name.
    pub name: String,
    /// The chosen cost.
    pub cost: f64,
    /// Mean cross-validation AP per cost, in the grid's order (fractions).
    pub cv_ap: Vec<f64>,
    /// Test AP of the refit SVM at the chosen cost (VOC all-points, fraction).
    pub test_ap: f64,
    /// Positive training images.
    pub train_positives: usize,
    /// Positive test images (difficult ones are left out).
    pub test_positives: usize,
    /// Trainings that stopped at `max_iter` (scikit-learn's ConvergenceWarning).
    pub not_converged: usize,
}

/// Training labels of a class: present (1) is positive; absent (-1) and difficult-only (0)
/// are negative.
pub fn train_labels(targets: ArrayView2<i32>, class: usize) -> Vec<bool> {
    targets.column(class).iter().map(|&t| t > 0).collect()
}

/// Scores `solution` on the test rows against VOC labels (1 / -1 / 0).
pub fn test_ap(solution: &Solution, test: &Rows, labels: &[i32]) -> f64 {
    let scores: Vec<f64> = (0..test.len())
        .map(|i| solution.decision(test.row(i)))
        .collect();
    voc_ap(&scores, labels)
}

/// A progress bar over `units` SVM trainings.
pub fn progress(units: usize, what: &str) -> ProgressBar {
    let bar = ProgressBar::new(units as u64);
    bar.set_style(
        ProgressStyle::with_template(
            "{msg} [{elapsed_precise}] {wide_bar} {pos}/{len} (class, cost, fold) eta {eta}",
        )
        .unwrap_or_else(|_| ProgressStyle::default_bar()),
    );
    bar.set_message(what.to_string());
    bar
}

/// Runs the protocol for every class: cross-validation chains per (class, fold) in
/// parallel, the cost choice, then a refit chain per class up to its chosen cost. Resume
/// state lives in `journal` (one file per chain).
#[allow(clippy::too_many_arguments)]
pub fn cross_validated(
    protocol: &SvmProtocol,
    train: &Rows,
    train_targets: ArrayView2<i32>,
    test: &Rows,
    test_targets: ArrayView2<i32>,
    classes: &[String],
    journal: &Path,
    label: &str,
) -> Result<Vec<ClassResult>> {
    std::fs::create_dir_all(journal)
        .with_context(|| format!("cannot create the SVM journal {}", journal.display()))?;
    let order = protocol.ascending();
    let sorted: Vec<f64> = order.iter().map(|&i| protocol.costs[i]).collect();
    let params = protocol.params();
    let nc = classes.len();
    let bar = progress(nc * protocol.folds * sorted.len() + nc, label);
    let labels: Vec<Vec<bool>> = (0..nc).map(|c| train_labels(train_targets, c)).collect();
    let test_folds: Vec<Vec<usize>> = labels
        .iter()
        .map(|l| stratified_test_folds(l, protocol.folds))
        .collect();
    let chains: Vec<(usize, usize)> = (0..nc)
        .flat_map(|c| (0..protocol.folds).map(move |f| (c, f)))
        .collect();
    let cv: Vec<Vec<CostPoint>> = chains
        .par_iter()
        .map(|&(c, f)| {
            let (tr, te) = split(&test_folds[c], f);
            let positive: Vec<bool> = tr.iter().map(|&i| labels[c][i]).collect();
            let held_out: Vec<bool> = te.iter().map(|&i| labels[c][i]).collect();
            let subset = Subset {
                rows: train,
                index: &tr,
                positive: &positive,
            };
            sweep(
                &subset,
                &sorted,
                &params,
                protocol.warm_start,
                |k| protocol.seed(&[c, f], k),
                &journal.join(format!("cv_c{c}_f{f}.state")),
                |s| {
                    let scores: Vec<f64> = te.iter().map(|&i| s.decision(train.row(i))).collect();
                    average_precision(&scores, &held_out)
                },
                || bar.inc(1),
            )
        })
        .collect::<Result<_>>()?;
    let results = (0..nc)
        .into_par_iter()
        .map(|c| {
            let mut cv_ap = vec![0.0; sorted.len()];
            let mut not_converged = 0;
            for f in 0..protocol.folds {
                for (k, p) in cv[c * protocol.folds + f].iter().enumerate() {
                    cv_ap[order[k]] += p.score / protocol.folds as f64;
                    not_converged += usize::from(!p.converged);
                }
            }
            // The first best cost in the grid's order.
            let best = (0..cv_ap.len()).fold(0, |b, i| if cv_ap[i] > cv_ap[b] { i } else { b });
            let upto = order.iter().position(|&i| i == best).unwrap_or(0);
            let test_labels: Vec<i32> = test_targets.column(c).to_vec();
            let all: Vec<usize> = (0..train.len()).collect();
            let subset = Subset {
                rows: train,
                index: &all,
                positive: &labels[c],
            };
            let refit = sweep(
                &subset,
                &sorted[..=upto],
                &params,
                protocol.warm_start,
                |k| protocol.seed(&[c, protocol.folds], k),
                &journal.join(format!("refit_c{c}.state")),
                |s| test_ap(s, test, &test_labels),
                || {},
            )?;
            bar.inc(1);
            let last = refit.last().context("internal: empty refit")?;
            Ok(ClassResult {
                index: c,
                name: classes[c].clone(),
                cost: protocol.costs[best],
                cv_ap,
                test_ap: last.score,
                train_positives: labels[c].iter().filter(|&&p| p).count(),
                test_positives: test_labels.iter().filter(|&&t| t > 0).count(),
                not_converged: not_converged + usize::from(!last.converged),
            })
        })
        .collect::<Result<Vec<_>>>()?;
    bar.finish_and_clear();
    Ok(results)
}

/// The resume folder of one protocol run: `<root>/svm/<digest>`, where the digest covers
/// the inputs' identities (cache digests or file hashes) and every protocol field.
pub fn journal_dir(root: &Path, inputs: &[String], protocol: &SvmProtocol) -> Result<PathBuf> {
    use sha2::{Digest, Sha256};
    let mut h = Sha256::new();
    for i in inputs {
        h.update(i.as_bytes());
        h.update([0]);
    }
    h.update(serde_json::to_vec(protocol)?);
    Ok(root.join("svm").join(&hex::encode(h.finalize())[..32]))
}

/// Mean of the per-class test APs, in percent.
pub fn mean_ap_percent(results: &[ClassResult]) -> f64 {
    if results.is_empty() {
        return 0.0;
    }
    100.0 * results.iter().map(|r| r.test_ap).sum::<f64>() / results.len() as f64
}
