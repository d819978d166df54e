//! The sweep file (`configs/sweeps/<name>.toml`) as written: backbones, tasks, taps, sets,
//! `[[pretrain]]` entries and the `[slurm]` section.

use crate::config;
use anyhow::{Context, Result};
use serde::Deserialize;
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

/// A pretext run of a sweep, or a grid of them.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PretrainEntry {
    /// The pretext config.
    pub config: PathBuf,
    /// Run name (default: the config's stem); grid points append `_<key>-<value>`.
    #[serde(default)]
    pub name: Option<String>,
    /// `KEY=VALUE` overrides of the pretext config.
    #[serde(default)]
    pub sets: Vec<String>,
    /// Axes to sweep: `{ "data.subset" = [1000, 5000], "model.width" = [0.125, 0.25] }`;
    /// every combination is one run.
    #[serde(default)]
    pub grid: BTreeMap<String, Vec<toml::Value>>,
}

impl PretrainEntry {
    /// Every (name, overrides) point of the entry.
    pub fn points(&self) -> Vec<(String, Vec<String>)> {
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

/// The `[slurm]` section: what every `sbatch` script of the sweep asks for.
#[derive(Clone, Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SlurmSection {
    /// `--partition`.
    #[serde(default)]
    pub partition: Option<String>,
    /// `--account`.
    #[serde(default)]
    pub account: Option<String>,
    /// `--time` of each job (`HH:MM:SS` or `D-HH:MM`).
    #[serde(default)]
    pub time: Option<String>,
    /// `--cpus-per-task`.
    #[serde(default)]
    pub cpus: Option<u32>,
    /// `--mem` (e.g. `16G`).
    #[serde(default)]
    pub memory: Option<String>,
    /// `--gpus-per-task`.
    #[serde(default)]
    pub gpus: Option<u32>,
    /// Extra `#SBATCH` lines, written as they are (without the `#SBATCH ` prefix).
    #[serde(default)]
    pub extra: Vec<String>,
    /// The most array tasks running at once (`--array=...%N`).
    #[serde(default)]
    pub max_array: Option<u32>,
}

/// A sweep file.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SweepFile {
    /// Backbone configs (relative to the sweep file's folder or the working directory).
    pub backbones: Vec<PathBuf>,
    /// Task files.
    pub tasks: Vec<PathBuf>,
    /// Taps for every task (default: each task's own).
    #[serde(default)]
    pub taps: Option<String>,
    /// `KEY=VALUE` overrides for every run.
    #[serde(default)]
    pub sets: Vec<String>,
    /// Pretext runs whose trunks join `backbones`.
    #[serde(default)]
    pub pretrain: Vec<PretrainEntry>,
    /// Printed before the runs start (e.g. how a demo is scaled down from the paper).
    #[serde(default)]
    pub note: Option<String>,
    /// What `--executor slurm` asks the scheduler for.
    #[serde(default)]
    pub slurm: SlurmSection,
}

impl SweepFile {
    /// Reads a sweep file; `slurm.*` overrides among `sets` go to its `[slurm]` section, the
    /// others are returned for the runs.
    pub fn read(path: &Path, sets: &[String]) -> Result<(SweepFile, Vec<String>)> {
        let mut table = config::read_table(path)?;
        let (slurm, runs): (Vec<String>, Vec<String>) =
            sets.iter().cloned().partition(|s| s.starts_with("slurm."));
        config::set_all(&mut table, &slurm)
            .with_context(|| format!("in a --set slurm.* override of {}", path.display()))?;
        let sweep: SweepFile = toml::Value::Table(table).try_into().with_context(|| {
            format!(
                "invalid sweep file {} (fields: backbones, tasks, taps, sets, note, \
                 [[pretrain]], [slurm] with partition, account, time, cpus, memory, gpus, \
                 extra, max_array)",
                path.display()
            )
        })?;
        Ok((sweep, runs))
    }
}
