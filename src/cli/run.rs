//! `sslbench run tasks/<task>.toml`: a task config in, `results/<task>_<backbone>.json` (and
//! its tables) out. The flags go to [`crate::tasks::run_file`].

use super::setup::BackboneArgs;
use anyhow::Result;
use clap::Args;
use std::path::PathBuf;

/// Arguments of `sslbench run`.
#[derive(Args)]
pub struct RunArgs {
    /// Task TOML (tasks/<task>.toml).
    task: PathBuf,
    #[command(flatten)]
    common: BackboneArgs,
    /// Independent runs per tap, for tasks that train [default: the task's run.seeds].
    #[arg(long)]
    seeds: Option<usize>,
    /// Continue every training run of the task from its last checkpoint.
    #[arg(long)]
    resume: bool,
    /// Folder for results/<run>.json and its tables.
    #[arg(long, default_value = "results")]
    out: PathBuf,
}

/// Runs `sslbench run` (and `sslbench nav`, its short form for navigation).
pub fn run(args: RunArgs) -> Result<()> {
    let mut common = args.common.clone();
    if let Some(seeds) = args.seeds {
        common.sets.push(format!("run.seeds={seeds}"));
    }
    if args.resume {
        common.sets.push("run.resume=true".into());
    }
    let result = crate::tasks::run_file(common.request(&args.task, &args.out)?)?;
    crate::report::write_run(&result, &args.out)
}
