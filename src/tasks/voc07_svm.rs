//! `task = "voc07_svm"` (being written).

use super::{RunContext, TaskOutput};
use anyhow::{bail, Result};

/// Runs the task.
pub fn run(_ctx: &RunContext) -> Result<TaskOutput> {
    bail!("task voc07_svm is not implemented yet")
}
