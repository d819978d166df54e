//! A sweep as a DAG of jobs: pretext runs, then one extraction per (checkpoint, split) that
//! cells share, then one job per (backbone, task) cell, then the collect job. Planning reads
//! every file the jobs will read, so a missing backbone or task file fails before anything
//! runs or is submitted.

use super::file::{SlurmSection, SweepFile};
use crate::config;
use crate::pretext::config::PretextConfig;
use crate::tasks::{TaskHeader, TaskKind, SHARED_SECTIONS};
use anyhow::{bail, Context, Result};
use std::path::{Path, PathBuf};

/// A pretext run of the sweep.
pub struct PretrainJob {
    /// Run name (its folder under the runs folder).
    pub name: String,
    /// The pretext config.
    pub config: PathBuf,
    /// Its overrides.
    pub overrides: Vec<String>,
    /// The run's folder.
    pub out: PathBuf,
}

/// The extraction of one split on one checkpoint, which several cells read.
pub struct ExtractJob {
    /// The backbone file.
    pub backbone: PathBuf,
    /// A task file whose extraction protocol the split uses (the first cell that reads it).
    pub task: PathBuf,
    /// The dataset spec (`data.train` or `data.test`, `{root}` replaced).
    pub spec: String,
    /// The pretext run that writes the backbone, if any.
    pub pretrain: Option<usize>,
    /// The overrides of the task.
    pub sets: Vec<String>,
}

/// One (backbone, task) cell: one results JSON.
pub struct Cell {
    /// The backbone file.
    pub backbone: PathBuf,
    /// The task file.
    pub task: PathBuf,
    /// The run name, `<task>_<backbone>` (the results JSON's stem).
    pub run: String,
    /// The pretext run that writes the backbone, if any.
    pub pretrain: Option<usize>,
    /// The extraction jobs the cell reads.
    pub extracts: Vec<usize>,
    /// The sweep's overrides this task reads (see [`task_sets`]).
    pub sets: Vec<String>,
}

/// Every job of a sweep, in the order they run.
pub struct Plan {
    /// The sweep file.
    pub file: PathBuf,
    /// Taps for every task (default: each task's own).
    pub taps: Option<String>,
    /// Overrides for every run: the file's `sets`, then the command line's.
    pub sets: Vec<String>,
    /// The sweep file's note.
    pub note: Option<String>,
    /// The `[slurm]` section, with `--set slurm.*` applied.
    pub slurm: SlurmSection,
    /// The pretext runs.
    pub pretrain: Vec<PretrainJob>,
    /// The shared extractions.
    pub extracts: Vec<ExtractJob>,
    /// The cells.
    pub cells: Vec<Cell>,
}

/// The kinds whose splits go through the plain feature cache (`Setup::features`) with
/// `data.train` and `data.test`: their extraction is a job of its own.
const SHARED_KINDS: [TaskKind; 2] = [TaskKind::Svm, TaskKind::Lowshot];

