//! Published numbers to print beside ours: `tasks/reference/<name>.toml`, tables per task,
//! architecture and metric, with one row per published checkpoint. A table's columns are taps
//! (a per-layer table) or the single column [`BEST_LAYER`] (a value at the best layer, which
//! is set against our best tap).

use anyhow::{bail, Context, Result};
use serde::Deserialize;
use std::path::Path;

/// Version of the reference file layout.
pub const REFERENCE_SCHEMA: &str = "sslbench.reference/1";

/// The column name of a value published at the best layer (the layer not given per value).
pub const BEST_LAYER: &str = "best";

/// The references shipped in the binary, by the name `--reference` takes.
const EMBEDDED: [(&str, &str); 2] = [
    (
        "goyal2019",
        include_str!("../../tasks/reference/goyal2019.toml"),
    ),
    (
        "vissl_model_zoo",
        include_str!("../../tasks/reference/vissl_model_zoo.toml"),
    ),
];

/// Whether a metric improves upwards (accuracy, AP) or downwards (an angular error).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Better {
    /// Higher is better.
    #[default]
    Higher,
    /// Lower is better.
    Lower,
}

impl Better {
    /// The better of two values.
    pub fn best(self, a: f64, b: f64) -> f64 {
        match self {
            Better::Higher => a.max(b),
            Better::Lower => a.min(b),
        }
    }
}

/// A file of published tables.
#[derive(Clone, Debug, Deserialize)]
pub struct Reference {
    /// Always [`REFERENCE_SCHEMA`].
    pub schema: String,
    /// The publication.
    pub source: Source,
    /// The tables.
    #[serde(rename = "table", default)]
    pub tables: Vec<PublishedTable>,
}

/// The publication a reference file transcribes.
#[derive(Clone, Debug, Deserialize)]
pub struct Source {
    /// Short name (`goyal2019`).
    pub id: String,
    /// Full citation.
    pub citation: String,
}

/// One published table: values per tap for one task, architecture and metric.
#[derive(Clone, Debug, Deserialize)]
pub struct PublishedTable {
    /// Unique name within the file.
    pub id: String,
    /// The task file stem it matches ([`crate::report::RunResult::task`]).
    pub task: String,
    /// The backbone family it matches ([`crate::report::RunResult::arch`]).
    pub arch: String,
    /// `top1`, `top5`, `mAP`, or a metric name of the task (`median` for normals).
    pub metric: String,
    /// Which way the metric improves (picks our best layer against a [`BEST_LAYER`] column).
    #[serde(default)]
    pub better: Better,
    /// What the table shows.
    #[serde(default)]
    pub title: String,
    /// Where the numbers were read (paper, table number, any reprint).
    pub citation: String,
    /// The taps, one per value, or [`BEST_LAYER`] alone.
    pub columns: Vec<String>,
    /// The published checkpoints.
    pub rows: Vec<PublishedRow>,
}

/// One published checkpoint's values.
#[derive(Clone, Debug, Deserialize)]
pub struct PublishedRow {
    /// The row's name in the paper; a backbone's `paper_row` names it.
    pub name: String,
    /// One per column; `"-"` where the paper prints none.
    pub values: Vec<PublishedValue>,
    /// A caveat about this row's transcription.
    #[serde(default)]
    pub note: Option<String>,
}

/// A published cell: a number, or a dash for none.
#[derive(Clone, Copy, Debug, Deserialize)]
#[serde(untagged)]
pub enum PublishedValue {
    /// The value in percent.
    Value(f64),
    /// Any string (the files use `"-"`): no value.
    Missing(Dash),
}

/// The placeholder string of a missing published value.
#[derive(Clone, Copy, Debug, Deserialize)]
#[serde(try_from = "String")]
pub struct Dash;

impl TryFrom<String> for Dash {
    type Error = String;
    fn try_from(s: String) -> Result<Self, String> {
        if s.trim() == "-" {
            Ok(Dash)
        } else {
            Err(format!("`{s}` is neither a number nor \"-\""))
        }
    }
}

impl PublishedValue {
    /// The value, if the paper prints one.
    pub fn get(self) -> Option<f64> {
        match self {
            PublishedValue::Value(v) if v.is_finite() => Some(v),
            _ => None,
        }
    }
}

impl PublishedTable {
    /// Whether the table gives values at the best layer ([`BEST_LAYER`]).
    pub fn at_best_layer(&self) -> bool {
        self.columns.iter().any(|c| c == BEST_LAYER)
    }

    /// The published value of `row` at tap `column` (or [`BEST_LAYER`]).
    pub fn value(&self, row: &str, column: &str) -> Option<f64> {
        let c = self.columns.iter().position(|t| t == column)?;
        let r = self.rows.iter().find(|r| r.name == row)?;
        r.values.get(c).and_then(|v| v.get())
    }
}

impl Reference {
    /// Loads `--reference NAME_OR_PATH`: a shipped name (`goyal2019`), else a TOML file.
    pub fn load(name_or_path: &str) -> Result<Reference> {
        if let Some((_, text)) = EMBEDDED.iter().find(|(n, _)| *n == name_or_path) {
            return Reference::parse(text)
                .with_context(|| format!("the built-in reference `{name_or_path}` is invalid"));
        }
        let path = Path::new(name_or_path);
        if !path.exists() {
            let names: Vec<&str> = EMBEDDED.iter().map(|(n, _)| *n).collect();
            bail!(
                "no reference `{name_or_path}`: give a built-in name ({}) or the path of a \
                 reference TOML like tasks/reference/goyal2019.toml",
                names.join(", ")
            );
        }
        let text = std::fs::read_to_string(path)
            .with_context(|| format!("cannot read reference file {}", path.display()))?;
        Reference::parse(&text)
            .with_context(|| format!("invalid reference file {}", path.display()))
    }

    /// Parses and checks a reference file's text.
    pub fn parse(text: &str) -> Result<Reference> {
        let reference: Reference = toml::from_str(text)?;
        if reference.schema != REFERENCE_SCHEMA {
            bail!(
                "schema is `{}`, this sslbench reads `{REFERENCE_SCHEMA}`",
                reference.schema
            );
        }
        for t in &reference.tables {
            if t.columns.len() > 1 && t.columns.iter().any(|c| c == BEST_LAYER) {
                bail!(
                    "table `{}`: the column \"{BEST_LAYER}\" stands alone (a table is per layer or \
                     at the best layer)",
                    t.id
                );
            }
            for r in &t.rows {
                if r.values.len() != t.columns.len() {
                    bail!(
                        "table `{}`, row `{}`: {} values for {} columns",
                        t.id,
                        r.name,
                        r.values.len(),
                        t.columns.len()
                    );
                }
            }
        }
        Ok(reference)
    }

    /// The tables for a task, architecture and metric (per layer, at the best layer), in the
    /// file's order.
    pub fn tables_for<'a>(
        &'a self,
        task: &'a str,
        arch: &'a str,
        metric: &'a str,
    ) -> impl Iterator<Item = &'a PublishedTable> + 'a {
        self.tables
            .iter()
            .filter(move |t| t.task == task && t.arch == arch && t.metric == metric)
    }
}
