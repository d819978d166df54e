//! Tables of results in the paper's shape (rows are checkpoints, columns are layers or
//! low-shot k), beside published rows and their differences, as Markdown, CSV or LaTeX.

use super::reference::{Better, Reference, BEST_LAYER};
use super::result::{Metric, RunResult};
use crate::backbone::Tap;
use anyhow::{bail, Result};
use std::collections::{BTreeSet, HashMap};
use std::fmt::Write;
use std::hash::Hash;
use std::str::FromStr;

/// The metrics a task's table shows when `--metric` does not say, in order of preference.
const DEFAULT_METRICS: [&str; 3] = ["mAP", "top1", "top5"];

/// How a table is written out.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Format {
    /// A GitHub Markdown table, padded to line up in a terminal.
    Markdown,
    /// Comma-separated values: a `kind` column, and a `<column> std` column beside every
    /// column that has a spread.
    Csv,
    /// A LaTeX `tabular` with booktabs rules.
    Latex,
}

impl FromStr for Format {
    type Err = anyhow::Error;
    fn from_str(s: &str) -> Result<Self> {
        match s {
            "markdown" | "md" => Ok(Format::Markdown),
            "csv" => Ok(Format::Csv),
            "latex" | "tex" => Ok(Format::Latex),
            _ => bail!("unknown table format `{s}`: use markdown, csv or latex"),
        }
    }
}

/// One table cell: a mean, and its standard deviation when there were several samples.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Cell {
    /// The value (the mean over samples or seeds), in percent.
    pub mean: f64,
    /// Standard deviation over samples or seeds.
    pub std: Option<f64>,
}

impl Cell {
    fn of(m: &Metric) -> Cell {
        Cell {
            mean: m.value,
            std: m.spread.map(|s| s.std),
        }
    }
}

/// What a row holds.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum RowKind {
    /// Our measurements.
    Ours,
    /// A published row from a reference file.
    Published,
    /// Ours minus published, for a backbone whose `paper_row` names a published row.
    Delta,
}

impl RowKind {
    fn name(self) -> &'static str {
        match self {
            RowKind::Ours => "ours",
            RowKind::Published => "published",
            RowKind::Delta => "delta",
        }
    }
}

/// One row: a label and one optional cell per column.
#[derive(Clone, Debug, PartialEq)]
pub struct Row {
    /// The row's label (a Δ row's label is written with a Δ in front).
    pub label: String,
    /// Ours, published, or a difference.
    pub kind: RowKind,
    /// One per column; `None` where there is no value.
    pub cells: Vec<Option<Cell>>,
}

/// A table ready to print or plot.
#[derive(Clone, Debug, PartialEq)]
pub struct Table {
    /// What the table shows.
    pub title: String,
    /// The metrics shown (`mAP`, `top1, top5`), all in percent.
    pub metric: String,
    /// The header of the label column.
    pub corner: String,
    /// Column headers.
    pub columns: Vec<String>,
    /// Rows: ours, then published, then differences.
    pub rows: Vec<Row>,
    /// Sources, choices and caveats, printed under the table.
    pub notes: Vec<String>,
}

/// What `sslbench table` shows of the results it is given.
#[derive(Clone, Debug, Default)]
pub struct Selection {
    /// Only this task (a task file stem); all tasks when `None`.
    pub task: Option<String>,
    /// This metric (`mAP`, `top1`, `top5`); each task's first of mAP, top1, top5 when `None`.
    pub metric: Option<String>,
    /// Low-shot: the tap whose values per k are shown; each row's best tap when `None`.
    pub tap: Option<String>,
}

/// A column of a task: a tap, a low-shot k, or the best tap (beside a value published at the
/// best layer).
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
enum Axis {
    /// A tap: network order first (conv1..conv5, res2..res5, pool5), then name.
    Tap(usize, String),
    /// Images per class.
    K(usize),
    /// Each row's best tap.
    Best,
}

impl Axis {
    fn tap(name: &str) -> Axis {
        let rank = name.parse::<Tap>().map_or(usize::MAX, |t| t as usize);
        Axis::Tap(rank, name.to_string())
    }

    fn label(&self) -> String {
        match self {
            Axis::Tap(_, name) => name.clone(),
            Axis::K(k) => format!("k={k}"),
            Axis::Best => BEST_LAYER.to_string(),
        }
    }

