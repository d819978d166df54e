//! The collect job: one table per task of the sweep's cells, `<out>/sweep_<name>.md`, and the
//! per-layer plot of each.

use super::plan::{stem, Plan};
use crate::atomic::write_atomic;
use crate::report::{plot, table, Format, RunResult, Selection};
use anyhow::{Context, Result};
use std::path::{Path, PathBuf};

/// The path of a cell's results JSON.
pub fn result_path(out: &Path, run: &str) -> PathBuf {
    out.join(format!("{run}.json"))
}

/// Writes the sweep's tables (Markdown) and plots from every cell's results JSON.
pub fn write(plan: &Plan, out: &Path) -> Result<()> {
    let results: Vec<RunResult> = plan
        .cells
        .iter()
        .map(|c| RunResult::read(&result_path(out, &c.run)))
        .collect::<Result<_>>()
        .context("collect: a cell has no results (see `sslbench sweep FILE --status`)")?;
    let name = stem(&plan.file);
    let mut text = String::new();
    let mut tasks: Vec<String> = Vec::new();
    for r in &results {
        if !tasks.contains(&r.task) {
            tasks.push(r.task.clone());
        }
    }
    for task in tasks {
        let sel = Selection {
            task: Some(task.clone()),
            ..Selection::default()
        };
        let t = table::paper_table(&results, &sel, None)?;
        text.push_str(&t.render(Format::Markdown));
        text.push('\n');
        let png = out.join(format!("sweep_{name}_{task}.png"));
        if let Err(e) = plot::bars(&t, "layer", &format!("{} (%)", t.metric), &png) {
            eprintln!("warning: no plot {}: {e:#}", png.display());
        }
    }
    let md = out.join(format!("sweep_{name}.md"));
    write_atomic(&md, text.as_bytes())?;
    print!("{text}");
    eprintln!("wrote {}", md.display());
    Ok(())
}
