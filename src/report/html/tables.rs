//! Tables as HTML: the paper-shaped [`Table`]s (ours, published and Δ rows told apart by
//! class), the tables a task builds itself, and plain CSV; every one sortable by column.

use super::escape::esc;
use crate::report::{Cell, DetailTable, RowKind, Table};
use std::fmt::Write;

/// A [`Table`] with its title as caption and its notes under it. Each row carries its kind
/// (`ours`, `published`, `delta`) as class and `data-kind`; each number cell its value in
/// `data-v`, which the sort reads.
pub fn paper(table: &Table) -> String {
    let mut html = String::from("<div class=\"table\">\n<table class=\"sortable paper\">\n");
    // A list of several metrics is the rows' labels already; one metric is worth naming.
    let metric = if table.metric.contains(", ") {
        String::new()
    } else {
        format!(" <span class=\"metric\">{}</span>", esc(&table.metric))
    };
    let _ = writeln!(html, "<caption>{}{metric}</caption>", esc(&table.title));
    html += &head(std::iter::once(&table.corner).chain(&table.columns));
    html += "<tbody>\n";
    for row in &table.rows {
        let kind = kind_name(row.kind);
        let label = match row.kind {
            RowKind::Delta => format!("Δ {}", row.label),
            _ => row.label.clone(),
        };
        let _ = write!(
            html,
            "<tr class=\"{kind}\" data-kind=\"{kind}\"><th scope=\"row\">{}</th>",
            esc(&label)
        );
        for cell in &row.cells {
            html += &number_cell(*cell, row.kind);
        }
        html += "</tr>\n";
    }
    html += "</tbody>\n</table>\n";
    if !table.notes.is_empty() {
        html += "<ul class=\"notes\">\n";
        for note in &table.notes {
            let _ = writeln!(html, "<li>{}</li>", esc(note));
        }
        html += "</ul>\n";
    }
    html + "</div>\n"
}

/// A task's own table (per class, per tap): its first column a label, the rest numbers.
pub fn detail(table: &DetailTable) -> String {
    let mut html = String::from("<table class=\"sortable detail\">\n");
    let _ = writeln!(html, "<caption>{}</caption>", esc(&table.title));
    html += &head(table.columns.iter());
    html + &body(&table.rows) + "</table>\n"
}

/// A CSV file with a header line (a training log) as a table; fields are split on commas.
pub fn csv(text: &str) -> String {
    let mut lines = text.lines().filter(|l| !l.trim().is_empty());
    let Some(header) = lines.next() else {
        return String::new();
    };
    let columns: Vec<String> = header.split(',').map(str::to_string).collect();
    let rows: Vec<Vec<String>> = lines
        .map(|l| l.split(',').map(str::to_string).collect())
        .collect();
    String::from("<table class=\"sortable log\">\n")
        + &head(columns.iter())
        + &body(&rows)
        + "</table>\n"
}

/// A header row whose cells sort the table on click.
fn head<'a>(columns: impl Iterator<Item = &'a String>) -> String {
    let mut html = String::from("<thead><tr>");
    for c in columns {
        let _ = write!(html, "<th scope=\"col\" title=\"sort\">{}</th>", esc(c));
    }
    html + "</tr></thead>\n"
}

/// Rows of text cells, the first a row header.
fn body(rows: &[Vec<String>]) -> String {
    let mut html = String::from("<tbody>\n");
    for row in rows {
        html += "<tr>";
        for (i, cell) in row.iter().enumerate() {
            let tag = if i == 0 { "th" } else { "td" };
            let _ = write!(html, "<{tag}>{}</{tag}>", esc(cell));
        }
        html += "</tr>\n";
    }
    html + "</tbody>\n"
}

/// `45.2`, `45.2 ± 0.3`, `+1.5` in Δ rows, an empty cell for none.
fn number_cell(cell: Option<Cell>, kind: RowKind) -> String {
    let Some(c) = cell else {
        return "<td class=\"none\">–</td>".into();
    };
    let shown = match (kind, c.std) {
        (RowKind::Delta, _) => format!("{:+.1}", c.mean),
        (_, Some(s)) => format!("{:.1}<span class=\"pm\"> ± {s:.1}</span>", c.mean),
        (_, None) => format!("{:.1}", c.mean),
    };
    format!("<td data-v=\"{}\">{shown}</td>", c.mean)
}

fn kind_name(kind: RowKind) -> &'static str {
    match kind {
        RowKind::Ours => "ours",
        RowKind::Published => "published",
        RowKind::Delta => "delta",
    }
}
