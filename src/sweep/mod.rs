//! Sweeps (`configs/sweeps/<name>.toml`): every task on every backbone, one results file per
//! pair. Pretext runs listed under `[[pretrain]]` (alone or as a grid over the paper's axes)
//! are trained first, or resumed when already done, and their trunks join the backbones.
//!
//! A sweep is a DAG ([`plan`]): pretext runs, then one extraction per (checkpoint, split)
//! that several cells share, then one job per (backbone, task) cell, then a collect job that
//! writes the tables. The local executor ([`local`]) runs it on this machine, in N processes
//! with `--jobs N`; the Slurm executor ([`slurm`]) submits it as `sbatch` array jobs. Both
//! run each job as `sslbench sweep FILE --job ID` ([`job`]); [`status`] says where each cell
//! stands.

pub mod collect;
pub mod file;
pub mod job;
pub mod local;
pub mod plan;
pub mod slurm;
pub mod status;

pub use job::JobId;
pub use plan::Plan;

use anyhow::{bail, Result};
use candle_core::Device;
use std::ffi::OsString;
use std::path::{Path, PathBuf};

/// Where the sweep's jobs run.
#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum)]
pub enum Executor {
    /// On this machine (`--jobs N` processes).
    Local,
    /// Through Slurm's `sbatch`.
    Slurm,
}

/// What the sweep does.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Action {
    /// Run (or submit) every job; with `resume`, only what is not done.
    Run {
        /// Skip the cells whose results are done.
        resume: bool,
        /// Print the sbatch scripts instead of submitting them.
        dry_run: bool,
    },
    /// Print every cell's state.
    Status,
    /// Run one job of the DAG here.
    Job(JobId),
}

/// One sweep as the command line asks for it.
pub struct SweepRequest<'a> {
    /// The sweep file.
    pub file: &'a Path,
    /// The feature cache folder (default: the user's cache).
    pub cache: Option<PathBuf>,
    /// The device as given (`cpu`, `cuda:N`); jobs get it as it is.
    pub device_name: String,
    /// The device every run uses.
    pub device: Device,
    /// Overrides applied to every run, after the sweep file's `sets` (`slurm.*` ones go to
    /// its `[slurm]` section).
    pub sets: &'a [String],
    /// Folder of the results.
    pub out: &'a Path,
    /// Folder of the pretext runs of `[[pretrain]]` entries.
    pub runs: &'a Path,
    /// Where the jobs run.
    pub executor: Executor,
    /// Local processes at once.
    pub jobs: usize,
    /// What to do.
    pub action: Action,
}

/// What every job of a sweep shares: the flags a job process is started with.
pub struct Context {
    /// The sweep file.
    pub file: PathBuf,
    /// The feature cache folder.
    pub cache: Option<PathBuf>,
    /// The device's name.
    pub device_name: String,
    /// The device.
    pub device: Device,
    /// The command line's overrides.
    pub sets: Vec<String>,
    /// Folder of the results.
    pub out: PathBuf,
    /// Folder of the pretext runs.
    pub runs: PathBuf,
}

impl Context {
    /// `sweep FILE --out ... --runs ... --device ... [--cache ...] [--set ...]`: the arguments
    /// of a job process, before `--job ID`. Paths are made absolute.
    pub fn job_args(&self) -> Vec<OsString> {
        let abs = |p: &Path| std::path::absolute(p).unwrap_or_else(|_| p.to_path_buf());
        let mut args: Vec<OsString> = vec!["sweep".into(), abs(&self.file).into()];
        args.extend(["--out".into(), abs(&self.out).into()]);
        args.extend(["--runs".into(), abs(&self.runs).into()]);
        args.extend(["--device".into(), self.device_name.clone().into()]);
        if let Some(c) = &self.cache {
            args.extend(["--cache".into(), abs(c).into()]);
        }
        for s in &self.sets {
            args.extend(["--set".into(), s.into()]);
        }
        args
    }
}

/// Runs, submits, or reports on a sweep.
pub fn run(args: SweepRequest) -> Result<()> {
    let plan = Plan::read(args.file, args.sets, args.runs)?;
    let ctx = Context {
        file: args.file.to_path_buf(),
        cache: args.cache,
        device_name: args.device_name,
        device: args.device,
        sets: args.sets.to_vec(),
        out: args.out.to_path_buf(),
        runs: args.runs.to_path_buf(),
    };
    let resume = match args.action {
        Action::Job(id) => return job::run(&plan, &ctx, id),
        Action::Status => {
            let jobs = status::read_jobs(&plan, &ctx.out)?;
            let ids: Vec<String> = jobs.values().cloned().collect();
            let scheduler = slurm::states(&ids)?;
            let states = status::states(&plan, &ctx.out, &scheduler)?;
            status::print(&plan, &states);
            return Ok(());
        }
        Action::Run { resume, dry_run } => {
            if dry_run && args.executor != Executor::Slurm {
                bail!("--dry-run prints sbatch scripts: add --executor slurm");
            }
            if let Some(note) = &plan.note {
                eprintln!("{note}");
            }
            (resume, dry_run)
        }
    };
    let (resume, dry_run) = resume;
    let todo: Vec<usize> = (0..plan.cells.len())
        .filter(|&i| !resume || !status::is_done(&plan.cells[i], &ctx.out))
        .collect();
    let needs = |pick: &dyn Fn(&plan::Cell) -> Vec<usize>| -> Vec<usize> {
        let mut v: Vec<usize> = todo.iter().flat_map(|&i| pick(&plan.cells[i])).collect();
        v.sort();
        v.dedup();
        v
    };
    let pretrain = needs(&|c| c.pretrain.into_iter().collect());
    let extracts = needs(&|c| c.extracts.clone());
    eprintln!(
        "sweep {}: {} pretext runs, {} extractions, {} of {} cells, then collect",
        args.file.display(),
        pretrain.len(),
        extracts.len(),
        todo.len(),
        plan.cells.len()
    );
    match args.executor {
        Executor::Slurm => {
            let stage = |kind, indices| slurm::Stage { kind, indices };
            let stages = [
                stage("pretrain", pretrain),
                stage("extract", extracts),
                stage("cell", todo),
                stage("collect", Vec::new()),
            ];
            slurm::submit(&plan, &ctx, &stages, dry_run)
        }
        Executor::Local => {
            let stages = vec![
                pretrain.into_iter().map(JobId::Pretrain).collect(),
                extracts.into_iter().map(JobId::Extract).collect(),
                todo.into_iter().map(JobId::Cell).collect(),
                vec![JobId::Collect],
            ];
            local::run(&plan, &ctx, &stages, args.jobs)?;
            eprintln!(
                "{} cells written to {}; compare them with `sslbench table {}/*.json`",
                plan.cells.len(),
                ctx.out.display(),
                ctx.out.display()
            );
            Ok(())
        }
    }
}
