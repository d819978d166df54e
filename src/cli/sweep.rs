//! `sslbench sweep configs/sweeps/<name>.toml`: every task on every backbone, one results
//! file per pair. Extraction goes through the feature cache, so each (checkpoint, tap,
//! split) is computed once however many tasks read it.

use super::run::run_task;
use super::setup::BackboneArgs;
use crate::config;
use anyhow::{Context, Result};
use clap::Args;
use serde::Deserialize;
use std::path::{Path, PathBuf};

/// Arguments of `sslbench sweep`.
#[derive(Args)]
pub struct SweepArgs {
    /// Sweep TOML: `backbones = [...]`, `tasks = [...]`, optional `taps`, `sets`.
    sweep: PathBuf,
    /// Feature cache folder [default: $SSLBENCH_CACHE, else the user's cache dir].
    #[arg(long)]
    cache: Option<PathBuf>,
    /// `cpu` or `cuda:N`.
    #[arg(long, default_value = "cpu")]
    device: String,
    /// Overrides applied to every run (after the sweep file's `sets`).
    #[arg(long = "set", value_name = "KEY=VALUE")]
    sets: Vec<String>,
    /// Folder for the results.
    #[arg(long, default_value = "results")]
    out: PathBuf,
}

/// A sweep file.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct Sweep {
    /// Backbone configs (relative to the sweep file's folder or the working directory).
    backbones: Vec<PathBuf>,
    /// Task files.
    tasks: Vec<PathBuf>,
    /// Taps for every task (default: each task's own).
    #[serde(default)]
    taps: Option<String>,
    /// `KEY=VALUE` overrides for every run.
    #[serde(default)]
    sets: Vec<String>,
}

/// Runs `sslbench sweep`.
pub fn run(args: SweepArgs) -> Result<()> {
    let sweep: Sweep = toml::Value::Table(config::read_table(&args.sweep)?)
        .try_into()
        .with_context(|| format!("invalid sweep file {}", args.sweep.display()))?;
    let base = args.sweep.parent().unwrap_or(Path::new("."));
    let locate = |p: &PathBuf| -> PathBuf {
        if p.exists() {
            p.clone()
        } else {
            base.join(p)
        }
    };
    let mut sets = sweep.sets.clone();
    sets.extend(args.sets.iter().cloned());
    let total = sweep.backbones.len() * sweep.tasks.len();
    let mut done = 0;
    for backbone in &sweep.backbones {
        for task in &sweep.tasks {
            done += 1;
            let (backbone, task) = (locate(backbone), locate(task));
            eprintln!(
                "[{done}/{total}] {} on {}",
                task.display(),
                backbone.display()
            );
            let common = BackboneArgs {
                backbone: backbone.clone(),
                taps: sweep.taps.clone(),
                cache: args.cache.clone(),
                device: args.device.clone(),
                sets: sets.clone(),
            };
            let result = run_task(&task, &common, &args.out).with_context(|| {
                format!("sweep run {} on {}", task.display(), backbone.display())
            })?;
            crate::report::write_run(&result, &args.out)?;
        }
    }
    eprintln!(
        "{total} runs written to {}; compare them with `sslbench table {}/*.json`",
        args.out.display(),
        args.out.display()
    );
    Ok(())
}
