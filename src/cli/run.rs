//! `sslbench run tasks/<task>.toml`: a task config in, `results/<task>_<backbone>.json` (and
//! its tables) out. The `task` field of the file picks the implementation.

use super::setup::BackboneArgs;
use crate::config;
use crate::report::{RunResult, RESULT_SCHEMA};
use crate::tasks::{self, RunContext, TaskOutput};
use anyhow::{bail, Context, Result};
use clap::Args;
use std::path::{Path, PathBuf};
use std::time::Instant;

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
    let result = run_task(&args.task, &args.common, &args.out)?;
    crate::report::write_run(&result, &args.out)?;
    Ok(())
}

/// Runs one task file on one backbone and returns its result (not yet written).
pub fn run_task(task_file: &Path, common: &BackboneArgs, out: &Path) -> Result<RunResult> {
    let task = config::read_layered(task_file)?;
    let setup = common.setup(Some(task))?;
    let kind = setup
        .doc
        .get("task")
        .and_then(|t| t.as_str())
        .with_context(|| format!("{} has no `task = \"...\"` field", task_file.display()))?
        .to_string();
    let started = Instant::now();
    let default_taps = setup
        .doc
        .get("taps")
        .and_then(|t| t.as_str())
        .map(str::to_string);
    let taps = common.taps(default_taps.as_deref())?;
    let task_name = stem(task_file);
    let backbone_name = stem(&common.backbone);
    let name = format!("{task_name}_{backbone_name}");
    std::fs::create_dir_all(out)
        .with_context(|| format!("cannot create the results folder {}", out.display()))?;
    let ctx = RunContext {
        setup: &setup,
        taps: &taps,
        out: out.to_path_buf(),
        run: name.clone(),
    };
    let output: TaskOutput = match kind.as_str() {
        "features" => tasks::features::run(&ctx)?,
        "svm" => tasks::voc07_svm::run(&ctx)?,
        "lowshot" => tasks::lowshot::run(&ctx)?,
        "linear_probe" => tasks::linear_probe::run(&ctx)?,
        "navigation" => crate::nav::run(&ctx)?,
        other => bail!(
            "unknown task `{other}` in {}: use features, svm, lowshot, linear_probe or navigation",
            task_file.display()
        ),
    };
    let mut timings = output.timings;
    timings.insert("total_s".into(), started.elapsed().as_secs_f64().into());
    Ok(RunResult {
        schema: RESULT_SCHEMA.to_string(),
        run: name,
        task: task_name,
        kind,
        task_file: task_file.to_path_buf(),
        backbone_name,
        arch: setup.backbone.family()?.0.name().to_string(),
        paper_row: setup.backbone.paper_row.clone(),
        backbone: serde_json::to_value(&setup.backbone)?,
        config: serde_json::to_value(&setup.doc)?,
        taps: taps.iter().map(|t| t.name().to_string()).collect(),
        cache: output.cache,
        metrics: output.metrics,
        details: output.details,
        timings: timings.into(),
    })
}

fn stem(p: &Path) -> String {
    p.file_stem()
        .and_then(|s| s.to_str())
        .unwrap_or("run")
        .to_string()
}
