//! Reports: the results JSON, tables beside the paper's numbers, and plots.

pub mod result;

pub use result::{CacheRef, Metric, RunResult, Spread, RESULT_SCHEMA};

use anyhow::Result;
use std::path::Path;

/// Writes `<out>/<run>.json` atomically (tables and plots: being written).
pub fn write_run(result: &RunResult, out: &Path) -> Result<()> {
    let path = out.join(format!("{}.json", result.run));
    crate::features::partial::write_atomic(
        &path,
        serde_json::to_string_pretty(result)?.as_bytes(),
    )?;
    println!("wrote {}", path.display());
    Ok(())
}
