//! One job of a sweep's DAG, run in this process: what `sslbench sweep FILE --job ID` does
//! (the local executor's processes and the Slurm scripts call it).

use super::plan::Plan;
use super::Context as SweepContext;
use crate::pretext::config::PretextConfig;
use crate::tasks::{run_file, taps, RunRequest, Setup, TaskHeader};
use anyhow::{bail, Context, Result};
use std::fmt;

/// A job of the DAG.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum JobId {
    /// The pretext run at this index.
    Pretrain(usize),
    /// The extraction at this index.
    Extract(usize),
    /// The cell at this index.
    Cell(usize),
    /// The tables of every cell.
    Collect,
}

impl fmt::Display for JobId {
    fn fmt(&self, f: &mut fmt::Formatter) -> fmt::Result {
        match self {
            JobId::Pretrain(i) => write!(f, "pretrain:{i}"),
            JobId::Extract(i) => write!(f, "extract:{i}"),
            JobId::Cell(i) => write!(f, "cell:{i}"),
            JobId::Collect => write!(f, "collect"),
        }
    }
}

impl std::str::FromStr for JobId {
    type Err = anyhow::Error;

    fn from_str(s: &str) -> Result<JobId> {
        let index = |i: &str| -> Result<usize> {
            i.parse()
                .with_context(|| format!("--job {s}: the index must be a number"))
        };
        Ok(match s.split_once(':') {
            Some(("pretrain", i)) => JobId::Pretrain(index(i)?),
            Some(("extract", i)) => JobId::Extract(index(i)?),
            Some(("cell", i)) => JobId::Cell(index(i)?),
            None if s == "collect" => JobId::Collect,
            _ => bail!("--job {s}: expected pretrain:I, extract:I, cell:I or collect"),
        })
    }
}

/// Runs one job.
pub fn run(plan: &Plan, ctx: &SweepContext, job: JobId) -> Result<()> {
    let missing = |what: &str, i: usize, n: usize| {
        anyhow::anyhow!("--job {what}:{i}: the sweep has {n} {what} jobs")
    };
    match job {
        JobId::Pretrain(i) => {
            let p = plan
                .pretrain
                .get(i)
                .ok_or_else(|| missing("pretrain", i, plan.pretrain.len()))?;
            eprintln!(
                "pretraining {} ({}) into {}",
                p.name,
                p.config.display(),
                p.out.display()
            );
            let cfg = PretextConfig::read(&p.config, &p.overrides)?;
            let summary = crate::pretext::run::pretrain(&cfg, &p.out, &ctx.device, true)
                .with_context(|| format!("sweep pretext run {}", p.name))?;
            println!("{}", summary.describe(&p.out));
        }
        JobId::Extract(i) => {
            let e = plan
                .extracts
                .get(i)
                .ok_or_else(|| missing("extract", i, plan.extracts.len()))?;
            eprintln!("extracting {} on {}", e.spec, e.backbone.display());
            let task = crate::config::read_layered(&e.task)?;
            let setup = Setup::resolve(
                &e.backbone,
                Some(task),
                &e.sets,
                ctx.device.clone(),
                ctx.cache.clone(),
            )?;
            let header = TaskHeader::of(&setup.doc)
                .with_context(|| format!("in task file {}", e.task.display()))?;
            let taps = taps(plan.taps.as_deref(), header.taps.as_deref())?;
            setup
                .features(&e.spec, &taps)
                .with_context(|| format!("extracting {} on {}", e.spec, e.backbone.display()))?;
        }
        JobId::Cell(i) => {
            let c = plan
                .cells
                .get(i)
                .ok_or_else(|| missing("cell", i, plan.cells.len()))?;
            eprintln!(
                "[cell {i}] {} on {}",
                c.task.display(),
                c.backbone.display()
            );
            // A cell whose task trains in a run folder (`[run]`: detection, normals,
            // navigation) continues from its last checkpoint when it runs again (a requeue
            // after SIGTERM, `--resume` after a failure).
            let mut sets = c.sets.clone();
            if crate::config::read_layered(&c.task)?.contains_key("run") {
                sets.push("run.resume=true".into());
            }
            let request = RunRequest {
                task_file: &c.task,
                backbone: &c.backbone,
                taps: plan.taps.as_deref(),
                sets: &sets,
                device: ctx.device.clone(),
                cache: ctx.cache.clone(),
                out: &ctx.out,
            };
            let result = run_file(request).with_context(|| {
                format!("sweep run {} on {}", c.task.display(), c.backbone.display())
            })?;
            crate::report::write_run(&result, &ctx.out)?;
        }
        JobId::Collect => super::collect::write(plan, &ctx.out)?,
    }
    Ok(())
}
