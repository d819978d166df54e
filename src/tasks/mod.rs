//! The downstream tasks, one module per task kind: a task file's `task = "kind"` names the
//! module `tasks::<kind>` ([`TaskKind`] is the registry, one exhaustive `match`). Each reads
//! its sections of the merged config document ([`Setup::doc`]) and the cached features of its
//! taps, and returns a [`TaskOutput`]. [`run_file`] runs a task file on a backbone.
//!
//! Nothing below this wing imports it, and no task imports another: what two tasks share
//! lives in [`setup`] or a floor below.

pub mod detection;
pub mod features;
pub mod linear_probe;
pub mod lowshot;
pub mod navigation;
pub mod normals;
mod runner;
mod setup;
pub mod svm;

pub use runner::{run_file, taps, RunRequest};
pub use setup::{DataSection, Setup, Splits};

use crate::backbone::Tap;
use crate::features::extract::Extracted;
use crate::report::{CacheRef, DetailTable, Metric};
use anyhow::{bail, Context, Result};
use serde::Deserialize;
use std::path::PathBuf;

/// The kind of a task file (`task = "..."`): the module that runs it.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum TaskKind {
    /// `tasks::features`: only fill the cache.
    Features,
    /// `tasks::svm`: the VOC07 / COCO2014 SVM protocol.
    Svm,
    /// `tasks::lowshot`: low-shot SVMs.
    Lowshot,
    /// `tasks::linear_probe`: linear classifiers (Places205, ImageNet).
    LinearProbe,
    /// `tasks::navigation`: PPO agents on frozen taps.
    Navigation,
    /// `tasks::detection`: Fast R-CNN RoI heads on a frozen conv body.
    Detection,
    /// `tasks::normals`: a PSPNet decoder for surface normals on NYUv2.
    Normals,
}

impl TaskKind {
    /// Every kind, in the order messages list them.
    pub const ALL: [TaskKind; 7] = [
        TaskKind::Features,
        TaskKind::Svm,
        TaskKind::Lowshot,
        TaskKind::LinearProbe,
        TaskKind::Navigation,
        TaskKind::Detection,
        TaskKind::Normals,
    ];

    /// The kinds' names, comma-separated.
    pub fn names() -> String {
        Self::ALL.map(Self::name).join(", ")
    }

    /// The kind's name in task files and results.
    pub fn name(self) -> &'static str {
        match self {
            TaskKind::Features => "features",
            TaskKind::Svm => "svm",
            TaskKind::Lowshot => "lowshot",
            TaskKind::LinearProbe => "linear_probe",
            TaskKind::Navigation => "navigation",
            TaskKind::Detection => "detection",
            TaskKind::Normals => "normals",
        }
    }

    /// The top-level sections the kind reads besides [`SHARED_SECTIONS`].
    pub fn sections(self) -> &'static [&'static str] {
        match self {
            TaskKind::Features => features::SECTIONS,
            TaskKind::Svm => svm::SECTIONS,
            TaskKind::Lowshot => lowshot::SECTIONS,
            TaskKind::LinearProbe => linear_probe::SECTIONS,
            TaskKind::Navigation => navigation::SECTIONS,
            TaskKind::Detection => detection::SECTIONS,
            TaskKind::Normals => normals::SECTIONS,
        }
    }

    /// Sections the kind renamed (old name, new name), named in the message when a task file
    /// still holds the old one.
    pub fn renamed(self) -> &'static [(&'static str, &'static str)] {
        match self {
            TaskKind::Navigation => navigation::RENAMED,
            _ => &[],
        }
    }

    /// Runs the task: the registry.
    pub fn run(self, ctx: &RunContext) -> Result<TaskOutput> {
        match self {
            TaskKind::Features => features::run(ctx),
            TaskKind::Svm => svm::run(ctx),
            TaskKind::Lowshot => lowshot::run(ctx),
            TaskKind::LinearProbe => linear_probe::run(ctx),
            TaskKind::Navigation => navigation::run(ctx),
            TaskKind::Detection => detection::run(ctx),
            TaskKind::Normals => normals::run(ctx),
        }
    }
}

/// The top-level keys every task document may hold: the header, the dataset, and the
/// extraction protocol (`tasks/extract.toml`) with its per-architecture overrides.
pub const SHARED_SECTIONS: &[&str] = &[
    "task",
    "taps",
    "data",
    "extract",
    "transform",
    "pooling",
    "arch_overrides",
];

/// The typed header of a task document.
#[derive(Clone, Debug)]
pub struct TaskHeader {
    /// Which task runs.
    pub task: TaskKind,
    /// The default taps (`--taps` overrides them).
    pub taps: Option<String>,
}

#[derive(Deserialize)]
struct RawHeader {
    task: TaskKind,
    #[serde(default)]
    taps: Option<String>,
}

