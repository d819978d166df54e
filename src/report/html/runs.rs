//! One run's section: its tables (per layer, per k, the task's own), its images, and what
//! produced it: backbone, weights digest, config, cache keys, machine, versions and time.

use super::discover::Run;
use super::escape::{anchor, esc};
use super::{figures, tables};
use crate::report::table::run_tables;
use std::fmt::Write;
use std::path::Path;

/// The section of `run`, with its images linked from `page_dir`.
pub fn section(run: &Run, root: &Path, page_dir: &Path) -> String {
    let r = &run.result;
    let mut html = format!(
        "<section class=\"run\" id=\"run-{}\">\n<h3>{}</h3>\n",
        anchor(&r.run),
        esc(&r.run)
    );
    let own = run_tables(r);
    for t in own.per_layer.iter().chain(&own.per_k) {
        html += &tables::paper(t);
    }
    html += &figures::gallery(&run.images, page_dir, root);
    if !r.tables.is_empty() {
        let _ = writeln!(
            html,
            "<details><summary>the task's own tables ({})</summary>",
            r.tables.len()
        );
        for t in &r.tables {
            html += &tables::detail(t);
        }
        html += "</details>\n";
    }
    html += &facts(run);
    html += &cache_keys(run);
    for (what, value) in [("backbone config", &r.backbone), ("task config", &r.config)] {
        html += &json_details(what, value);
    }
    html + "</section>\n"
}

/// `value` as pretty JSON, folded under a summary that says `what` it is.
pub fn json_details(what: &str, value: &serde_json::Value) -> String {
    let text = serde_json::to_string_pretty(value).unwrap_or_default();
    format!(
        "<details><summary>{}</summary><pre>{}</pre></details>\n",
        esc(what),
        esc(&text)
    )
}

/// Task, backbone, weights and where and when the run ran, as a definition list.
fn facts(run: &Run) -> String {
    let r = &run.result;
    let field = |key: &str| {
        r.backbone
            .get(key)
            .map(|v| v.as_str().map_or_else(|| v.to_string(), str::to_string))
            .unwrap_or_default()
    };
    let mut rows: Vec<(&str, String)> = vec![
        (
            "task",
            format!("{} ({}, {})", r.task, r.kind, r.task_file.display()),
        ),
        ("backbone", format!("{} ({})", r.backbone_name, r.arch)),
        ("weights", field("weights")),
        (
            "paper row",
            r.paper_row.clone().unwrap_or_else(|| "–".into()),
        ),
        ("taps", r.taps.join(", ")),
        ("results", run.json.display().to_string()),
    ];
    match &r.provenance {
        Some(p) => rows.extend([
            ("weights digest", p.weights_digest.clone()),
            ("started", p.started_utc.clone()),
            ("machine", format!("{} ({}, {})", p.host, p.os, p.cpu)),
            ("threads, device", format!("{}, {}", p.threads, p.device)),
            ("versions", p.versions.clone()),
        ]),
        None => rows.push((
            "provenance",
            "not recorded (a results file from before sslbench recorded weights digest, \
             machine, versions and time)"
                .into(),
        )),
    }
    rows.push(("time", timings(&r.timings)));
    let mut html = String::from("<dl class=\"facts\">\n");
    for (k, v) in rows {
        let _ = writeln!(html, "<dt>{k}</dt><dd>{}</dd>", esc(&v));
    }
    html + "</dl>\n"
}

/// `total 25.2 s, svm 25.2 s, iterations/s 2393.5`: the timings object, total first;
/// every field is seconds (`_s` dropped from the name) but the `_per_s` rates.
fn timings(value: &serde_json::Value) -> String {
    let Some(map) = value.as_object() else {
        return "–".into();
    };
    let mut parts: Vec<(&str, String)> = map
        .iter()
        .filter_map(|(k, v)| {
            let v = v.as_f64()?;
            Some(if let Some(rate) = k.strip_suffix("_per_s") {
                (k.as_str(), format!("{rate}/s {v:.1}"))
            } else if let Some(phase) = k.strip_suffix("_s") {
                (k.as_str(), format!("{phase} {v:.1} s"))
            } else {
                (k.as_str(), format!("{k} {v:.1} s"))
            })
        })
        .collect();
    parts.sort_by_key(|(k, _)| *k != "total_s");
    let parts: Vec<String> = parts.into_iter().map(|(_, text)| text).collect();
    parts.join(", ")
}

/// The cache entries the run read: tap, split, digest and whether it was extracted.
fn cache_keys(run: &Run) -> String {
    let cache = &run.result.cache;
    if cache.is_empty() {
        return String::new();
    }
    let mut html = format!(
        "<details><summary>{} cache keys</summary>\n<table class=\"sortable cache\">\
         <thead><tr><th>tap</th><th>split</th><th>digest</th><th>status</th></tr></thead>\n\
         <tbody>\n",
        cache.len()
    );
    for c in cache {
        let _ = writeln!(
            html,
            "<tr><th>{}</th><td>{}</td><td><code>{}</code></td><td>{}</td></tr>",
            esc(&c.tap),
            esc(&c.spec),
            esc(&c.digest),
            esc(&c.status)
        );
    }
    html + "</tbody></table></details>\n"
}
