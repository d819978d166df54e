//! Reports: the results JSON, tables beside the paper's numbers, and plots.

pub mod html;
pub mod plot;
pub mod provenance;
pub mod reference;
pub mod result;
pub mod table;

pub use provenance::Provenance;
pub use reference::Reference;
pub use result::{CacheRef, DetailTable, Metric, RunResult, Spread, RESULT_SCHEMA};
pub use table::{Cell, Format, Row, RowKind, RunTables, Selection, Table};

use crate::atomic::write_atomic;
use anyhow::Result;
use std::path::{Path, PathBuf};

/// Writes one run's report into `out`:
/// - `<run>.json`: the [`RunResult`];
/// - `<run>.md`: its tables (per layer; per k for low-shot), also printed to stdout;
/// - `<run>.csv`: one line per metric, every field in a column;
/// - `<run>_layers.png`: bars per tap, when the run has several taps;
/// - `<run>_lowshot.png`: a curve over k per tap and variant, with a ±std band.
///
/// A plot that cannot be drawn is a warning: the numbers are already written.
pub fn write_run(result: &RunResult, out: &Path) -> Result<()> {
    let file = |ext: &str| out.join(format!("{}.{ext}", result.run));
    let json = file("json");
    write_atomic(&json, serde_json::to_string_pretty(result)?.as_bytes())?;
    let tables = table::run_tables(result);
    let shown: Vec<&Table> = tables.per_layer.iter().chain(&tables.per_k).collect();
    let markdown = if shown.is_empty() {
        format!("### {}\n\nno metrics\n", result.run)
    } else {
        let parts: Vec<String> = shown.iter().map(|t| t.render(Format::Markdown)).collect();
        parts.join("\n")
    };
    write_atomic(
        &file("md"),
        (markdown.clone() + &detail_markdown(result)).as_bytes(),
    )?;
    write_atomic(&file("csv"), table::run_csv(result).as_bytes())?;
    print!("{markdown}");
    let mut plots: Vec<(PathBuf, Result<()>)> = Vec::new();
    if let Some(t) = tables.per_layer.as_ref().filter(|t| t.columns.len() > 1) {
        let path = out.join(format!("{}_layers.png", result.run));
        let drawn = plot::bars(t, "layer", &format!("{} (%)", t.metric), &path);
        plots.push((path, drawn));
    }
    if let Some(t) = &tables.per_k {
        let path = out.join(format!("{}_lowshot.png", result.run));
        let drawn = plot::lines(
            t,
            "images per class (k)",
            &format!("{} (%)", t.metric),
            &path,
        );
        plots.push((path, drawn));
    }
    println!("wrote {}", json.display());
    for (path, drawn) in plots {
        match drawn {
            Ok(()) => println!("wrote {}", path.display()),
            Err(e) => eprintln!("warning: no plot {}: {e:#}", path.display()),
        }
    }
    Ok(())
}

/// The tables the task built itself (per class, per tap), as Markdown sections.
fn detail_markdown(result: &RunResult) -> String {
    result.tables.iter().map(DetailTable::markdown).collect()
}
