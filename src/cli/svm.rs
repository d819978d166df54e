//! `sslbench svm`: the VOC07 SVM protocol on features saved as `.npy` (FAIR's
//! `train_svm_kfold.py` inputs), for users with features from elsewhere and for benchmarks.

use crate::atomic::write_atomic;
use crate::config;
use crate::features::FeatureStore;
use crate::linear::external::{run_on_npy, NpyInputs};
use crate::linear::protocol::SvmProtocol;
use anyhow::Result;
use clap::Args;
use std::path::PathBuf;

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
    let inputs = NpyInputs {
        train_features: &args.train_features,
        train_targets: &args.train_targets,
        test_features: &args.test_features,
        test_targets: &args.test_targets,
        fair_targets: args.fair_targets,
    };
    let classes = args
        .classes
        .as_ref()
        .map(|list| list.split(',').map(|s| s.trim().to_string()).collect());
    let root = args
        .cache
        .clone()
        .unwrap_or_else(FeatureStore::default_root);
    let report = run_on_npy(&inputs, &protocol, classes, &root)?;
    for r in &report.results {
        println!(
            "{:>3} {:<16} cost {:<12.4e} cv AP {:.4}  test AP {:.4}",
            r.index,
            r.name,
            r.cost,
            r.cv_ap.iter().cloned().fold(f64::NAN, f64::max),
            r.test_ap
        );
    }
    println!(
        "mAP {:.4} over {} classes",
        report.map,
        report.results.len()
    );
    write_atomic(
        &args.out,
        serde_json::to_string_pretty(&report.json)?.as_bytes(),
    )?;
    println!("wrote {}", args.out.display());
    Ok(())
}
