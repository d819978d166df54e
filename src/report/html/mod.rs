//! `sslbench report`: one static HTML page for a results folder that opens from disk with no
//! server. Tables in the paper's shape beside the published numbers, then every run with its
//! plots, curves, GIFs and preview images (linked where they lie, not embedded), and what
//! produced it; the pretext runs with their logs and strips. The only script is a few lines
//! inline: sortable columns and a mark on any image that fails to load.

mod discover;
mod escape;
mod figures;
mod overview;
mod paper_tables;
mod pretext;
mod runs;
mod tables;

pub use discover::{discover, Found, PretextRun, Run};

use crate::atomic::write_atomic;
use crate::report::{Reference, RunResult};
use anyhow::{Context, Result};
use escape::esc;
use std::fmt::Write;
use std::path::{Path, PathBuf};

/// The page's style sheet, inlined into its head.
const STYLE: &str = include_str!("style.css");
/// The page's script, inlined at the end of its body.
const SCRIPT: &str = include_str!("script.js");

/// Writes `out/index.html` for the results folder `results`, with the published numbers of
/// `reference` beside ours; returns the page's path.
pub fn write(results: &Path, out: &Path, reference: Option<&Reference>) -> Result<PathBuf> {
    let found = discover(results)?;
    std::fs::create_dir_all(out)
        .with_context(|| format!("cannot create the report folder {}", out.display()))?;
    let page_dir = out
        .canonicalize()
        .with_context(|| format!("cannot open the report folder {}", out.display()))?;
    let html = page(&found, &page_dir, reference)?;
    let path = page_dir.join("index.html");
    write_atomic(&path, html.as_bytes())?;
    Ok(path)
}

/// The whole page for `found`, linking files relative to `page_dir`.
pub fn page(found: &Found, page_dir: &Path, reference: Option<&Reference>) -> Result<String> {
    let title = format!("sslbench report: {}", found.root.display());
    let mut task_names: Vec<&str> = found.runs.iter().map(|r| r.result.task.as_str()).collect();
    task_names.dedup();
    let mut backbones: Vec<&str> = found
        .runs
        .iter()
        .map(|r| r.result.backbone_name.as_str())
        .collect();
    backbones.sort();
    backbones.dedup();
    let mut html = format!(
        "<!DOCTYPE html>\n<html lang=\"en\">\n<head>\n<meta charset=\"utf-8\">\n\
         <meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">\n\
         <title>{t}</title>\n<style>\n{STYLE}</style>\n</head>\n<body>\n<h1>{t}</h1>\n\
         <p class=\"summary\">{} runs of {} tasks ({}) on {} backbones ({}); {} pretext runs; \
         published numbers: {}.</p>\n",
        found.runs.len(),
        task_names.len(),
        esc(&task_names.join(", ")),
        backbones.len(),
        esc(&backbones.join(", ")),
        found.pretext.len(),
        esc(&reference.map_or("none".to_string(), |r| r.source.citation.clone())),
        t = esc(&title),
    );
    html += "<nav><a href=\"#tables\">Tables</a><a href=\"#runs\">Runs</a>";
    if !found.pretext.is_empty() {
        html += "<a href=\"#pretext\">Pretext runs</a>";
    }
    html += "</nav>\n";
    let results: Vec<RunResult> = found.runs.iter().map(|r| r.result.clone()).collect();
    let tasks = paper_tables::of(&results, reference)?;
    html += &overview::table(&found.runs, &tasks);
    html += "<section id=\"tables\">\n<h2>Tables</h2>\n<p class=\"legend\"><span class=\"ours\">\
             ours</span><span class=\"published\">published</span><span class=\"delta\">Δ ours \
             − published</span> click a column header to sort.</p>\n";
    for t in &tasks {
        html += &t.html;
    }
    html += &figures::gallery(&found.sweep_images, page_dir, &found.root);
    html += "</section>\n<section id=\"runs\">\n<h2>Runs</h2>\n";
    for run in &found.runs {
        html += &runs::section(run, &found.root, page_dir);
    }
    html += "</section>\n";
    if !found.pretext.is_empty() {
        html += "<section id=\"pretext\">\n<h2>Pretext runs</h2>\n";
        for run in &found.pretext {
            html += &pretext::section(run, page_dir);
        }
        html += "</section>\n";
    }
    let _ = write!(html, "<script>\n{SCRIPT}</script>\n</body>\n</html>\n");
    Ok(html)
}
