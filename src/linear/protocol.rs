//! The VOC07 / COCO2014 SVM protocol (protocols.md section 2): one binary SVM per class,
//! the cost chosen per class by the mean AP of k-fold cross-validation on the training set,
//! refit on all of it, and scored on the test set with VOC all-points AP.

use super::folds::{split, stratified_test_folds};
use super::simd::dot;
use super::svm::{Gram, Kernel, Precision, Rows, Solution, Solver, SvmParams};
use super::sweep::{sweep, CostPoint, Subset};
use crate::metrics::{average_precision, voc_ap};
use anyhow::{bail, Context, Result};
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
    /// The solver's settings (weights, tolerance, passes, bias, shrinking), serialised in
    /// place, so the journal digests of recorded runs stay what they were.
    #[serde(flatten)]
    pub solver: Solver,
    /// Start each cost from the previous (smaller) cost's solution.
    pub warm_start: bool,
    /// Cross-validation folds (stratified, unshuffled).
    pub folds: usize,
    /// Row normalisation `x / (||x|| + norm_eps)`.
    pub norm_eps: f64,
    /// Seed of the solver's per-pass order.
    pub seed: u64,
    /// Solve through the training set's Gram matrix when it has at most this many rows
    /// (memory: rows^2 x 8 bytes); above, keep the weights explicitly. Same optimum.
    pub gram_max_rows: usize,
    /// Storage of the Gram entries (computed in float64 either way).
    pub gram_precision: Precision,
}

