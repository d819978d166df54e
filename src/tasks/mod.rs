//! The downstream tasks. Each reads a task config (`tasks/<name>.toml`, merged into
//! [`Setup::doc`]) and the cached features of its taps, and returns a [`TaskOutput`].

pub mod features;
pub mod linear_probe;
pub mod lowshot;
mod setup;
pub mod voc07_svm;

pub use setup::Setup;

use crate::backbone::Tap;
use crate::features::extract::Extracted;
use crate::report::{CacheRef, Metric};
use std::path::PathBuf;

/// What a task hands back to `sslbench run`, which wraps it in a [`crate::report::RunResult`].
#[derive(Debug, Default)]
pub struct TaskOutput {
    /// The numbers the tables show.
    pub metrics: Vec<Metric>,
    /// Task-specific detail for the results JSON.
    pub details: serde_json::Value,
    /// The cache entries read.
    pub cache: Vec<CacheRef>,
    /// Task-specific timings (seconds by phase).
    pub timings: serde_json::Map<String, serde_json::Value>,
}

/// Where a task run writes and what it runs on.
pub struct RunContext<'a> {
    /// Backbone, config, device, cache.
    pub setup: &'a Setup,
    /// The taps asked for.
    pub taps: &'a [Tap],
    /// Folder of the results (plots go beside the JSON).
    pub out: PathBuf,
    /// The run's name, `<task>_<backbone>`.
    pub run: String,
}

/// The cache reference of an extracted entry.
pub fn cache_ref(spec: &str, e: &Extracted) -> CacheRef {
    CacheRef {
        tap: e.tap.name().to_string(),
        spec: spec.to_string(),
        digest: e.key.digest(),
        status: e.status.to_string(),
    }
}

/// The dataset SPEC `data.<key>` of a task config, with `{root}` replaced by `data.root`.
pub fn data_spec(doc: &toml::Table, key: &str) -> anyhow::Result<String> {
    use anyhow::Context;
    let data = doc.get("data").and_then(|d| d.as_table());
    let spec = data
        .and_then(|d| d.get(key))
        .and_then(|s| s.as_str())
        .with_context(|| format!("the task file sets no data.{key} (a dataset SPEC)"))?;
    match data.and_then(|d| d.get("root")).and_then(|r| r.as_str()) {
        Some(root) => Ok(spec.replace("{root}", root)),
        None if spec.contains("{root}") => {
            anyhow::bail!("data.{key} = \"{spec}\" needs data.root: --set data.root=DIR")
        }
        None => Ok(spec.to_string()),
    }
}