impl TaskHeader {
    /// Reads the header of a merged document and refuses a top-level key that neither the
    /// shared sections nor the task's own claim (a typo such as `[svmm]` is never ignored).
    pub fn of(doc: &toml::Table) -> Result<TaskHeader> {
        if !doc.contains_key("task") {
            bail!(
                "no `task = \"...\"` field: name the task kind ({})",
                TaskKind::names()
            );
        }
        let mut head = toml::Table::new();
        for key in ["task", "taps"] {
            if let Some(v) = doc.get(key) {
                head.insert(key.into(), v.clone());
            }
        }
        let raw: RawHeader = toml::Value::Table(head).try_into().with_context(|| {
            format!(
                "invalid task header (`task` must be one of {}; `taps` a comma-separated list)",
                TaskKind::names()
            )
        })?;
        let own = raw.task.sections();
        let unknown: Vec<&str> = doc
            .keys()
            .map(String::as_str)
            .filter(|k| !SHARED_SECTIONS.contains(k) && !own.contains(k))
            .collect();
        if !unknown.is_empty() {
            let mut valid: Vec<&str> = SHARED_SECTIONS.to_vec();
            valid.extend(own);
            let hints: String = raw
                .task
                .renamed()
                .iter()
                .filter(|(old, _)| unknown.contains(old))
                .map(|(old, new)| format!(" ([{old}] is now [{new}])"))
                .collect();
            bail!(
                "unknown section{} {}{hints} for task = \"{}\": this kind reads {}",
                if unknown.len() > 1 { "s" } else { "" },
                unknown
                    .iter()
                    .map(|k| format!("[{k}]"))
                    .collect::<Vec<_>>()
                    .join(", "),
                raw.task.name(),
                valid.join(", ")
            );
        }
        Ok(TaskHeader {
            task: raw.task,
            taps: raw.taps,
        })
    }
}

/// What a task hands back to `sslbench run`, which wraps it in a [`crate::report::RunResult`].
#[derive(Debug, Default)]
pub struct TaskOutput {
    /// The numbers the tables show.
    pub metrics: Vec<Metric>,
    /// Tables the task builds from its own results (per class), shown under the metrics.
    pub tables: Vec<DetailTable>,
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

/// The cache reference of a split's frozen maps (detection, normals).
pub fn maps_ref(maps: &crate::features::dense::TapMaps) -> CacheRef {
    CacheRef {
        tap: maps.tap.name().to_string(),
        spec: format!("{} maps", maps.split),
        digest: maps.key.digest(),
        status: maps.status.to_string(),
    }
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

#[cfg(test)]
mod tests {
    use super::*;

    fn doc(text: &str) -> toml::Table {
        crate::config::parse_table(text).unwrap()
    }

    #[test]
    fn the_header_is_typed_and_unknown_sections_are_refused() {
        let h = TaskHeader::of(&doc("task = \"svm\"\ntaps = \"res4\"\n[svm]\nfolds = 3")).unwrap();
        assert_eq!((h.task, h.taps.as_deref()), (TaskKind::Svm, Some("res4")));
        let err = format!(
            "{:#}",
            TaskHeader::of(&doc("task = \"svm\"\n[svmm]\nfolds = 3")).unwrap_err()
        );
        assert!(err.contains("[svmm]") && err.contains("svm"), "{err}");
        // A section of another kind is not this kind's.
        assert!(TaskHeader::of(&doc("task = \"linear_probe\"\n[svm]\nfolds = 3")).is_err());
        let err = format!("{:#}", TaskHeader::of(&doc("task = \"svn\"")).unwrap_err());
        assert!(err.contains("lowshot"), "{err}");
        // Every kind's name reads back as the kind.
        for kind in TaskKind::ALL {
            let h = TaskHeader::of(&doc(&format!("task = \"{}\"", kind.name()))).unwrap();
            assert_eq!(h.task, kind);
        }
        assert!(TaskHeader::of(&doc("taps = \"res4\"")).is_err());
        let err = format!(
            "{:#}",
            TaskHeader::of(&doc("task = \"navigation\"\n[features]\nsize = 16")).unwrap_err()
        );
        assert!(err.contains("[features] is now [compress]"), "{err}");
    }

    #[test]
    fn every_shipped_task_file_has_a_valid_header() {
        let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR"));
        let mut seen = 0;
        for dir in ["tasks", "configs/nav"] {
            for entry in std::fs::read_dir(root.join(dir)).unwrap() {
                let path = entry.unwrap().path();
                if path.extension().is_none_or(|e| e != "toml") {
                    continue;
                }
                let mut d = crate::config::shipped("extract.toml").unwrap();
                crate::config::merge(&mut d, crate::config::read_layered(&path).unwrap());
                TaskHeader::of(&d).unwrap_or_else(|e| panic!("{}: {e:#}", path.display()));
                seen += 1;
            }
        }
        assert!(seen >= 10, "only {seen} task files");
    }
}
