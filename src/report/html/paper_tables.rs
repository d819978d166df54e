//! The tables section: per task, the table of its headline metric (the library's default:
//! mAP, else top1, top5) beside the published rows, and its other metrics folded away under
//! it. Tasks whose tables have published rows come first.

use super::tables;
use crate::report::{table, Reference, RowKind, RunResult, Selection};
use anyhow::{Context, Result};
use std::fmt::Write;

/// One task's tables.
pub struct TaskTables {
    /// The task.
    pub task: String,
    /// The metric of its headline table.
    pub metric: String,
    /// Its tables as HTML.
    pub html: String,
    /// Whether its headline table has published rows.
    published: bool,
}

/// The tables of every task of `results`, tasks with published rows first.
pub fn of(results: &[RunResult], reference: Option<&Reference>) -> Result<Vec<TaskTables>> {
    let mut tasks: Vec<&str> = results.iter().map(|r| r.task.as_str()).collect();
    tasks.sort();
    tasks.dedup();
    let mut out = Vec::new();
    for task in tasks {
        let table_of = |metric: Option<&str>| {
            let selection = Selection {
                task: Some(task.to_string()),
                metric: metric.map(str::to_string),
                tap: None,
            };
            table::paper_table(results, &selection, reference).with_context(|| {
                format!("the {task} table ({})", metric.unwrap_or("default metric"))
            })
        };
        let head = table_of(None)?;
        let mut html = tables::paper(&head);
        let others: Vec<String> = metrics_of(results, task)
            .into_iter()
            .filter(|m| *m != head.metric)
            .collect();
        if !others.is_empty() {
            let _ = writeln!(
                html,
                "<details class=\"more\"><summary>{} more metric{} of {task}: {}</summary>",
                others.len(),
                if others.len() == 1 { "" } else { "s" },
                super::esc(&others.join(", "))
            );
            for metric in &others {
                html += &tables::paper(&table_of(Some(metric))?);
            }
            html += "</details>\n";
        }
        out.push(TaskTables {
            task: task.to_string(),
            published: head.rows.iter().any(|r| r.kind == RowKind::Published),
            metric: head.metric,
            html,
        });
    }
    out.sort_by_key(|t| !t.published);
    Ok(out)
}

/// The metric names of `task`'s results, in first-seen order.
fn metrics_of(results: &[RunResult], task: &str) -> Vec<String> {
    let mut names: Vec<String> = Vec::new();
    for m in results
        .iter()
        .filter(|r| r.task == task)
        .flat_map(|r| &r.metrics)
    {
        if !names.contains(&m.name) {
            names.push(m.name.clone());
        }
    }
    names
}
