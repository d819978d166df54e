//! A pretext run's section: its held-out accuracy against chance and other summary numbers,
//! its loss and accuracy curves and colourised strips, its training log and its config.

use super::discover::PretextRun;
use super::escape::{anchor, esc};
use super::{figures, tables};
use std::fmt::Write;
use std::path::Path;

/// The section of `run`, with its images linked from `page_dir`.
pub fn section(run: &PretextRun, page_dir: &Path) -> String {
    let name = run
        .dir
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    let mut html = format!(
        "<section class=\"pretext\" id=\"pretext-{}\">\n<h3>{}</h3>\n<dl class=\"facts\">\n\
         <dt>folder</dt><dd>{}</dd>\n",
        anchor(&name),
        esc(&name),
        esc(&run.dir.display().to_string())
    );
    let summary = run.summary.as_object();
    for (key, value) in summary.into_iter().flatten() {
        let shown = match value {
            serde_json::Value::Number(n) => match n.as_f64() {
                Some(f) if n.is_f64() => format!("{f:.4}"),
                _ => n.to_string(),
            },
            serde_json::Value::String(s) => s.clone(),
            serde_json::Value::Bool(b) => b.to_string(),
            _ => continue,
        };
        let _ = writeln!(html, "<dt>{}</dt><dd>{}</dd>", esc(key), esc(&shown));
    }
    html += "</dl>\n";
    html += &figures::gallery(&run.images, page_dir, &run.dir);
    if let Some(log) = &run.log {
        let lines = log.lines().count().saturating_sub(1);
        let _ = writeln!(
            html,
            "<details><summary>log.csv ({lines} lines)</summary>{}</details>",
            tables::csv(log)
        );
    }
    if let Some(config) = run.summary.get("config") {
        html += &super::runs::json_details("pretext config", config);
    }
    html + "</section>\n"
}