    /// The column a published table names it by (none for a k).
    fn published_name(&self) -> Option<&str> {
        match self {
            Axis::Tap(_, name) => Some(name),
            Axis::K(_) => None,
            Axis::Best => Some(BEST_LAYER),
        }
    }
}

/// Rows in first-seen order and columns in sorted order, filled cell by cell.
struct Grid<C> {
    columns: BTreeSet<C>,
    rows: Vec<(String, RowKind)>,
    cells: HashMap<(usize, C), Cell>,
}

impl<C: Ord + Clone + Hash> Grid<C> {
    fn new() -> Self {
        Grid {
            columns: BTreeSet::new(),
            rows: Vec::new(),
            cells: HashMap::new(),
        }
    }

    fn row(&mut self, label: &str, kind: RowKind) -> usize {
        match self.rows.iter().position(|(l, k)| l == label && *k == kind) {
            Some(i) => i,
            None => {
                self.rows.push((label.to_string(), kind));
                self.rows.len() - 1
            }
        }
    }

    fn set(&mut self, row: usize, column: C, cell: Cell) {
        self.columns.insert(column.clone());
        self.cells.insert((row, column), cell);
    }

    fn get(&self, row: usize, column: &C) -> Option<Cell> {
        self.cells.get(&(row, column.clone())).copied()
    }

    fn into_table(
        self,
        title: String,
        metric: String,
        corner: &str,
        label: impl Fn(&C) -> String,
    ) -> Table {
        let columns: Vec<C> = self.columns.into_iter().collect();
        let rows = self
            .rows
            .iter()
            .enumerate()
            .map(|(i, (l, kind))| Row {
                label: l.clone(),
                kind: *kind,
                cells: columns
                    .iter()
                    .map(|c| self.cells.get(&(i, c.clone())).copied())
                    .collect(),
            })
            .collect();
        Table {
            title,
            metric,
            corner: corner.to_string(),
            columns: columns.iter().map(label).collect(),
            rows,
            notes: Vec::new(),
        }
    }
}

/// A column of the cross-run table: which task, which variant (several tasks only), which axis.
type ColumnKey = (usize, Option<String>, Axis);

/// What one task contributes to the cross-run table.
struct TaskView {
    task: String,
    metric: String,
    lowshot: bool,
    /// The variants of its metric; labels name them only when there are several.
    variants: Vec<Option<String>>,
}

/// Our row's identity and what the published rows need of it.
struct OurRow {
    row: usize,
    arch: String,
    paper_row: Option<String>,
}

