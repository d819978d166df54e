//! `sslbench sweep configs/sweeps/<name>.toml`: every task on every backbone of a sweep file
//! (see [`crate::sweep`]); the flags go to it as they are.

use super::setup::parse_device;
use crate::sweep::SweepRequest;
use anyhow::Result;
use clap::Args;
use std::path::PathBuf;

/// Arguments of `sslbench sweep`.
#[derive(Args)]
pub struct SweepArgs {
    /// Sweep TOML: `backbones = [...]`, `tasks = [...]`, optional `taps`, `sets`.
    sweep: PathBuf,
    /// Feature cache folder [default: $SSLBENCH_CACHE, else the user's cache dir].
    #[arg(long)]
    cache: Option<PathBuf>,
    /// `cpu` or `cuda:N`.
    #[arg(long, default_value = "cpu")]
    device: String,
    /// Overrides applied to every run (after the sweep file's `sets`).
    #[arg(long = "set", value_name = "KEY=VALUE")]
    sets: Vec<String>,
    /// Folder for the results.
    #[arg(long, default_value = "results")]
    out: PathBuf,
    /// Folder for the pretext runs of `[[pretrain]]` entries.
    #[arg(long, default_value = "runs/pretrain")]
    runs: PathBuf,
}

/// Runs `sslbench sweep`.
pub fn run(args: SweepArgs) -> Result<()> {
    crate::sweep::run(SweepRequest {
        file: &args.sweep,
        cache: args.cache.clone(),
        device: parse_device(&args.device)?,
        sets: &args.sets,
        out: &args.out,
        runs: &args.runs,
    })
}
