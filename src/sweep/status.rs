//! Where each cell of a sweep stands: done (its results JSON exists and matches the plan),
//! or what the scheduler says of its job (running, pending, failed with its log), or not
//! submitted. The job ids of the last submission are kept in `<out>/.sweep/<name>/jobs.json`.

use super::collect::result_path;
use super::plan::{stem, Cell, Plan};
use crate::atomic::write_atomic;
use crate::report::RunResult;
use anyhow::{Context, Result};
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

/// The state of one cell.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum CellState {
    /// Its results JSON exists and matches the plan.
    Done,
    /// Its job runs (the scheduler's job id).
    Running(String),
    /// Its job waits (the scheduler's job id).
    Pending(String),
    /// Its job ended without results (the scheduler's state and the job's log).
    Failed(String, PathBuf),
    /// Not submitted, or the scheduler no longer knows the job.
    NotSubmitted,
}

impl std::fmt::Display for CellState {
    fn fmt(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
        match self {
            CellState::Done => write!(f, "done"),
            CellState::Running(id) => write!(f, "running (job {id})"),
            CellState::Pending(id) => write!(f, "pending (job {id})"),
            CellState::Failed(state, log) => write!(f, "failed: {state} (log {})", log.display()),
            CellState::NotSubmitted => write!(f, "not submitted"),
        }
    }
}

/// Whether a cell's results JSON exists and was written by the plan's task on its backbone.
pub fn is_done(cell: &Cell, out: &Path) -> bool {
    RunResult::read(&result_path(out, &cell.run)).is_ok_and(|r| {
        r.run == cell.run && r.task == stem(&cell.task) && r.backbone_name == stem(&cell.backbone)
    })
}

/// The sweep's bookkeeping folder: job ids, scripts and logs.
pub fn state_dir(plan: &Plan, out: &Path) -> PathBuf {
    out.join(".sweep").join(stem(&plan.file))
}

/// The job ids of the last submission, by job (`cell:3` → `1234_3`).
pub fn read_jobs(plan: &Plan, out: &Path) -> Result<BTreeMap<String, String>> {
    let path = state_dir(plan, out).join("jobs.json");
    match std::fs::read_to_string(&path) {
        Ok(text) => serde_json::from_str(&text)
            .with_context(|| format!("{} is not a job list: remove it", path.display())),
        Err(_) => Ok(BTreeMap::new()),
    }
}

/// Records submitted job ids beside the earlier ones.
pub fn write_jobs(plan: &Plan, out: &Path, jobs: &BTreeMap<String, String>) -> Result<()> {
    let mut all = read_jobs(plan, out)?;
    all.extend(jobs.iter().map(|(k, v)| (k.clone(), v.clone())));
    let path = state_dir(plan, out).join("jobs.json");
    write_atomic(&path, serde_json::to_string_pretty(&all)?.as_bytes())
}

/// Every cell's state; `scheduler` maps a job id to its state (`RUNNING`, `PENDING`,
/// `FAILED`, ...) when a scheduler was asked.
pub fn states(
    plan: &Plan,
    out: &Path,
    scheduler: &BTreeMap<String, String>,
) -> Result<Vec<CellState>> {
    let jobs = read_jobs(plan, out)?;
    let logs = state_dir(plan, out).join("logs");
    Ok(plan
        .cells
        .iter()
        .enumerate()
        .map(|(i, cell)| {
            if is_done(cell, out) {
                return CellState::Done;
            }
            let Some(id) = jobs.get(&format!("cell:{i}")) else {
                return CellState::NotSubmitted;
            };
            match scheduler.get(id).map(String::as_str) {
                Some("RUNNING" | "COMPLETING") => CellState::Running(id.clone()),
                Some("PENDING" | "REQUEUED" | "CONFIGURING") => CellState::Pending(id.clone()),
                Some(state) => {
                    CellState::Failed(state.to_string(), logs.join(format!("cell-{i}.log")))
                }
                None => CellState::NotSubmitted,
            }
        })
        .collect())
}

/// Prints one line per cell.
pub fn print(plan: &Plan, states: &[CellState]) {
    for (i, (cell, state)) in plan.cells.iter().zip(states).enumerate() {
        println!("{i:>4}  {:<40} {state}", cell.run);
    }
    let done = states.iter().filter(|s| **s == CellState::Done).count();
    println!("{done}/{} cells done", states.len());
}