/// The table of `sslbench table`: rows are checkpoints (`backbone_name`, and the variant
/// when one task with several variants is shown), columns are the taps in network order
/// (one task) or `task/tap` (several; `task[variant]/tap` where the task has several). Low-shot tasks have a column per k at one tap: `sel.tap`, or else
/// each row's tap with the best mean over k (named in the label or the notes). With a
/// reference, the published rows of the matching task, architecture and metric follow, then
/// a Δ row (ours − published) for each backbone whose `paper_row` names a published row.
pub fn paper_table(
    results: &[RunResult],
    sel: &Selection,
    reference: Option<&Reference>,
) -> Result<Table> {
    let chosen: Vec<&RunResult> = results
        .iter()
        .filter(|r| sel.task.as_ref().is_none_or(|t| &r.task == t))
        .collect();
    if chosen.is_empty() {
        let mut present: Vec<&str> = results.iter().map(|r| r.task.as_str()).collect();
        present.sort();
        present.dedup();
        bail!(
            "no results of task `{}` among {} files (tasks present: {})",
            sel.task.as_deref().unwrap_or("?"),
            results.len(),
            present.join(", ")
        );
    }
    let mut notes = Vec::new();
    let mut views: Vec<TaskView> = Vec::new();
    for r in &chosen {
        if views.iter().any(|v| v.task == r.task) {
            continue;
        }
        let of_task: Vec<&Metric> = chosen
            .iter()
            .filter(|o| o.task == r.task)
            .flat_map(|o| &o.metrics)
            .collect();
        let metric = match &sel.metric {
            Some(m) => m.clone(),
            None => default_metric(&of_task),
        };
        let lowshot = of_task.iter().any(|m| m.name == metric && m.k.is_some());
        let mut variants: Vec<Option<String>> = of_task
            .iter()
            .filter(|m| m.name == metric)
            .map(|m| m.variant.clone())
            .collect();
        variants.sort();
        variants.dedup();
        if let [Some(v)] = variants.as_slice() {
            notes.push(format!("{}: all values are the `{v}` variant", r.task));
        }
        views.push(TaskView {
            task: r.task.clone(),
            metric,
            lowshot,
            variants,
        });
    }
    let single = views.len() == 1;

    let mut grid: Grid<ColumnKey> = Grid::new();
    let mut ours: Vec<OurRow> = Vec::new();
    for r in &chosen {
        let t = views.iter().position(|v| v.task == r.task).unwrap_or(0);
        let view = &views[t];
        let metrics: Vec<&Metric> = r.metrics.iter().filter(|m| m.name == view.metric).collect();
        let mut variants: Vec<Option<String>> = metrics.iter().map(|m| m.variant.clone()).collect();
        variants.sort();
        variants.dedup();
        for variant in variants {
            let of_variant: Vec<&Metric> = metrics
                .iter()
                .copied()
                .filter(|m| m.variant == variant)
                .collect();
            let tagged = view.variants.len() > 1;
            let (row_variant, col_variant) = match (tagged, single) {
                (false, _) => (None, None),
                (true, true) => (variant.clone(), None),
                (true, false) => (None, variant.clone()),
            };
            let mut label = match &row_variant {
                Some(v) => format!("{} [{v}]", r.backbone_name),
                None => r.backbone_name.clone(),
            };
            let shown: Vec<&Metric> = if view.lowshot {
                let Some(tap) = lowshot_tap(&of_variant, sel.tap.as_deref()) else {
                    notes.push(format!(
                        "{label}: no {} low-shot values at tap {}",
                        view.task,
                        sel.tap.as_deref().unwrap_or("?")
                    ));
                    continue;
                };
                if single {
                    label = format!("{label} @{tap}");
                } else {
                    notes.push(format!(
                        "{}{}: {} at {tap}",
                        view.task,
                        col_variant
                            .as_ref()
                            .map_or(String::new(), |v| format!(" [{v}]")),
                        r.backbone_name
                    ));
                }
                of_variant.into_iter().filter(|m| m.tap == tap).collect()
            } else {
                of_variant.into_iter().filter(|m| m.k.is_none()).collect()
            };
            let row = grid.row(&label, RowKind::Ours);
            if !ours.iter().any(|o| o.row == row) {
                ours.push(OurRow {
                    row,
                    arch: r.arch.clone(),
                    paper_row: r.paper_row.clone(),
                });
            }
            for m in shown {
                let axis = match m.k {
                    Some(k) => Axis::K(k),
                    None => Axis::tap(&m.tap),
                };
                grid.set(row, (t, col_variant.clone(), axis), Cell::of(m));
            }
        }
    }
    if grid.columns.is_empty() {
        let asked: Vec<String> = views
            .iter()
            .map(|v| format!("{} ({})", v.task, v.metric))
            .collect();
        bail!("no values to show for {}", asked.join(", "));
    }
    if views.iter().any(|v| v.lowshot) && sel.tap.is_none() {
        notes.push("low-shot columns are at each row's tap with the best mean over k".into());
    }
    if let Some(reference) = reference {
        add_published(&mut grid, &views, &ours, reference, &mut notes);
    }

    let title = if single {
        let v = &views[0];
        let shape = if v.lowshot { "per k" } else { "per layer" };
        format!("{} ({}, {shape})", v.task, v.metric)
    } else {
        views
            .iter()
            .map(|v| format!("{} ({})", v.task, v.metric))
            .collect::<Vec<_>>()
            .join(", ")
    };
    let mut metrics: Vec<&str> = views.iter().map(|v| v.metric.as_str()).collect();
    metrics.sort();
    metrics.dedup();
    let metric = metrics.join(", ");
    let mut table = grid.into_table(title, metric, "checkpoint", |(t, variant, axis)| {
        if single {
            axis.label()
        } else {
            let v = variant.as_ref().map_or(String::new(), |v| format!("[{v}]"));
            format!("{}{v}/{}", views[*t].task, axis.label())
        }
    });
    table.notes = notes;
    Ok(table)
}

