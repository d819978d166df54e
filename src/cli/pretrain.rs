//! `sslbench pretrain configs/pretext/<name>.toml`: trains a trunk with a pretext task and
//! writes a checkpoint and a backbone config the benchmark tasks take as they are.

use super::setup::parse_device;
use crate::pretext::config::PretextConfig;
use crate::pretext::run::pretrain;
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
    let cfg = PretextConfig::read(&args.config, &args.sets)?;
    let out = args.out.unwrap_or_else(|| default_out(&args.config));
    let summary = pretrain(&cfg, &out, &parse_device(&args.device)?, args.resume)?;
    println!("{}", summary.describe(&out));
    Ok(())
}
