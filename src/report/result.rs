//! The versioned results JSON that every task run writes, and that `sslbench table` reads.

use serde::{Deserialize, Serialize};
use std::path::{Path, PathBuf};

use anyhow::{bail, Context, Result};

/// Version of the results JSON layout.
pub const RESULT_SCHEMA: &str = "sslbench.result/2";

/// One reported number: the unit a table cell shows.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct Metric {
    /// The tap the number was measured on (`conv1`, `res4`, ...).
    pub tap: String,
    /// `mAP`, `top1` or `top5`.
    pub name: String,
    /// The value in percent, as the paper prints it.
    pub value: f64,
    /// Low-shot: images per class (k).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub k: Option<usize>,
    /// Spread over samples or seeds, when there are several.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub spread: Option<Spread>,
    /// How the number was produced when a task has several ways: `paper-choice` or `honest`
    /// (low-shot cost choice), `fast` or `paper` (linear probe mode).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub variant: Option<String>,
}

/// Mean, spread and range over repeated samples or seeds (the value is the mean).
#[derive(Clone, Copy, Debug, PartialEq, Serialize, Deserialize)]
pub struct Spread {
    /// Population standard deviation.
    pub std: f64,
    /// Smallest value.
    pub min: f64,
    /// Largest value.
    pub max: f64,
    /// Number of samples or seeds.
    pub n: usize,
}

impl Spread {
    /// Mean and spread of `values` (none for an empty slice).
    pub fn of(values: &[f64]) -> Option<(f64, Spread)> {
        if values.is_empty() {
            return None;
        }
        let n = values.len() as f64;
        let mean = values.iter().sum::<f64>() / n;
        let var = values.iter().map(|v| (v - mean).powi(2)).sum::<f64>() / n;
        let min = values.iter().cloned().fold(f64::INFINITY, f64::min);
        let max = values.iter().cloned().fold(f64::NEG_INFINITY, f64::max);
        Some((
            mean,
            Spread {
                std: var.sqrt(),
                min,
                max,
                n: values.len(),
            },
        ))
    }
}

/// A cache entry a run read: which tap of which split.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct CacheRef {
    /// The tap.
    pub tap: String,
    /// The dataset SPEC of the split.
    pub spec: String,
    /// The entry's key digest (`sslbench cache ls` shows it).
    pub digest: String,
    /// `cached` or `extracted`.
    pub status: String,
}

/// A table a task builds from its own typed results (per class, per tap), rendered under
/// the metric tables; the first column is a label, the others are right-aligned numbers.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct DetailTable {
    /// The heading (`res4: per class`).
    pub title: String,
    /// Column headers.
    pub columns: Vec<String>,
    /// Cells, already formatted, one row per entry.
    pub rows: Vec<Vec<String>>,
}

impl DetailTable {
    /// The table as a Markdown section.
    pub fn markdown(&self) -> String {
        let align: Vec<&str> = (0..self.columns.len())
            .map(|i| if i == 0 { "---" } else { "---:" })
            .collect();
        let mut md = format!(
            "\n### {}\n\n| {} |\n|{}|\n",
            self.title,
            self.columns.join(" | "),
            align.join("|")
        );
        for row in &self.rows {
            md += &format!("| {} |\n", row.join(" | "));
        }
        md
    }
}

/// One run of one task on one backbone.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct RunResult {
    /// Always [`RESULT_SCHEMA`].
    pub schema: String,
    /// `<task>_<backbone>`: the file stem of the results.
    pub run: String,
    /// The task name: the task file's stem (`voc07_svm`, `places205_linear`, ...).
    pub task: String,
    /// The implementation the task file selected (`svm`, `lowshot`, `linear_probe`, ...).
    pub kind: String,
    /// The task file.
    pub task_file: PathBuf,
    /// The backbone's name: its config file's stem. Tables use it as the row label.
    pub backbone_name: String,
    /// The backbone's architecture family (`resnet50`, `alexnet`, `alexnet_jigsaw`).
    pub arch: String,
    /// The row of the paper's tables this backbone stands for (`paper_row` in its config).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub paper_row: Option<String>,
    /// The backbone config as resolved.
    pub backbone: serde_json::Value,
    /// The merged task config (defaults, task file, overrides).
    pub config: serde_json::Value,
    /// The taps, in the order asked for.
    pub taps: Vec<String>,
    /// The cache entries read.
    pub cache: Vec<CacheRef>,
    /// The reported numbers.
    pub metrics: Vec<Metric>,
    /// Tables a task builds itself beside the metric tables (the SVM task's per-class APs).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub tables: Vec<DetailTable>,
    /// Task-specific detail (per class, per sample, per epoch ...).
    pub details: serde_json::Value,
    /// Wall-clock seconds by phase.
    pub timings: serde_json::Value,
    /// Weights digest, machine, versions and start time (absent in files written before
    /// sslbench recorded them).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub provenance: Option<super::provenance::Provenance>,
}

impl RunResult {
    /// Reads and checks a results JSON.
    pub fn read(path: &Path) -> Result<RunResult> {
        let text = std::fs::read_to_string(path)
            .with_context(|| format!("cannot read results file {}", path.display()))?;
        let value: serde_json::Value = serde_json::from_str(&text)
            .with_context(|| format!("{} is not JSON", path.display()))?;
        let schema = value.get("schema").and_then(|s| s.as_str()).unwrap_or("");
        if schema != RESULT_SCHEMA {
            bail!(
                "{} has schema `{schema}`, this sslbench reads `{RESULT_SCHEMA}`: re-run the task \
                 with this version",
                path.display()
            );
        }
        serde_json::from_value(value)
            .with_context(|| format!("{} does not follow {RESULT_SCHEMA}", path.display()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_detail_table_renders_as_a_markdown_section() {
        let t = DetailTable {
            title: "res4: per class".into(),
            columns: vec!["class".into(), "cost".into(), "test AP".into()],
            rows: vec![vec!["bus".into(), "0.5".into(), "71.2".into()]],
        };
        assert_eq!(
            t.markdown(),
            "\n### res4: per class\n\n| class | cost | test AP |\n|---|---:|---:|\n| bus | 0.5 | 71.2 |\n"
        );
    }
}