/// The first of mAP, top1, top5 among `metrics`, else the first name seen.
fn default_metric(metrics: &[&Metric]) -> String {
    DEFAULT_METRICS
        .iter()
        .find(|d| metrics.iter().any(|m| m.name == **d))
        .map(|d| d.to_string())
        .or_else(|| metrics.first().map(|m| m.name.clone()))
        .unwrap_or_else(|| DEFAULT_METRICS[0].to_string())
}

/// The low-shot tap to show: `asked` if given, else the one with the best mean over k.
fn lowshot_tap(metrics: &[&Metric], asked: Option<&str>) -> Option<String> {
    if let Some(tap) = asked {
        return metrics
            .iter()
            .any(|m| m.tap == tap)
            .then(|| tap.to_string());
    }
    let mut sums: Vec<(String, f64, usize)> = Vec::new();
    for m in metrics.iter().filter(|m| m.k.is_some()) {
        match sums.iter_mut().find(|(t, _, _)| *t == m.tap) {
            Some((_, s, n)) => {
                *s += m.value;
                *n += 1;
            }
            None => sums.push((m.tap.clone(), m.value, 1)),
        }
    }
    sums.into_iter()
        .map(|(t, s, n)| (t, s / n as f64))
        .max_by(|a, b| a.1.total_cmp(&b.1))
        .map(|(t, _)| t)
}

/// Adds the published rows of `reference` for our architectures and tasks, then a Δ row for
/// each of our rows whose `paper_row` names one. A published row's per-layer values and its
/// value at the best layer share one row; the latter sits in a `best` column, where our rows
/// hold their best tap's value (named in the notes).
fn add_published(
    grid: &mut Grid<ColumnKey>,
    views: &[TaskView],
    ours: &[OurRow],
    reference: &Reference,
    notes: &mut Vec<String>,
) {
    let mut archs: Vec<&str> = ours.iter().map(|o| o.arch.as_str()).collect();
    archs.sort();
    archs.dedup();
    let several_archs = archs.len() > 1;
    // (arch, published name) -> grid row
    let mut published: Vec<(String, String, usize)> = Vec::new();
    for arch in &archs {
        for (t, view) in views.iter().enumerate() {
            if view.lowshot {
                notes.push(format!(
                    "{} has no low-shot table for {} (the paper plots them)",
                    reference.source.id, view.task
                ));
                continue;
            }
            let tables: Vec<_> = reference
                .tables_for(&view.task, arch, &view.metric)
                .collect();
            if tables.is_empty() {
                notes.push(format!(
                    "{} has no {} table for {arch} ({})",
                    reference.source.id, view.task, view.metric
                ));
                continue;
            }
            for table in tables {
                if table.at_best_layer() {
                    add_best_taps(grid, t, ours, arch, table.better, notes);
                }
                notes.push(format!(
                    "published {arch} rows: {}; {}",
                    table.title, table.citation
                ));
                let columns: Vec<ColumnKey> = grid
                    .columns
                    .iter()
                    .filter(|(ct, _, _)| *ct == t)
                    .cloned()
                    .collect();
                for prow in &table.rows {
                    let label = if several_archs {
                        format!("{} (published, {arch})", prow.name)
                    } else {
                        format!("{} (published)", prow.name)
                    };
                    let mut row = None;
                    for key in &columns {
                        let Some(column) = key.2.published_name() else {
                            continue;
                        };
                        if let Some(v) = table.value(&prow.name, column) {
                            let r =
                                *row.get_or_insert_with(|| grid.row(&label, RowKind::Published));
                            grid.cells
                                .insert((r, key.clone()), Cell { mean: v, std: None });
                        }
                    }
                    if let Some(r) = row {
                        if !published.iter().any(|(_, _, pr)| *pr == r) {
                            published.push((arch.to_string(), prow.name.clone(), r));
                        }
                        if let Some(note) = &prow.note {
                            notes.push(format!("{}: {note}", prow.name));
                        }
                    }
                }
            }
        }
    }
    let columns: Vec<ColumnKey> = grid.columns.iter().cloned().collect();
    for o in ours {
        let Some(name) = &o.paper_row else { continue };
        let our_label = grid.rows[o.row].0.clone();
        let Some(&(_, _, pr)) = published.iter().find(|(a, n, _)| *a == o.arch && n == name) else {
            notes.push(format!(
                "{our_label}: paper_row `{name}` is not a published {} row shown here",
                o.arch
            ));
            continue;
        };
        let delta = grid.row(&format!("{our_label} vs {name}"), RowKind::Delta);
        for key in &columns {
            if let (Some(a), Some(b)) = (grid.get(o.row, key), grid.get(pr, key)) {
                grid.cells.insert(
                    (delta, key.clone()),
                    Cell {
                        mean: a.mean - b.mean,
                        std: None,
                    },
                );
            }
        }
    }
    notes.push(format!("published: {}", reference.source.citation));
}

