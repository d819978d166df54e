//! `sslbench nav tasks/gibson_nav.toml --backbone B.toml --taps res3,res4,res5 --seeds 5`:
//! the navigation task with its own flags (seeds, resume); the results JSON and tables are
//! those of `sslbench run`.

use super::run::run_task;
use super::setup::BackboneArgs;
use anyhow::Result;
use clap::Args;
use std::path::PathBuf;

/// Arguments of `sslbench nav`.
#[derive(Args)]
pub struct NavArgs {
    /// Task TOML (tasks/gibson_nav.toml).
    task: PathBuf,
    #[command(flatten)]
    common: BackboneArgs,
    /// Independent runs per tap [default: the task's run.seeds].
    #[arg(long)]
    seeds: Option<usize>,
    /// Continue every agent from its last checkpoint.
    #[arg(long)]
    resume: bool,
    /// Folder of the results; each run's agents live in <out>/<task>_<backbone>/.
    #[arg(long, default_value = "results")]
    out: PathBuf,
}

/// Runs `sslbench nav`.
pub fn run(args: NavArgs) -> Result<()> {
    let mut common = args.common.clone();
    if let Some(seeds) = args.seeds {
        common.sets.push(format!("run.seeds={seeds}"));
    }
    if args.resume {
        common.sets.push("run.resume=true".into());
    }
    let result = run_task(&args.task, &common, &args.out)?;
    crate::report::write_run(&result, &args.out)
}