impl SvmProtocol {
    /// Reads `[svm]` over the paper's defaults (the `[svm]` of the shipped
    /// `tasks/voc07_svm.toml`); `costs` is a list of numbers or the name of a grid in
    /// `[svm.cost_grids]` (`fair`, `vissl`).
    pub fn from_doc(doc: &toml::Table) -> Result<SvmProtocol> {
        let shipped = crate::config::shipped("voc07_svm.toml")?;
        let mut svm = shipped
            .get("svm")
            .and_then(|s| s.as_table())
            .cloned()
            .context("internal: the shipped voc07_svm.toml has no [svm]")?;
        if let Some(task) = doc.get("svm").and_then(|s| s.as_table()) {
            crate::config::merge(&mut svm, task.clone());
        }
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
            seed: self.seed,
            solver: self.solver,
        }
    }

    /// The sweep order: the grid positions of the costs in ascending order, and the costs in
    /// that order.
    pub fn ascending(&self) -> (Vec<usize>, Vec<f64>) {
        let mut order: Vec<usize> = (0..self.costs.len()).collect();
        order.sort_by(|&a, &b| self.costs[a].total_cmp(&self.costs[b]));
        let sorted = order.iter().map(|&i| self.costs[i]).collect();
        (order, sorted)
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
    /// Mean cross-validation AP at the chosen cost.
    pub cv_ap_chosen: f64,
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

/// Decision values of the rows `which` of `rows`, for a solution trained on `train` with
/// the weights kept or rebuilt from the dual point.
pub fn primal_scores(solution: &Solution, train: &Rows, rows: &Rows, which: &[usize]) -> Vec<f64> {
    let w = solution.weights(train);
    which
        .iter()
        .map(|&i| dot(&w, rows.row(i)) + solution.intercept)
        .collect()
}

/// Scores `solution` (trained on all of `train`) on the test rows against VOC labels
/// (1 / -1 / 0).
pub fn test_ap(solution: &Solution, train: &Rows, test: &Rows, labels: &[i32]) -> f64 {
    let all: Vec<usize> = (0..test.len()).collect();
    voc_ap(&primal_scores(solution, train, test, &all), labels)
}

/// The kernel the protocol trains through on `train`: its Gram matrix when small enough.
pub fn kernel_for(protocol: &SvmProtocol, train: &Rows) -> Result<Option<Gram>> {
    if train.len() > protocol.gram_max_rows {
        return Ok(None);
    }
    Ok(Some(Gram::of(train, protocol.gram_precision).context(
        "cannot compute the Gram matrix of the training rows",
    )?))
}

/// A progress bar over `units` SVM trainings (class, cost, fold).
pub fn trainings_bar(units: usize, what: &str) -> indicatif::ProgressBar {
    crate::progress::bar(units as u64, what, "trainings (class, cost, fold)")
}

/// Mean k-fold cross-validation AP (scikit-learn's) of every cost, in the grid's order, on
/// one training subset, and the number of trainings that hit `max_iter`. Folds run in
/// parallel; `chain` names the subset in seeds and in the resume files `<stem>_f<fold>.state`.
pub fn cv_scores(
    protocol: &SvmProtocol,
    subset: &Subset,
    chain: &[usize],
    journal: &Path,
    stem: &str,
    on_cost: &(dyn Fn() + Sync),
) -> Result<(Vec<f64>, usize)> {
    let (order, sorted) = protocol.ascending();
    let params = protocol.params();
    let test_folds = stratified_test_folds(subset.positive, protocol.folds);
    let folds: Vec<Vec<CostPoint>> = (0..protocol.folds)
        .into_par_iter()
        .map(|f| {
            let (tr, te) = split(&test_folds, f);
            let positive: Vec<bool> = tr.iter().map(|&i| subset.positive[i]).collect();
            let held_out: Vec<bool> = te.iter().map(|&i| subset.positive[i]).collect();
            let rows =
                |pos: &[usize]| -> Vec<usize> { pos.iter().map(|&i| subset.index[i]).collect() };
            let (train_rows, test_rows) = (rows(&tr), rows(&te));
            // Through a Gram matrix, the fold gets compact copies: its own Gram and the
            // cross products of its held-out rows.
            let compact = match subset.kernel {
                Kernel::Gram(g) => Some((
                    g.gather(&train_rows, &train_rows),
                    g.gather(&test_rows, &train_rows),
                )),
                Kernel::Primal(_) => None,
            };
            let local: Vec<usize> = (0..tr.len()).collect();
            let fold = match &compact {
                Some((gram, _)) => Subset {
                    kernel: Kernel::Gram(gram),
                    index: &local,
                    positive: &positive,
                },
                None => Subset {
                    kernel: subset.kernel,
                    index: &train_rows,
                    positive: &positive,
                },
            };
            let mut id = chain.to_vec();
            id.push(f);
            sweep(
                &fold,
                &sorted,
                &params,
                protocol.warm_start,
                |k| protocol.seed(&id, k),
                &journal.join(format!("{stem}_f{f}.state")),
                |_, s| {
                    let scores = match (&compact, subset.kernel) {
                        (Some((_, cross)), _) => s.decisions(cross),
                        (None, Kernel::Primal(x)) => primal_scores(s, x, x, &test_rows),
                        (None, Kernel::Gram(_)) => unreachable!("a Gram kernel is compacted"),
                    };
                    vec![average_precision(&scores, &held_out)]
                },
                on_cost,
            )
        })
        .collect::<Result<_>>()?;
    let mut mean = vec![0.0; sorted.len()];
    let mut not_converged = 0;
    for points in &folds {
        for (k, p) in points.iter().enumerate() {
            mean[order[k]] += p.scores[0] / protocol.folds as f64;
            not_converged += usize::from(!p.converged);
        }
    }
    Ok((mean, not_converged))
}

/// The first best cost position in the grid's order (ties go to the earlier cost, as
/// `np.argmax` does).
pub fn best_cost(scores: &[f64]) -> usize {
    (0..scores.len()).fold(0, |b, i| if scores[i] > scores[b] { i } else { b })
}

/// Runs the protocol for every class: cross-validation chains per (class, fold), the cost
/// choice, then a refit chain per class up to its chosen cost, scored on the test rows.
/// Resume state lives in `journal` (one file per chain).
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
    let _lock = lock_journal(journal)?;
    let (order, sorted) = protocol.ascending();
    let params = protocol.params();
    let nc = classes.len();
    let bar = trainings_bar(nc * (protocol.folds * sorted.len() + 1), label);
    let tick = || bar.inc(1);
    let all: Vec<usize> = (0..train.len()).collect();
    let started = std::time::Instant::now();
    let gram = kernel_for(protocol, train)?;
    if gram.is_some() {
        bar.println(format!(
            "{label}: Gram matrix of {} training rows in {:.1} s",
            train.len(),
            started.elapsed().as_secs_f64()
        ));
    }
    let kernel = gram.as_ref().map_or(Kernel::Primal(train), Kernel::Gram);
    let results = (0..nc)
        .into_par_iter()
        .map(|c| {
            let positive = train_labels(train_targets, c);
            let subset = Subset {
                kernel,
                index: &all,
                positive: &positive,
            };
            let (cv_ap, not_converged) =
                cv_scores(protocol, &subset, &[c], journal, &format!("cv_c{c}"), &tick)?;
            let best = best_cost(&cv_ap);
            let upto = order.iter().position(|&i| i == best).unwrap_or(0);
            let test_labels: Vec<i32> = test_targets.column(c).to_vec();
            let refit = sweep(
                &subset,
                &sorted[..=upto],
                &params,
                protocol.warm_start,
                |k| protocol.seed(&[c, protocol.folds], k),
                &journal.join(format!("refit_c{c}.state")),
                // Only the chosen (last) cost's refit is scored.
                |k, s| {
                    if k == upto {
                        vec![test_ap(s, train, test, &test_labels)]
                    } else {
                        Vec::new()
                    }
                },
                &|| {},
            )?;
            bar.inc(1);
            let last = refit.last().context("internal: empty refit")?;
            Ok(ClassResult {
                index: c,
                name: classes[c].clone(),
                cost: protocol.costs[best],
                cv_ap_chosen: cv_ap[best],
                cv_ap,
                test_ap: *last
                    .scores
                    .first()
                    .context("internal: the refit was not scored")?,
                train_positives: positive.iter().filter(|&&p| p).count(),
                test_positives: test_labels.iter().filter(|&&t| t > 0).count(),
                not_converged: not_converged + usize::from(!last.converged),
            })
        })
        .collect::<Result<Vec<_>>>()?;
    bar.finish_and_clear();
    Ok(results)
}

