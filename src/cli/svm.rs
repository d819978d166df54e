//! `sslbench svm`: the VOC07 SVM protocol on features saved as `.npy` (FAIR's
//! `train_svm_kfold.py` inputs), for users with features from elsewhere and for benchmarks.

use crate::atomic::write_atomic;
use crate::config;
use crate::data::npy;
use crate::features::FeatureStore;
use crate::linear::protocol::{
    cross_validated, journal_dir, mean_ap_percent, normalised_rows, SvmProtocol,
};
use anyhow::{bail, Context, Result};
use clap::Args;
use ndarray::{Array2, ArrayD, Ix2};
use serde_json::json;
use std::path::{Path, PathBuf};
use std::time::Instant;

/// Arguments of `sslbench svm`.
#[derive(Args)]
pub struct SvmArgs {
    /// Training features, N x D (.npy, any float dtype).
    #[arg(long)]
    train_features: PathBuf,
    /// Training targets, N x C with 1 present, -1 absent, 0 difficult (.npy).
    #[arg(long)]
    train_targets: PathBuf,
    /// Test features, M x D (.npy).
    #[arg(long)]
    test_features: PathBuf,
    /// Test targets, M x C (.npy).
    #[arg(long)]
    test_targets: PathBuf,
    /// Targets use FAIR's encoding (create_voc_data_files.py: 1 present, 0 absent, -1
    /// difficult) instead of the devkit's (1, -1, 0).
    #[arg(long)]
    fair_targets: bool,
    /// Task file with the [svm] protocol [default: the shipped tasks/voc07_svm.toml].
    #[arg(long)]
    task: Option<PathBuf>,
    /// Comma-separated class names [default: class0, class1, ...].
    #[arg(long)]
    classes: Option<String>,
    /// Override a protocol field: `--set svm.costs=vissl`, `--set svm.folds=5`.
    #[arg(long = "set", value_name = "KEY=VALUE")]
    sets: Vec<String>,
    /// Folder of the resume state [default: $SSLBENCH_CACHE, else the user's cache dir].
    #[arg(long)]
    cache: Option<PathBuf>,
    /// Results JSON.
    #[arg(long, default_value = "svm.json")]
    out: PathBuf,
}

/// Runs `sslbench svm`.
pub fn run(args: SvmArgs) -> Result<()> {
    let mut doc = match &args.task {
        Some(p) => config::read_table(p)?,
        None => config::shipped("voc07_svm.toml")?,
    };
    config::set_all(&mut doc, &args.sets)?;
    let protocol = SvmProtocol::from_doc(&doc)?;
    let started = Instant::now();
    let (train_x, train_y) = (
        read_matrix(&args.train_features)?,
        read_targets(&args.train_targets, args.fair_targets)?,
    );
    let (test_x, test_y) = (
        read_matrix(&args.test_features)?,
        read_targets(&args.test_targets, args.fair_targets)?,
    );
    check_pair(
        &args.train_features,
        &train_x,
        &args.train_targets,
        &train_y,
    )?;
    check_pair(&args.test_features, &test_x, &args.test_targets, &test_y)?;
    if train_y.ncols() != test_y.ncols() || train_x.shape()[1] != test_x.shape()[1] {
        bail!(
            "train and test disagree: {} vs {} classes, {} vs {} feature dims",
            train_y.ncols(),
            test_y.ncols(),
            train_x.shape()[1],
            test_x.shape()[1]
        );
    }
    let classes: Vec<String> = match &args.classes {
        Some(list) => list.split(',').map(|s| s.trim().to_string()).collect(),
        None => (0..train_y.ncols()).map(|c| format!("class{c}")).collect(),
    };
    if classes.len() != train_y.ncols() {
        bail!(
            "--classes names {} classes, the targets have {}",
            classes.len(),
            train_y.ncols()
        );
    }
    let inputs = [
        &args.train_features,
        &args.train_targets,
        &args.test_features,
        &args.test_targets,
    ]
    .iter()
    .map(|p| crate::atomic::file_sha256(p, || format!("cannot open {}", p.display())))
    .collect::<Result<Vec<_>>>()?;
    let root = args
        .cache
        .clone()
        .unwrap_or_else(FeatureStore::default_root);
    let journal = journal_dir(&root, &inputs, &protocol)?;
    let load_s = started.elapsed().as_secs_f64();
    let train = normalised_rows(&train_x, protocol.norm_eps)?;
    let test = normalised_rows(&test_x, protocol.norm_eps)?;
    drop((train_x, test_x));
    let results = cross_validated(
        &protocol,
        &train,
        train_y.view(),
        &test,
        test_y.view(),
        &classes,
        &journal,
        "SVM",
    )?;
    for r in &results {
        println!(
            "{:>3} {:<16} cost {:<12.4e} cv AP {:.4}  test AP {:.4}",
            r.index,
            r.name,
            r.cost,
            r.cv_ap.iter().cloned().fold(f64::NAN, f64::max),
            r.test_ap
        );
    }
    let map = mean_ap_percent(&results) / 100.0;
    println!("mAP {:.4} over {} classes", map, results.len());
    let seconds = started.elapsed().as_secs_f64();
    let report = json!({
        "protocol": "sslbench_voc07_svm",
        "svm": protocol,
        "costs": protocol.costs,
        "classes": results,
        "mAP": map,
        "seconds": seconds,
        "load_seconds": load_s,
        "threads": rayon::current_num_threads(),
        "journal": journal,
    });
    write_atomic(&args.out, serde_json::to_string_pretty(&report)?.as_bytes())?;
    println!("wrote {}", args.out.display());
    Ok(())
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
