//! `task = "linear_probe"` (being written).

use super::{RunContext, TaskOutput};
use anyhow::{bail, Result};

/// Runs the task.
pub fn run(_ctx: &RunContext) -> Result<TaskOutput> {
    bail!("task linear_probe is not implemented yet")
}