/// Creates the SVM journal folder and takes its lock (`<journal>.lock`): one process at a
/// time writes a journal's chain files; a second one waits, then resumes from them.
pub fn lock_journal(journal: &Path) -> Result<crate::lock::KeyLock> {
    std::fs::create_dir_all(journal)
        .with_context(|| format!("cannot create the SVM journal {}", journal.display()))?;
    crate::lock::acquire(
        &crate::lock::lock_path(journal),
        &format!("the SVM journal {}", journal.display()),
    )
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

#[cfg(test)]
mod tests {
    use super::*;

    fn shipped() -> toml::Table {
        crate::config::shipped("voc07_svm.toml").unwrap()
    }

    /// The journal of the shipped protocol on four recorded inputs is the folder the code
    /// before the solver settings moved into `Solver` chose (read off its `sslbench svm`
    /// report): recorded SVM runs resume from their journals.
    #[test]
    fn journal_digests_are_those_of_recorded_runs() {
        let protocol = SvmProtocol::from_doc(&shipped()).unwrap();
        let inputs = [
            "df2f27dc38d6d70fdbfd362cfbb4cd500c62c5512f0167bb0395751503830a36",
            "7c8e66820f9fafd37550ad9f0d8c9da3ae005e406777a9a898635d39442c312f",
            "10141dd1d69570d9c61423af0b2c280dd6b3615599e24686b4a43212b1b38ee9",
            "594517d10973c1975b6de0082668a2c2d9440175b1e6a81d62fdeeeafbd73e18",
        ]
        .map(String::from);
        let dir = journal_dir(Path::new("/r"), &inputs, &protocol).unwrap();
        assert_eq!(
            dir,
            Path::new("/r/svm/06133395eec5b1af9c992bec1f43b84c"),
            "the journal digest moved: recorded SVM runs would start over"
        );
    }

    #[test]
    fn unknown_and_invalid_fields_are_refused() {
        for bad in [
            "svm.tols=1e-3",
            "svm.costs=\"nope\"",
            "svm.folds=1",
            "svm.pos_weight=\"x\"",
        ] {
            let mut doc = shipped();
            crate::config::set(&mut doc, bad).unwrap();
            assert!(SvmProtocol::from_doc(&doc).is_err(), "{bad} was accepted");
        }
        let mut doc = shipped();
        crate::config::set(&mut doc, "svm.tol=1e-3").unwrap();
        assert_eq!(SvmProtocol::from_doc(&doc).unwrap().solver.tol, 1e-3);
    }
}
