//! `task = "lowshot"` (being written).

use super::{RunContext, TaskOutput};
use anyhow::{bail, Result};

/// Runs the task.
pub fn run(_ctx: &RunContext) -> Result<TaskOutput> {
    bail!("task lowshot is not implemented yet")
}
