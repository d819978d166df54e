//! The local executor: the DAG's stages in order on this machine. With one job the jobs run
//! in this process; with `--jobs N` each job is a child `sslbench sweep FILE --job ID`
//! process, at most N at once (the feature cache's per-key locks keep two processes from
//! extracting one key; the DAG already extracts each key in one job).

use super::job::{self, JobId};
use super::{Context as SweepContext, Plan};
use anyhow::{bail, Context, Result};
use std::process::{Child, Command};

/// Runs the stages' jobs, `jobs` at a time, each stage after the previous one has ended.
pub fn run(plan: &Plan, ctx: &SweepContext, stages: &[Vec<JobId>], jobs: usize) -> Result<()> {
    for stage in stages {
        if jobs <= 1 {
            for &id in stage {
                job::run(plan, ctx, id)?;
            }
            continue;
        }
        let mut queue = stage.iter().copied();
        let mut running: Vec<(JobId, Child)> = Vec::new();
        let mut failed: Vec<String> = Vec::new();
        loop {
            while running.len() < jobs {
                let Some(id) = queue.next() else { break };
                running.push((id, spawn(ctx, id)?));
            }
            if running.is_empty() {
                break;
            }
            std::thread::sleep(std::time::Duration::from_millis(100));
            let mut still = Vec::new();
            for (id, mut child) in running {
                match child.try_wait().context("cannot wait for a sweep job")? {
                    Some(status) if !status.success() => failed.push(format!("{id} ({status})")),
                    Some(_) => {}
                    None => still.push((id, child)),
                }
            }
            running = still;
        }
        if !failed.is_empty() {
            bail!(
                "sweep jobs failed: {} (their errors are above; `--resume` reruns what is not \
                 done)",
                failed.join(", ")
            );
        }
    }
    Ok(())
}

/// Starts `sslbench sweep FILE --job ID` with this sweep's flags.
fn spawn(ctx: &SweepContext, id: JobId) -> Result<Child> {
    let exe = std::env::current_exe().context("cannot find the sslbench binary")?;
    Command::new(exe)
        .args(ctx.job_args())
        .arg("--job")
        .arg(id.to_string())
        .spawn()
        .with_context(|| format!("cannot start sweep job {id}"))
}