impl Plan {
    /// Reads the sweep file and every file it names; `runs` is the pretext runs' folder.
    pub fn read(file: &Path, sets: &[String], runs: &Path) -> Result<Plan> {
        let (sweep, cli_sets) = SweepFile::read(file, sets)?;
        let base = file.parent().unwrap_or(Path::new("."));
        let locate = |p: &PathBuf, what: &str| -> Result<PathBuf> {
            let found = [p.clone(), base.join(p)].into_iter().find(|c| c.is_file());
            found.with_context(|| {
                format!(
                    "{what} {} of sweep {} not found (paths are relative to the working \
                     directory or the sweep file's folder): fix the path or add the file",
                    p.display(),
                    file.display()
                )
            })
        };
        let mut sets = sweep.sets.clone();
        sets.extend(cli_sets);
        let mut pretrain = Vec::new();
        for entry in &sweep.pretrain {
            let config = locate(&entry.config, "pretext config")?;
            for (name, overrides) in entry.points() {
                PretextConfig::read(&config, &overrides)
                    .with_context(|| format!("pretext run {name} of sweep {}", file.display()))?;
                let out = runs.join(&name);
                pretrain.push(PretrainJob {
                    name,
                    config: config.clone(),
                    overrides,
                    out,
                });
            }
        }
        let mut backbones: Vec<(PathBuf, Option<usize>)> = Vec::new();
        for b in &sweep.backbones {
            backbones.push((locate(b, "backbone file")?, None));
        }
        for (i, p) in pretrain.iter().enumerate() {
            backbones.push((p.out.join(format!("{}.toml", p.name)), Some(i)));
        }
        let mut tasks = Vec::new();
        for t in &sweep.tasks {
            let path = locate(t, "task file")?;
            let (own, specs) = shared_specs(&path, &sets, sweep.taps.as_deref())?;
            tasks.push((path, own, specs));
        }
        if let Some(unread) = sets
            .iter()
            .find(|s| tasks.iter().all(|(_, own, _)| !own.contains(s)))
        {
            bail!(
                "sweep {}: no task of the sweep reads the override `{unread}` (a typo, or a \
                 section of another task kind): fix or remove it; a task reads `backbone.*`, \
                 the shared sections ({}) and its own",
                file.display(),
                SHARED_SECTIONS.join(", ")
            );
        }
        let mut extracts: Vec<ExtractJob> = Vec::new();
        let mut keys: Vec<(usize, String)> = Vec::new();
        let mut cells = Vec::new();
        for (b, (backbone, pre)) in backbones.iter().enumerate() {
            for (task, own, specs) in &tasks {
                let mut reads = Vec::new();
                for (spec, group) in specs {
                    let key = (b, format!("{spec}\n{group}"));
                    let index = match keys.iter().position(|k| *k == key) {
                        Some(i) => i,
                        None => {
                            keys.push(key);
                            extracts.push(ExtractJob {
                                backbone: backbone.clone(),
                                task: task.clone(),
                                spec: spec.clone(),
                                pretrain: *pre,
                                sets: own.clone(),
                            });
                            extracts.len() - 1
                        }
                    };
                    reads.push(index);
                }
                cells.push(Cell {
                    backbone: backbone.clone(),
                    task: task.clone(),
                    run: format!("{}_{}", stem(task), stem(backbone)),
                    pretrain: *pre,
                    extracts: reads,
                    sets: own.clone(),
                });
            }
        }
        let mut seen = std::collections::HashSet::new();
        if let Some(c) = cells.iter().find(|c| !seen.insert(c.run.clone())) {
            bail!(
                "sweep {}: two cells write {}.json (same task and backbone file names): \
                 rename one backbone file",
                file.display(),
                c.run
            );
        }
        Ok(Plan {
            file: file.to_path_buf(),
            taps: sweep.taps,
            sets,
            note: sweep.note,
            slurm: sweep.slurm,
            pretrain,
            extracts,
            cells,
        })
    }
}

/// The sweep's overrides a task of `kind` reads: `backbone.*`, the shared sections and the
/// kind's own (a sweep's `lowshot.k` is not the SVM task's).
pub fn task_sets(kind: TaskKind, sets: &[String]) -> Vec<String> {
    sets.iter()
        .filter(|s| {
            let head = s.split(['.', '=']).next().unwrap_or_default().trim();
            head == "backbone" || SHARED_SECTIONS.contains(&head) || kind.sections().contains(&head)
        })
        .cloned()
        .collect()
}

/// The task's overrides ([`task_sets`]) and the splits it extracts through the shared cache,
/// each with the protocol that keys it (taps and the `extract`, `transform` and `pooling`
/// sections): no splits for kinds that extract their own way (dense maps, navigation,
/// augmented probes).
#[allow(clippy::type_complexity)]
fn shared_specs(
    task: &Path,
    sets: &[String],
    taps: Option<&str>,
) -> Result<(Vec<String>, Vec<(String, String)>)> {
    let mut doc = config::shipped("extract.toml")?;
    config::merge(&mut doc, config::read_layered(task)?);
    let kind = TaskHeader::of(&doc)
        .with_context(|| format!("in task file {}", task.display()))?
        .task;
    let own = task_sets(kind, sets);
    let runs: Vec<String> = own
        .iter()
        .filter(|s| !s.starts_with("backbone."))
        .cloned()
        .collect();
    config::set_all(&mut doc, &runs)?;
    let header =
        TaskHeader::of(&doc).with_context(|| format!("in task file {}", task.display()))?;
    if !SHARED_KINDS.contains(&header.task) {
        return Ok((own, Vec::new()));
    }
    let taps = taps.or(header.taps.as_deref()).unwrap_or_default();
    let mut group = format!("taps={taps}");
    for section in ["extract", "transform", "pooling"] {
        if let Some(v) = doc.get(section) {
            group.push_str(&format!("\n{section}={v}"));
        }
    }
    let data = doc.get("data").and_then(|d| d.as_table());
    let root = data
        .and_then(|d| d.get("root"))
        .and_then(|r| r.as_str())
        .unwrap_or_default();
    let mut specs = Vec::new();
    for key in ["train", "test"] {
        if let Some(spec) = data.and_then(|d| d.get(key)).and_then(|s| s.as_str()) {
            specs.push((spec.replace("{root}", root), group.clone()));
        }
    }
    Ok((own, specs))
}

/// A file's stem, as run names use it.
pub fn stem(p: &Path) -> String {
    p.file_stem()
        .and_then(|s| s.to_str())
        .unwrap_or("run")
        .to_string()
}
