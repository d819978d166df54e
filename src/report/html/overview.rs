//! The runs at a glance: one sortable row per run with its task, backbone, headline metric
//! at the tap where it is highest, time taken and start time, linked to the run's section.

use super::discover::Run;
use super::escape::{anchor, esc};
use super::paper_tables::TaskTables;
use std::fmt::Write;

/// The overview table of `runs`; a run's headline metric is its task's table metric.
pub fn table(runs: &[Run], tasks: &[TaskTables]) -> String {
    let mut html = String::from(
        "<table class=\"sortable overview\">\n<caption>Runs</caption>\n<thead><tr>\
         <th>run</th><th>task</th><th>backbone</th><th>metric</th><th>highest</th><th>at</th>\
         <th>seconds</th><th>started (UTC)</th></tr></thead>\n<tbody>\n",
    );
    for run in runs {
        let r = &run.result;
        let metric = tasks
            .iter()
            .find(|t| t.task == r.task)
            .map_or("", |t| t.metric.as_str());
        // The highest value of the metric (not always the best: an error is better low);
        // low-shot values count at their largest k only.
        let largest_k = r
            .metrics
            .iter()
            .filter(|m| m.name == metric)
            .map(|m| m.k)
            .max();
        let best = r
            .metrics
            .iter()
            .filter(|m| m.name == metric && Some(m.k) == largest_k)
            .max_by(|a, b| a.value.total_cmp(&b.value));
        let (value, at) = match best {
            Some(m) => (
                format!("<td data-v=\"{}\">{:.1}</td>", m.value, m.value),
                match m.k {
                    Some(k) => format!("{} k={k}", m.tap),
                    None => m.tap.clone(),
                },
            ),
            None => ("<td class=\"none\">–</td>".to_string(), String::new()),
        };
        let seconds = r.timings.get("total_s").and_then(|v| v.as_f64());
        let started = r
            .provenance
            .as_ref()
            .map_or("–", |p| p.started_utc.as_str());
        let _ = writeln!(
            html,
            "<tr><th><a href=\"#run-{}\">{}</a></th><td>{}</td><td>{}</td><td>{}</td>{value}\
             <td>{}</td><td data-v=\"{}\">{}</td><td>{}</td></tr>",
            anchor(&r.run),
            esc(&r.run),
            esc(&r.task),
            esc(&r.backbone_name),
            esc(metric),
            esc(&at),
            seconds.unwrap_or(0.0),
            seconds.map_or("–".into(), |s| format!("{s:.1}")),
            esc(started)
        );
    }
    html + "</tbody>\n</table>\n"
}
