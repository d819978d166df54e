//! `sslbench run tasks/<task>.toml`: a task config in, a results JSON (and a Markdown table)
//! out. The `task` field picks the implementation.

use super::setup::BackboneArgs;
use crate::config;
use crate::features::extract::Extracted;
use anyhow::{bail, Context, Result};
use clap::Args;
use serde_json::json;
use std::path::{Path, PathBuf};
use std::time::Instant;

/// Version of the results JSON layout.
pub const RESULT_SCHEMA: &str = "sslbench.result/1";

/// Arguments of `sslbench run`.
#[derive(Args)]
pub struct RunArgs {
    /// Task TOML (tasks/<task>.toml).
    task: PathBuf,
    #[command(flatten)]
    common: BackboneArgs,
    /// Folder for results/<run>.json and its tables.
    #[arg(long, default_value = "results")]
    out: PathBuf,
}

/// Runs `sslbench run`.
pub fn run(args: RunArgs) -> Result<()> {
    let task = config::read_table(&args.task)?;
    let setup = args.common.setup(Some(task))?;
    let kind = setup
        .doc
        .get("task")
        .and_then(|t| t.as_str())
        .with_context(|| format!("{} has no `task = \"...\"` field", args.task.display()))?
        .to_string();
    let started = Instant::now();
    let default_taps = setup
        .doc
        .get("taps")
        .and_then(|t| t.as_str())
        .map(str::to_string);
    let taps = args.common.taps(default_taps.as_deref())?;
    let body = match kind.as_str() {
        "features" => {
            let specs: Vec<String> = match setup.doc.get("data").and_then(|d| d.get("spec")) {
                Some(toml::Value::String(s)) => vec![s.clone()],
                Some(v) => v.clone().try_into().context("data.spec must be a SPEC or a list of them")?,
                None => bail!("set the dataset: --set data.spec=voc:ROOT:SPLIT (or imagefolder:, coco:, list:)"),
            };
            let mut datasets = Vec::new();
            for spec in specs {
                let (dataset, entries) = setup.features(&spec, &taps)?;
                datasets.push(json!({
                    "spec": spec,
                    "images": dataset.samples.len(),
                    "classes": dataset.classes,
                    "entries": entries.iter().map(entry_json).collect::<Vec<_>>(),
                }));
            }
            json!({ "datasets": datasets })
        }
        other => bail!("unknown task `{other}` in {}", args.task.display()),
    };
    let name = format!("{}_{}", stem(&args.task), stem(&args.common.backbone));
    let result = json!({
        "schema": RESULT_SCHEMA,
        "run": name,
        "task": kind,
        "task_file": args.task,
        "backbone": setup.backbone,
        "config": setup.doc,
        "taps": taps.iter().map(|t| t.name()).collect::<Vec<_>>(),
        "result": body,
        "timings": { "total_s": started.elapsed().as_secs_f64() },
    });
    std::fs::create_dir_all(&args.out)?;
    let path = args.out.join(format!("{name}.json"));
    crate::features::partial::write_atomic(
        &path,
        serde_json::to_string_pretty(&result)?.as_bytes(),
    )?;
    println!("wrote {}", path.display());
    Ok(())
}

fn entry_json(e: &Extracted) -> serde_json::Value {
    json!({
        "tap": e.tap.name(),
        "cache_key": e.key,
        "digest": e.key.digest(),
        "path": e.path,
        "status": e.status.to_string(),
    })
}

fn stem(p: &Path) -> String {
    p.file_stem()
        .and_then(|s| s.to_str())
        .unwrap_or("run")
        .to_string()
}