/// Fills the `best` column of task `t` for our rows of `arch`: each row's best tap value (by
/// `better`), per variant column, once.
fn add_best_taps(
    grid: &mut Grid<ColumnKey>,
    t: usize,
    ours: &[OurRow],
    arch: &str,
    better: Better,
    notes: &mut Vec<String>,
) {
    let taps: Vec<ColumnKey> = grid
        .columns
        .iter()
        .filter(|(ct, _, axis)| *ct == t && matches!(axis, Axis::Tap(..)))
        .cloned()
        .collect();
    for o in ours.iter().filter(|o| o.arch == arch) {
        let mut variants: Vec<Option<String>> = taps.iter().map(|k| k.1.clone()).collect();
        variants.dedup();
        for variant in variants {
            let key = (t, variant.clone(), Axis::Best);
            if grid.get(o.row, &key).is_some() {
                continue;
            }
            let best = taps
                .iter()
                .filter(|k| k.1 == variant)
                .filter_map(|k| grid.get(o.row, k).map(|c| (k, c)))
                .reduce(|a, b| {
                    if better.best(a.1.mean, b.1.mean) == a.1.mean {
                        a
                    } else {
                        b
                    }
                });
            if let Some((k, cell)) = best {
                notes.push(format!(
                    "best layer of {}: {}",
                    grid.rows[o.row].0,
                    k.2.label()
                ));
                grid.set(o.row, key, cell);
            }
        }
    }
}

/// The tables of one run, for `<run>.md` and its plots.
#[derive(Clone, Debug, PartialEq)]
pub struct RunTables {
    /// Rows are metric and variant, columns the taps (metrics without k).
    pub per_layer: Option<Table>,
    /// Rows are metric, tap and variant, columns the low-shot k (metrics with k).
    pub per_k: Option<Table>,
}

/// The tables of one run.
pub fn run_tables(r: &RunResult) -> RunTables {
    let mut per_layer: Grid<Axis> = Grid::new();
    let mut per_k: Grid<Axis> = Grid::new();
    let mut layer_metrics: Vec<&str> = Vec::new();
    let mut k_metrics: Vec<&str> = Vec::new();
    for m in &r.metrics {
        let names = if m.k.is_some() {
            &mut k_metrics
        } else {
            &mut layer_metrics
        };
        if !names.contains(&m.name.as_str()) {
            names.push(&m.name);
        }
        let variant = m
            .variant
            .as_ref()
            .map_or(String::new(), |v| format!(" [{v}]"));
        match m.k {
            None => {
                let row = per_layer.row(&format!("{}{variant}", m.name), RowKind::Ours);
                per_layer.set(row, Axis::tap(&m.tap), Cell::of(m));
            }
            Some(k) => {
                let row = per_k.row(&format!("{} {}{variant}", m.name, m.tap), RowKind::Ours);
                per_k.set(row, Axis::K(k), Cell::of(m));
            }
        }
    }
    let table = |grid: Grid<Axis>, metrics: Vec<&str>, shape: &str, corner: &str| {
        (!grid.columns.is_empty()).then(|| {
            let title = format!("{} on {}: {} {shape}", r.backbone_name, r.arch, r.task);
            grid.into_table(title, metrics.join(", "), corner, Axis::label)
        })
    };
    RunTables {
        per_layer: table(per_layer, layer_metrics, "per layer", "metric"),
        per_k: table(per_k, k_metrics, "per k", "metric tap"),
    }
}

