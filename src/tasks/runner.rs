//! Running one task file on one backbone: the typed header, the section check, the
//! registry's dispatch, and the [`RunResult`] the report writes.

use super::{RunContext, Setup, TaskHeader, TaskOutput};
use crate::backbone::Tap;
use crate::config;
use crate::report::{Provenance, RunResult, RESULT_SCHEMA};
use anyhow::{bail, Context, Result};
use candle_core::Device;
use std::path::{Path, PathBuf};
use std::time::Instant;

/// One run as the command line asks for it.
pub struct RunRequest<'a> {
    /// The task file (`tasks/<task>.toml`).
    pub task_file: &'a Path,
    /// The backbone file.
    pub backbone: &'a Path,
    /// `--taps`, over the task's `taps`.
    pub taps: Option<&'a str>,
    /// `--set KEY=VALUE` overrides (`backbone.*` ones go to the backbone).
    pub sets: &'a [String],
    /// The device.
    pub device: Device,
    /// The feature cache folder (default: [`crate::features::FeatureStore::default_root`]).
    pub cache: Option<PathBuf>,
    /// The results folder.
    pub out: &'a Path,
}

/// The taps asked for: `--taps`, else the task's `taps`.
pub fn taps(flag: Option<&str>, default: Option<&str>) -> Result<Vec<Tap>> {
    match flag.or(default) {
        Some(list) => Tap::parse_list(list),
        None => bail!("name the taps: --taps conv1,res2,res3,res4,res5"),
    }
}

/// Runs one task file on one backbone and returns its result (not yet written).
pub fn run_file(req: RunRequest) -> Result<RunResult> {
    let task = config::read_layered(req.task_file)?;
    let setup = Setup::resolve(req.backbone, Some(task), req.sets, req.device, req.cache)?;
    let header = TaskHeader::of(&setup.doc)
        .with_context(|| format!("in task file {}", req.task_file.display()))?;
    let started = Instant::now();
    let provenance = Provenance::here(&setup.device, setup.backbone.weights_digest()?);
    let taps = taps(req.taps, header.taps.as_deref())?;
    let task_name = stem(req.task_file);
    let backbone_name = stem(req.backbone);
    let name = format!("{task_name}_{backbone_name}");
    std::fs::create_dir_all(req.out)
        .with_context(|| format!("cannot create the results folder {}", req.out.display()))?;
    let ctx = RunContext {
        setup: &setup,
        taps: &taps,
        out: req.out.to_path_buf(),
        run: name.clone(),
    };
    let output: TaskOutput = header.task.run(&ctx)?;
    let mut timings = output.timings;
    timings.insert("total_s".into(), started.elapsed().as_secs_f64().into());
    Ok(RunResult {
        schema: RESULT_SCHEMA.to_string(),
        run: name,
        task: task_name,
        kind: header.task.name().to_string(),
        task_file: req.task_file.to_path_buf(),
        backbone_name,
        arch: setup.backbone.family()?.0.name().to_string(),
        paper_row: setup.backbone.paper_row.clone(),
        backbone: serde_json::to_value(&setup.backbone)?,
        config: serde_json::to_value(&setup.doc)?,
        taps: taps.iter().map(|t| t.name().to_string()).collect(),
        cache: output.cache,
        metrics: output.metrics,
        tables: output.tables,
        details: output.details,
        timings: timings.into(),
        provenance: Some(provenance),
    })
}

fn stem(p: &Path) -> String {
    p.file_stem()
        .and_then(|s| s.to_str())
        .unwrap_or("run")
        .to_string()
}
