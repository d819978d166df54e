//! `sslbench table results/*.json`: our results in the paper's table shape, optionally
//! beside the published numbers, as Markdown, CSV or LaTeX, with an optional plot.

use crate::atomic::write_atomic;
use crate::report::{plot, table, Format, Reference, RunResult, Selection};
use anyhow::{bail, Result};
use clap::Args;
use std::path::PathBuf;

/// Arguments of `sslbench table`.
#[derive(Args)]
pub struct TableArgs {
    /// Results JSON files (`results/*.json`), as `sslbench run` writes them.
    #[arg(required = true)]
    results: Vec<PathBuf>,
    /// Output format: markdown, csv or latex.
    #[arg(long, default_value = "markdown")]
    format: Format,
    /// Published numbers to show beside ours: a built-in name (goyal2019) or a reference TOML.
    #[arg(long)]
    reference: Option<String>,
    /// Only this task (task file stem, e.g. voc07_svm).
    #[arg(long)]
    task: Option<String>,
    /// The metric to show (mAP, top1, top5); by default each task's first of these.
    #[arg(long)]
    metric: Option<String>,
    /// Low-shot tasks: show the values per k at this tap (default: each row's best tap).
    #[arg(long)]
    tap: Option<String>,
    /// Also draw the table as curves over its columns into this PNG.
    #[arg(long)]
    plot: Option<PathBuf>,
    /// Write the table to this file instead of stdout.
    #[arg(long)]
    out: Option<PathBuf>,
}

/// Runs `sslbench table`.
pub fn run(args: TableArgs) -> Result<()> {
    let results: Vec<RunResult> = args
        .results
        .iter()
        .map(|p| RunResult::read(p))
        .collect::<Result<_>>()?;
    let reference = args.reference.as_deref().map(Reference::load).transpose()?;
    let selection = Selection {
        task: args.task,
        metric: args.metric,
        tap: args.tap,
    };
    let table = table::paper_table(&results, &selection, reference.as_ref())?;
    let text = table.render(args.format);
    match &args.out {
        Some(path) => {
            write_atomic(path, text.as_bytes())?;
            eprintln!("wrote {}", path.display());
        }
        None => print!("{text}"),
    }
    if let Some(path) = &args.plot {
        if path
            .extension()
            .is_none_or(|e| !e.eq_ignore_ascii_case("png"))
        {
            bail!(
                "--plot writes a PNG: give a path ending in .png, not {}",
                path.display()
            );
        }
        let x_label = if table.columns.iter().all(|c| c.starts_with("k=")) {
            "images per class (k)"
        } else {
            "layer"
        };
        // Curves over the layers: a best-layer column is no point on them.
        let curves = table.without_column(crate::report::reference::BEST_LAYER);
        plot::lines(&curves, x_label, &format!("{} (%)", table.metric), path)?;
        eprintln!("wrote {}", path.display());
    }
    Ok(())
}
