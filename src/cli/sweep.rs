//! `sslbench sweep configs/sweeps/<name>.toml`: every task on every backbone of a sweep file
//! (see [`crate::sweep`]), here or through Slurm; `--status` and `--resume` follow it.

use super::setup::parse_device;
use crate::sweep::{Action, Executor, JobId, SweepRequest};
use anyhow::{bail, Result};
use clap::Args;
use std::path::PathBuf;

/// Arguments of `sslbench sweep`.
#[derive(Args)]
pub struct SweepArgs {
    /// Sweep TOML: `backbones = [...]`, `tasks = [...]`, optional `taps`, `sets`,
    /// `[[pretrain]]`, `[slurm]`.
    sweep: PathBuf,
    /// Feature cache folder [default: $SSLBENCH_CACHE, else the user's cache dir].
    #[arg(long)]
    cache: Option<PathBuf>,
    /// `cpu` or `cuda:N`.
    #[arg(long, default_value = "cpu")]
    device: String,
    /// Overrides applied to every run (after the sweep file's `sets`); `slurm.FIELD=VALUE`
    /// overrides the `[slurm]` section.
    #[arg(long = "set", value_name = "KEY=VALUE")]
    sets: Vec<String>,
    /// Folder for the results.
    #[arg(long, default_value = "results")]
    out: PathBuf,
    /// Folder for the pretext runs of `[[pretrain]]` entries.
    #[arg(long, default_value = "runs/pretrain")]
    runs: PathBuf,
    /// Where the jobs run: `local` (this machine) or `slurm` (sbatch).
    #[arg(long, value_enum, default_value = "local")]
    executor: Executor,
    /// Local executor: jobs at once, each in its own process (1: all in this process).
    #[arg(long, default_value_t = 1)]
    jobs: usize,
    /// Print each cell's state (done, running, pending, failed, not submitted) and exit.
    #[arg(long)]
    status: bool,
    /// Run or submit only the cells that are not done.
    #[arg(long)]
    resume: bool,
    /// With `--executor slurm`: print the sbatch scripts, submit nothing.
    #[arg(long)]
    dry_run: bool,
    /// Run one job of the sweep's DAG here (`pretrain:I`, `extract:I`, `cell:I`, `collect`):
    /// what the executors start.
    #[arg(long, hide = true)]
    job: Option<JobId>,
}

/// Runs `sslbench sweep`.
pub fn run(args: SweepArgs) -> Result<()> {
    if args.jobs == 0 {
        bail!("--jobs must be at least 1");
    }
    let action = match (args.job, args.status) {
        (Some(id), _) => Action::Job(id),
        (None, true) => Action::Status,
        (None, false) => Action::Run {
            resume: args.resume,
            dry_run: args.dry_run,
        },
    };
    crate::sweep::run(SweepRequest {
        file: &args.sweep,
        cache: args.cache.clone(),
        device: parse_device(&args.device)?,
        device_name: args.device.clone(),
        sets: &args.sets,
        out: &args.out,
        runs: &args.runs,
        executor: args.executor,
        jobs: args.jobs,
        action,
    })
}