/// One line per metric of a run, every field in its own column: `<run>.csv`.
pub fn run_csv(r: &RunResult) -> String {
    let mut out =
        String::from("run,task,backbone,arch,paper_row,tap,metric,variant,k,value,std,min,max,n\n");
    for m in &r.metrics {
        let opt = |v: Option<f64>| v.map_or(String::new(), number);
        let fields = [
            r.run.clone(),
            r.task.clone(),
            r.backbone_name.clone(),
            r.arch.clone(),
            r.paper_row.clone().unwrap_or_default(),
            m.tap.clone(),
            m.name.clone(),
            m.variant.clone().unwrap_or_default(),
            m.k.map_or(String::new(), |k| k.to_string()),
            number(m.value),
            opt(m.spread.map(|s| s.std)),
            opt(m.spread.map(|s| s.min)),
            opt(m.spread.map(|s| s.max)),
            m.spread.map_or(String::new(), |s| s.n.to_string()),
        ];
        let line: Vec<String> = fields.iter().map(|f| csv_field(f)).collect();
        out.push_str(&line.join(","));
        out.push('\n');
    }
    out
}

impl Table {
    /// The table in `format`.
    pub fn render(&self, format: Format) -> String {
        match format {
            Format::Markdown => self.markdown(),
            Format::Csv => self.csv(),
            Format::Latex => self.latex(),
        }
    }

    /// The table without the column `name` (e.g. [`BEST_LAYER`] before drawing per-layer
    /// curves); rows left with no value go too.
    pub fn without_column(&self, name: &str) -> Table {
        let keep: Vec<bool> = self.columns.iter().map(|c| c != name).collect();
        let pick = |cells: &[Option<Cell>]| -> Vec<Option<Cell>> {
            cells
                .iter()
                .zip(&keep)
                .filter(|(_, k)| **k)
                .map(|(c, _)| *c)
                .collect()
        };
        Table {
            columns: self
                .columns
                .iter()
                .filter(|c| *c != name)
                .cloned()
                .collect(),
            rows: self
                .rows
                .iter()
                .map(|r| Row {
                    cells: pick(&r.cells),
                    ..r.clone()
                })
                .filter(|r| r.cells.iter().any(Option::is_some))
                .collect(),
            ..self.clone()
        }
    }

    /// The row labelled `label` (a Δ row's label has no Δ).
    pub fn row(&self, label: &str) -> Option<&Row> {
        self.rows.iter().find(|r| r.label == label)
    }

    /// The cell at row `label` and column `column`.
    pub fn cell(&self, label: &str, column: &str) -> Option<Cell> {
        let c = self.columns.iter().position(|h| h == column)?;
        self.row(label)?.cells[c]
    }

    fn label(row: &Row, delta: &str) -> String {
        match row.kind {
            RowKind::Delta => format!("{delta} {}", row.label),
            _ => row.label.clone(),
        }
    }

    fn markdown(&self) -> String {
        let mut grid: Vec<Vec<String>> = vec![std::iter::once(self.corner.clone())
            .chain(self.columns.iter().cloned())
            .collect()];
        for row in &self.rows {
            let mut line = vec![Table::label(row, "Δ")];
            line.extend(row.cells.iter().map(|c| text_cell(*c, row.kind, " ± ")));
            grid.push(line);
        }
        let widths: Vec<usize> = (0..grid[0].len())
            .map(|c| {
                grid.iter()
                    .map(|l| l[c].chars().count())
                    .max()
                    .unwrap_or(0)
                    .max(3)
            })
            .collect();
        let mut out = format!("### {}\n\n", self.title);
        for (i, line) in grid.iter().enumerate() {
            let cells: Vec<String> = line
                .iter()
                .enumerate()
                .map(|(c, s)| {
                    let pad = widths[c] - s.chars().count();
                    if c == 0 {
                        format!("{s}{}", " ".repeat(pad))
                    } else {
                        format!("{}{s}", " ".repeat(pad))
                    }
                })
                .collect();
            let _ = writeln!(out, "| {} |", cells.join(" | "));
            if i == 0 {
                let rules: Vec<String> = widths
                    .iter()
                    .enumerate()
                    .map(|(c, w)| {
                        if c == 0 {
                            "-".repeat(*w)
                        } else {
                            format!("{}:", "-".repeat(w - 1))
                        }
                    })
                    .collect();
                let _ = writeln!(out, "| {} |", rules.join(" | "));
            }
        }
        if !self.notes.is_empty() {
            out.push('\n');
            for n in &self.notes {
                let _ = writeln!(out, "- {n}");
            }
        }
        out
    }

