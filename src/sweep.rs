//! Sweeps (`configs/sweeps/<name>.toml`): every task on every backbone, one results file per
//! pair. Pretext runs listed under `[[pretrain]]` (alone or as a grid over the paper's axes)
//! are trained first, or resumed when already done, and their trunks join the backbones.
//! Extraction goes through the feature cache, so each (checkpoint, tap, split) is computed
//! once however many tasks read it.

use crate::config;
use crate::pretext::config::PretextConfig;
use crate::tasks::{run_file, RunRequest};
use anyhow::{Context, Result};
use candle_core::Device;
use serde::Deserialize;
use std::path::{Path, PathBuf};

/// One sweep as the command line asks for it.
pub struct SweepRequest<'a> {
    /// The sweep file.
    pub file: &'a Path,
    /// The feature cache folder (default: the user's cache).
    pub cache: Option<PathBuf>,
    /// The device every run uses.
    pub device: Device,
    /// Overrides applied to every run, after the sweep file's `sets`.
    pub sets: &'a [String],
    /// Folder of the results.
    pub out: &'a Path,
    /// Folder of the pretext runs of `[[pretrain]]` entries.
    pub runs: &'a Path,
}

/// A pretext run of a sweep, or a grid of them.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct PretrainEntry {
    /// The pretext config.
    config: PathBuf,
    /// Run name (default: the config's stem); grid points append `_<key>-<value>`.
    #[serde(default)]
    name: Option<String>,
    /// `KEY=VALUE` overrides of the pretext config.
    #[serde(default)]
    sets: Vec<String>,
    /// Axes to sweep: `{ "data.subset" = [1000, 5000], "model.width" = [0.125, 0.25] }`;
    /// every combination is one run.
    #[serde(default)]
    grid: std::collections::BTreeMap<String, Vec<toml::Value>>,
}

impl PretrainEntry {
    /// Every (name, overrides) point of the entry.
    fn points(&self) -> Vec<(String, Vec<String>)> {
        let base = self.name.clone().unwrap_or_else(|| {
            self.config
                .file_stem()
                .map(|s| s.to_string_lossy().into_owned())
                .unwrap_or_default()
        });
        let mut points = vec![(base, self.sets.clone())];
        for (key, values) in &self.grid {
            points = points
                .into_iter()
                .flat_map(|(name, sets)| {
                    values.iter().map(move |v| {
                        let text = match v {
                            toml::Value::String(s) => s.clone(),
                            other => other.to_string(),
                        };
                        let short = key.rsplit('.').next().unwrap_or(key);
                        let mut sets = sets.clone();
                        sets.push(format!("{key}={v}"));
                        (format!("{name}_{short}-{text}"), sets)
                    })
                })
                .collect();
        }
        points
    }
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
    /// Pretext runs whose trunks join `backbones`.
    #[serde(default)]
    pretrain: Vec<PretrainEntry>,
    /// Printed before the runs start (e.g. how a demo is scaled down from the paper).
    #[serde(default)]
    note: Option<String>,
}

/// Runs a sweep: its pretext runs, then every (backbone, task) pair, writing each result.
pub fn run(args: SweepRequest) -> Result<()> {
    let sweep: Sweep = toml::Value::Table(config::read_table(args.file)?)
        .try_into()
        .with_context(|| format!("invalid sweep file {}", args.file.display()))?;
    let base = args.file.parent().unwrap_or(Path::new("."));
    let locate = |p: &PathBuf| -> PathBuf {
        if p.exists() {
            p.clone()
        } else {
            base.join(p)
        }
    };
    if let Some(note) = &sweep.note {
        eprintln!("{note}");
    }
    let mut sets = sweep.sets.clone();
    sets.extend(args.sets.iter().cloned());
    let mut backbones: Vec<PathBuf> = sweep.backbones.iter().map(locate).collect();
    for entry in &sweep.pretrain {
        let config = locate(&entry.config);
        for (name, overrides) in entry.points() {
            let out = args.runs.join(&name);
            eprintln!(
                "pretraining {name} ({}) into {}",
                config.display(),
                out.display()
            );
            let cfg = PretextConfig::read(&config, &overrides)?;
            let summary = crate::pretext::run::pretrain(&cfg, &out, &args.device, true)
                .with_context(|| format!("sweep pretext run {name}"))?;
            println!("{}", summary.describe(&out));
            backbones.push(summary.backbone);
        }
    }
    let total = backbones.len() * sweep.tasks.len();
    let mut done = 0;
    for backbone in &backbones {
        for task in &sweep.tasks {
            done += 1;
            let task = locate(task);
            eprintln!(
                "[{done}/{total}] {} on {}",
                task.display(),
                backbone.display()
            );
            let request = RunRequest {
                task_file: &task,
                backbone,
                taps: sweep.taps.as_deref(),
                sets: &sets,
                device: args.device.clone(),
                cache: args.cache.clone(),
                out: args.out,
            };
            let result = run_file(request).with_context(|| {
                format!("sweep run {} on {}", task.display(), backbone.display())
            })?;
            crate::report::write_run(&result, args.out)?;
        }
    }
    eprintln!(
        "{total} runs written to {}; compare them with `sslbench table {}/*.json`",
        args.out.display(),
        args.out.display()
    );
    Ok(())
}
