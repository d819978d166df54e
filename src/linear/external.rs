//! The VOC07 SVM protocol on features from elsewhere, saved as `.npy` (the inputs of FAIR's
//! `train_svm_kfold.py`): reading and checking the four arrays, and running the protocol with
//! its journal keyed by the files' digests.

use super::protocol::{
    cross_validated, journal_dir, mean_ap_percent, normalised_rows, ClassResult, SvmProtocol,
};
use crate::data::npy;
use anyhow::{bail, Context, Result};
use ndarray::{Array2, ArrayD, Ix2};
use serde_json::json;
use std::path::{Path, PathBuf};
use std::time::Instant;

/// The four arrays of one run.
pub struct NpyInputs<'a> {
    /// Training features, N x D (any float dtype).
    pub train_features: &'a Path,
    /// Training targets, N x C.
    pub train_targets: &'a Path,
    /// Test features, M x D.
    pub test_features: &'a Path,
    /// Test targets, M x C.
    pub test_targets: &'a Path,
    /// Targets use FAIR's encoding (1 present, 0 absent, -1 difficult) instead of the
    /// devkit's (1, -1, 0).
    pub fair_targets: bool,
}

/// What a run on `.npy` inputs found.
pub struct NpyReport {
    /// Per class: the chosen cost, the CV and test APs.
    pub results: Vec<ClassResult>,
    /// Mean test AP (a fraction).
    pub map: f64,
    /// The results JSON (protocol, classes, mAP, timings, journal).
    pub json: serde_json::Value,
}

/// Runs `protocol` on the arrays of `inputs` (`classes` names them; default `class0`, ...),
/// resuming from the journal under `cache_root`.
pub fn run_on_npy(
    inputs: &NpyInputs,
    protocol: &SvmProtocol,
    classes: Option<Vec<String>>,
    cache_root: &Path,
) -> Result<NpyReport> {
    let started = Instant::now();
    let (train_x, train_y) = (
        read_matrix(inputs.train_features)?,
        read_targets(inputs.train_targets, inputs.fair_targets)?,
    );
    let (test_x, test_y) = (
        read_matrix(inputs.test_features)?,
        read_targets(inputs.test_targets, inputs.fair_targets)?,
    );
    check_pair(
        inputs.train_features,
        &train_x,
        inputs.train_targets,
        &train_y,
    )?;
    check_pair(inputs.test_features, &test_x, inputs.test_targets, &test_y)?;
    if train_y.ncols() != test_y.ncols() || train_x.shape()[1] != test_x.shape()[1] {
        bail!(
            "train and test disagree: {} vs {} classes, {} vs {} feature dims",
            train_y.ncols(),
            test_y.ncols(),
            train_x.shape()[1],
            test_x.shape()[1]
        );
    }
    let classes: Vec<String> =
        classes.unwrap_or_else(|| (0..train_y.ncols()).map(|c| format!("class{c}")).collect());
    if classes.len() != train_y.ncols() {
        bail!(
            "--classes names {} classes, the targets have {}",
            classes.len(),
            train_y.ncols()
        );
    }
    let digests = [
        inputs.train_features,
        inputs.train_targets,
        inputs.test_features,
        inputs.test_targets,
    ]
    .iter()
    .map(|p| crate::atomic::file_sha256(p, || format!("cannot open {}", p.display())))
    .collect::<Result<Vec<_>>>()?;
    let journal: PathBuf = journal_dir(cache_root, &digests, protocol)?;
    let load_s = started.elapsed().as_secs_f64();
    let train = normalised_rows(&train_x, protocol.norm_eps)?;
    let test = normalised_rows(&test_x, protocol.norm_eps)?;
    drop((train_x, test_x));
    let results = cross_validated(
        protocol,
        &train,
        train_y.view(),
        &test,
        test_y.view(),
        &classes,
        &journal,
        "SVM",
    )?;
    let map = mean_ap_percent(&results) / 100.0;
    let json = json!({
        "protocol": "sslbench_voc07_svm",
        "svm": protocol,
        "costs": protocol.costs,
        "classes": results,
        "mAP": map,
        "seconds": started.elapsed().as_secs_f64(),
        "load_seconds": load_s,
        "threads": rayon::current_num_threads(),
        "journal": journal,
    });
    Ok(NpyReport { results, map, json })
}

fn read_matrix(path: &Path) -> Result<ArrayD<f32>> {
    let a = npy::read(path)?;
    if a.ndim() != 2 {
        bail!(
            "{} has shape {:?}: features must be N x D",
            path.display(),
            a.shape()
        );
    }
    Ok(a.mapv(|v| v as f32))
}

/// Reads targets as the devkit's 1 / -1 / 0, converting FAIR's 1 / 0 / -1 when `fair`.
fn read_targets(path: &Path, fair: bool) -> Result<Array2<i32>> {
    let a = npy::read(path)?;
    let a = a
        .into_dimensionality::<Ix2>()
        .with_context(|| format!("{}: targets must be N x C", path.display()))?;
    if a.iter().any(|&v| v != 1.0 && v != -1.0 && v != 0.0) {
        bail!(
            "{}: targets must be 1 (present), -1 (absent) or 0 (difficult)",
            path.display()
        );
    }
    Ok(a.mapv(|v| match (fair, v as i32) {
        (true, 0) => -1,
        (true, -1) => 0,
        (_, t) => t,
    }))
}

fn check_pair(fp: &Path, x: &ArrayD<f32>, tp: &Path, y: &Array2<i32>) -> Result<()> {
    if x.shape()[0] != y.nrows() {
        bail!(
            "{} has {} rows but {} has {}: features and targets must list the same images",
            fp.display(),
            x.shape()[0],
            tp.display(),
            y.nrows()
        );
    }
    Ok(())
}