    fn csv(&self) -> String {
        let spread: Vec<bool> = (0..self.columns.len())
            .map(|c| {
                self.rows
                    .iter()
                    .any(|r| r.cells[c].is_some_and(|x| x.std.is_some()))
            })
            .collect();
        let mut header = vec![self.corner.clone(), "kind".to_string()];
        for (c, name) in self.columns.iter().enumerate() {
            header.push(name.clone());
            if spread[c] {
                header.push(format!("{name} std"));
            }
        }
        let mut out = String::new();
        let line = |fields: &[String]| -> String {
            let quoted: Vec<String> = fields.iter().map(|f| csv_field(f)).collect();
            format!("{}\n", quoted.join(","))
        };
        out.push_str(&line(&header));
        for row in &self.rows {
            let mut fields = vec![row.label.clone(), row.kind.name().to_string()];
            for (c, cell) in row.cells.iter().enumerate() {
                fields.push(cell.map_or(String::new(), |x| number(x.mean)));
                if spread[c] {
                    fields.push(cell.and_then(|x| x.std).map_or(String::new(), number));
                }
            }
            out.push_str(&line(&fields));
        }
        out
    }

    fn latex(&self) -> String {
        let mut out = format!("% {}\n", latex_escape(&self.title));
        let _ = writeln!(
            out,
            "\\begin{{tabular}}{{l{}}}",
            "r".repeat(self.columns.len())
        );
        out.push_str("\\toprule\n");
        let header: Vec<String> = std::iter::once(&self.corner)
            .chain(&self.columns)
            .map(|h| latex_escape(h))
            .collect();
        let _ = writeln!(out, "{} \\\\", header.join(" & "));
        let mut previous = None;
        for row in &self.rows {
            if previous != Some(row.kind) {
                out.push_str("\\midrule\n");
                previous = Some(row.kind);
            }
            let mut fields = vec![match row.kind {
                RowKind::Delta => format!("$\\Delta$ {}", latex_escape(&row.label)),
                _ => latex_escape(&row.label),
            }];
            fields.extend(
                row.cells
                    .iter()
                    .map(|c| text_cell(*c, row.kind, " $\\pm$ ")),
            );
            let _ = writeln!(out, "{} \\\\", fields.join(" & "));
        }
        out.push_str("\\bottomrule\n\\end{tabular}\n");
        for n in &self.notes {
            let _ = writeln!(out, "% {}", latex_escape(n));
        }
        out
    }
}

/// A cell as text: `45.2`, `45.2 ± 0.3`, `+1.5` in Δ rows, `-` for none.
fn text_cell(cell: Option<Cell>, kind: RowKind, pm: &str) -> String {
    match (cell, kind) {
        (None, _) => "-".to_string(),
        (Some(c), RowKind::Delta) => format!("{:+.1}", c.mean),
        (Some(Cell { mean, std: Some(s) }), _) => format!("{mean:.1}{pm}{s:.1}"),
        (Some(Cell { mean, std: None }), _) => format!("{mean:.1}"),
    }
}

/// A number for CSV: at most 6 decimals, no float noise (`3.9`, not `3.9000000000000004`).
fn number(v: f64) -> String {
    let r = (v * 1e6).round() / 1e6;
    format!("{}", if r == 0.0 { 0.0 } else { r })
}

/// A CSV field, quoted when it holds a comma, a quote or a line break.
fn csv_field(s: &str) -> String {
    if s.contains([',', '"', '\n']) {
        format!("\"{}\"", s.replace('"', "\"\""))
    } else {
        s.to_string()
    }
}

/// Text with LaTeX's special characters escaped.
fn latex_escape(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            '\\' => out.push_str("\\textbackslash{}"),
            '&' | '%' | '$' | '#' | '_' | '{' | '}' => {
                out.push('\\');
                out.push(c);
            }
            '~' => out.push_str("\\textasciitilde{}"),
            '^' => out.push_str("\\textasciicircum{}"),
            'Δ' => out.push_str("$\\Delta$"),
            '±' => out.push_str("$\\pm$"),
            _ => out.push(c),
        }
    }
    out
}
