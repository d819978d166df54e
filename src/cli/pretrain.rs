//! `sslbench pretrain configs/pretext/<name>.toml`: trains a trunk with a pretext task and
//! writes a checkpoint and a backbone config the benchmark tasks take as they are.

use super::setup::parse_device;
use crate::config;
use crate::pretext::config::PretextConfig;
use crate::pretext::run::{pretrain, Summary};
use anyhow::Result;
use clap::Args;
use std::path::{Path, PathBuf};

/// Arguments of `sslbench pretrain`.
#[derive(Args)]
pub struct PretrainArgs {
    /// Pretext TOML (configs/pretext/<name>.toml).
    config: PathBuf,
    /// Override any field: `--set data.subset=1000`, `--set model.width=0.25`,
    /// `--set permutations.count=100`, `--set colorize.k=5`.
    #[arg(long = "set", value_name = "KEY=VALUE")]
    sets: Vec<String>,
    /// Output folder [default: runs/pretrain/<config name>].
    #[arg(long)]
    out: Option<PathBuf>,
    /// Continue the run in the output folder from its latest checkpoint.
    #[arg(long)]
    resume: bool,
    /// `cpu` or `cuda:N` (CUDA needs a build with `--features cuda`).
    #[arg(long, default_value = "cpu")]
    device: String,
}

/// Reads a pretext config file with overrides applied.
pub fn load(path: &Path, sets: &[String]) -> Result<PretextConfig> {
    let mut doc = config::read_table(path)?;
    config::set_all(&mut doc, sets)?;
    PretextConfig::from_table(doc).map_err(|e| e.context(format!("in {}", path.display())))
}

/// The default output folder of a config.
pub fn default_out(path: &Path) -> PathBuf {
    let stem = path
        .file_stem()
        .map(|s| s.to_string_lossy().into_owned())
        .unwrap_or_default();
    PathBuf::from("runs/pretrain").join(stem)
}

/// Runs `sslbench pretrain`.
pub fn run(args: PretrainArgs) -> Result<()> {
    let cfg = load(&args.config, &args.sets)?;
    let out = args.out.unwrap_or_else(|| default_out(&args.config));
    let summary = pretrain(&cfg, &out, &parse_device(&args.device)?, args.resume)?;
    print_summary(&summary, &out);
    Ok(())
}

/// Prints what a run achieved and where its outputs are.
pub fn print_summary(s: &Summary, out: &Path) {
    let c = &s.config;
    println!(
        "{} pretext, {} x{} ({} parameters), {} training images, {} steps of {}: final loss {:.4}, pretext accuracy {:.1}% (chance {:.1}%)",
        c.pretext.name(),
        c.model.arch,
        c.model.width,
        s.parameters,
        s.train_images,
        s.steps,
        c.train.batch_size,
        s.final_loss,
        s.final_accuracy,
        s.chance
    );
    if let (Some(l), Some(a)) = (s.holdout_loss, s.holdout_accuracy) {
        println!(
            "held-out ({} images): loss {l:.4}, pretext accuracy {a:.1}%",
            s.holdout_images
        );
    }
    if !s.skipped_images.is_empty() {
        println!(
            "{} unreadable images were skipped (listed in pretrain.json)",
            s.skipped_images.len()
        );
    }
    println!(
        "wrote {} (log.csv, loss.png, accuracy.png, pretrain.json); backbone for the benchmarks: {}",
        out.display(),
        s.backbone.display()
    );
}
