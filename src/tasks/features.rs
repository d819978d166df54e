//! `task = "features"`: only fill the cache for the taps on one or more datasets.

use super::{cache_ref, RunContext, TaskOutput};
use anyhow::Result;
use serde_json::json;

/// The sections this task reads besides the shared ones.
pub const SECTIONS: &[&str] = &[];

/// Extracts (or finds) the entries of every tap on every `data.spec`.
pub fn run(ctx: &RunContext) -> Result<TaskOutput> {
    let specs = ctx.setup.data().specs("spec")?;
    let mut out = TaskOutput::default();
    let mut datasets = Vec::new();
    for spec in specs {
        let (dataset, entries) = ctx.setup.features(&spec, ctx.taps)?;
        out.cache
            .extend(entries.iter().map(|e| cache_ref(&spec, e)));
        datasets.push(json!({
            "spec": spec,
            "images": dataset.samples.len(),
            "classes": dataset.classes,
            "entries": entries.iter().map(|e| json!({
                "tap": e.tap.name(), "cache_key": e.key, "digest": e.key.digest(), "path": e.path,
                "status": e.status.to_string(),
            })).collect::<Vec<_>>(),
        }));
    }
    out.details = json!({ "datasets": datasets });
    Ok(out)
}
