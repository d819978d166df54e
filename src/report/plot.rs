//! PNG plots of tables: grouped bars per layer, and curves over layers or low-shot k with a
//! ±std band. Text needs a TrueType font read at run time (`SSLBENCH_FONT`, else a standard
//! system path); without one the plot is drawn without text after a one-line warning.

use super::table::{Cell, RowKind, Table};
use anyhow::{anyhow, Result};
use plotters::coord::types::RangedCoordf64;
use plotters::coord::Shift;
use plotters::prelude::*;
use plotters::style::text_anchor::{HPos, Pos, VPos};
use std::path::{Path, PathBuf};
use std::sync::OnceLock;

/// Font files tried in order when `SSLBENCH_FONT` is not set (Debian's `fonts-dejavu-core`
/// first, then the DejaVu and Liberation paths of other distributions, then macOS).
const FONT_PATHS: [&str; 5] = [
    "/usr/share/fonts/truetype/dejavu/DejaVuSans.ttf",
    "/usr/share/fonts/TTF/DejaVuSans.ttf",
    "/usr/share/fonts/dejavu/DejaVuSans.ttf",
    "/usr/share/fonts/truetype/liberation/LiberationSans-Regular.ttf",
    "/System/Library/Fonts/Supplemental/Arial.ttf",
];

/// The family name the font is registered under.
pub(crate) const FAMILY: &str = "sans-serif";

/// Series colours (Tableau 10), in order; they repeat past ten series.
pub(crate) const COLORS: [RGBColor; 10] = [
    RGBColor(31, 119, 180),
    RGBColor(255, 127, 14),
    RGBColor(44, 160, 44),
    RGBColor(214, 39, 40),
    RGBColor(148, 103, 189),
    RGBColor(140, 86, 75),
    RGBColor(227, 119, 194),
    RGBColor(127, 127, 127),
    RGBColor(188, 189, 34),
    RGBColor(23, 190, 207),
];

const WIDTH: u32 = 1000;
const HEIGHT: u32 = 600;

type Area<'a> = DrawingArea<BitMapBackend<'a>, Shift>;
type Chart<'a, 'b> =
    ChartContext<'a, BitMapBackend<'b>, Cartesian2d<RangedCoordf64, RangedCoordf64>>;

/// Grouped bars: a group per column (tap), a bar per row, whiskers at ±std. Δ rows are left
/// out (they are differences, not values).
pub fn bars(table: &Table, x_label: &str, y_label: &str, path: &Path) -> Result<()> {
    let series = plotted(table);
    draw_png(path, |root| {
        let text = has_font();
        let mut chart = frame(root, table, x_label, y_label, &series, text)?;
        let width = 0.8 / series.len().max(1) as f64;
        for (j, (label, cells, _)) in series.iter().enumerate() {
            let color = color(j);
            let left = |i: usize| i as f64 - 0.4 + j as f64 * width;
            let drawn = chart
                .draw_series(cells.iter().enumerate().filter_map(|(i, c)| {
                    c.map(|c| {
                        Rectangle::new(
                            [(left(i), 0.0), (left(i) + width * 0.9, c.mean)],
                            color.filled(),
                        )
                    })
                }))
                .map_err(drawing)?;
            if text {
                drawn.label(label.as_str()).legend(move |(x, y)| {
                    Rectangle::new([(x, y - 5), (x + 14, y + 5)], color.filled())
                });
            }
            let whiskers = cells.iter().enumerate().filter_map(|(i, c)| {
                let c = (*c)?;
                let s = c.std?;
                let x = left(i) + width * 0.45;
                Some(PathElement::new(
                    vec![(x, c.mean - s), (x, c.mean + s)],
                    BLACK.stroke_width(2),
                ))
            });
            chart.draw_series(whiskers).map_err(drawing)?;
        }
        finish(root, &mut chart, table, text)
    })
}

/// Curves over the columns (taps or k), one per row, published rows dashed, a shaded band at
/// ±std where a cell has one. Δ rows are left out.
pub fn lines(table: &Table, x_label: &str, y_label: &str, path: &Path) -> Result<()> {
    let series = plotted(table);
    draw_png(path, |root| {
        let text = has_font();
        let mut chart = frame(root, table, x_label, y_label, &series, text)?;
        for (j, (_, cells, _)) in series.iter().enumerate() {
            let band = color(j).mix(0.2);
            for run in runs(cells) {
                if run.iter().all(|(_, c)| c.std.is_some()) && run.len() > 1 {
                    let upper = run
                        .iter()
                        .map(|(i, c)| (*i as f64, c.mean + c.std.unwrap_or(0.0)));
                    let lower = run
                        .iter()
                        .rev()
                        .map(|(i, c)| (*i as f64, c.mean - c.std.unwrap_or(0.0)));
                    let outline: Vec<(f64, f64)> = upper.chain(lower).collect();
                    chart
                        .draw_series(std::iter::once(Polygon::new(outline, band.filled())))
                        .map_err(drawing)?;
                }
            }
        }
        for (j, (label, cells, published)) in series.iter().enumerate() {
            let color = color(j);
            let style = color.stroke_width(2);
            for run in runs(cells) {
                let points: Vec<(f64, f64)> =
                    run.iter().map(|(i, c)| (*i as f64, c.mean)).collect();
                if *published {
                    chart
                        .draw_series(DashedLineSeries::new(points, 10, 6, style))
                        .map_err(drawing)?;
                } else {
                    chart
                        .draw_series(LineSeries::new(points, style))
                        .map_err(drawing)?;
                }
            }
            let markers = cells
                .iter()
                .enumerate()
                .filter_map(|(i, c)| c.map(|c| Circle::new((i as f64, c.mean), 4, color.filled())));
            let drawn = chart.draw_series(markers).map_err(drawing)?;
            if text {
                // A gap in the middle of the legend's line for a dashed (published) series.
                let gap = if *published { 4 } else { 0 };
                drawn.label(label.as_str()).legend(move |(x, y)| {
                    EmptyElement::at((x, y))
                        + PathElement::new(vec![(0, 0), (7, 0)], style)
                        + PathElement::new(vec![(7 + gap, 0), (18, 0)], style)
                });
            }
        }
        finish(root, &mut chart, table, text)
    })
}

fn color(series: usize) -> RGBAColor {
    COLORS[series % COLORS.len()].to_rgba()
}

/// The rows a plot shows: (label, cells, published?), Δ rows left out.
fn plotted(table: &Table) -> Vec<(String, Vec<Option<Cell>>, bool)> {
    table
        .rows
        .iter()
        .filter(|r| r.kind != RowKind::Delta)
        .map(|r| {
            (
                r.label.clone(),
                r.cells.clone(),
                r.kind == RowKind::Published,
            )
        })
        .collect()
}

/// Maximal runs of consecutive present cells, with their column index.
fn runs(cells: &[Option<Cell>]) -> Vec<Vec<(usize, Cell)>> {
    let mut out: Vec<Vec<(usize, Cell)>> = vec![Vec::new()];
    for (i, c) in cells.iter().enumerate() {
        match c {
            Some(c) => out.last_mut().map_or((), |r| r.push((i, *c))),
            None => out.push(Vec::new()),
        }
    }
    out.retain(|r| !r.is_empty());
    out
}

/// The chart: a categorical x axis (one slot per column), y from 0 past the largest mean+std,
/// horizontal grid lines, and with a font, the title and axis descriptions.
fn frame<'a, 'b>(
    root: &'a Area<'b>,
    table: &Table,
    x_label: &str,
    y_label: &str,
    series: &[(String, Vec<Option<Cell>>, bool)],
    text: bool,
) -> Result<Chart<'a, 'b>> {
    let top = series
        .iter()
        .flat_map(|(_, cells, _)| cells.iter().flatten())
        .map(|c| c.mean + c.std.unwrap_or(0.0))
        .fold(0.0f64, f64::max);
    let top = (top * 1.15).clamp(1.0, 110.0);
    let n = table.columns.len().max(1) as f64;
    let mut builder = ChartBuilder::on(root);
    builder.margin(20);
    if text {
        builder
            .caption(&table.title, (FAMILY, 24))
            .x_label_area_size(if x_label.is_empty() { 40 } else { 70 })
            .y_label_area_size(70);
    } else {
        builder.x_label_area_size(10).y_label_area_size(10);
    }
    let mut chart = builder
        .build_cartesian_2d(-0.5..n - 0.5, 0.0..top)
        .map_err(drawing)?;
    if text {
        chart
            .configure_mesh()
            .disable_x_mesh()
            .x_labels(0)
            .y_labels(10)
            .y_label_formatter(&|v| format!("{v:.0}"))
            .light_line_style(TRANSPARENT)
            .y_desc(y_label)
            .x_desc(x_label)
            .label_style((FAMILY, 18))
            .axis_desc_style((FAMILY, 18))
            .draw()
            .map_err(drawing)?;
    } else {
        let step = nice_step(top);
        let grid = (1..)
            .map(|i| i as f64 * step)
            .take_while(|y| *y <= top)
            .map(|y| PathElement::new(vec![(-0.5, y), (n - 0.5, y)], BLACK.mix(0.15)));
        chart.draw_series(grid).map_err(drawing)?;
        chart
            .draw_series(std::iter::once(PathElement::new(
                vec![(-0.5, top), (-0.5, 0.0), (n - 0.5, 0.0)],
                BLACK.stroke_width(1),
            )))
            .map_err(drawing)?;
    }
    Ok(chart)
}

/// A round grid spacing giving 5 to 10 lines up to `top`.
fn nice_step(top: f64) -> f64 {
    let raw = top / 8.0;
    let magnitude = 10f64.powf(raw.log10().floor());
    [1.0, 2.0, 5.0, 10.0]
        .iter()
        .map(|m| m * magnitude)
        .find(|s| *s >= raw)
        .unwrap_or(raw)
}

/// With a font: the column names under their slots, and the legend.
fn finish<'a, 'b: 'a>(
    root: &'a Area<'b>,
    chart: &mut Chart<'a, 'b>,
    table: &Table,
    text: bool,
) -> Result<()> {
    if !text {
        return Ok(());
    }
    let size = if table.columns.len() > 8 { 13 } else { 17 };
    let style = TextStyle::from((FAMILY, size).into_font()).pos(Pos::new(HPos::Center, VPos::Top));
    for (i, name) in table.columns.iter().enumerate() {
        let (x, y) = chart.backend_coord(&(i as f64, 0.0));
        root.draw_text(name, &style, (x, y + 8)).map_err(drawing)?;
    }
    legend(chart, SeriesLabelPosition::UpperLeft)
}

/// The boxed legend of the labelled series, at `position`.
fn legend<'a, 'b: 'a>(chart: &mut Chart<'a, 'b>, position: SeriesLabelPosition) -> Result<()> {
    chart
        .configure_series_labels()
        .position(position)
        .label_font((FAMILY, 16))
        .background_style(WHITE.mix(0.85))
        .border_style(BLACK.mix(0.5))
        .draw()
        .map_err(drawing)
}

/// Draws into an RGB buffer and writes it as a PNG (atomically).
fn draw_png(path: &Path, draw: impl FnOnce(&Area) -> Result<()>) -> Result<()> {
    let mut buffer = vec![255u8; (WIDTH * HEIGHT * 3) as usize];
    {
        let root = BitMapBackend::with_buffer(&mut buffer, (WIDTH, HEIGHT)).into_drawing_area();
        draw(&root)?;
        root.present().map_err(drawing)?;
    }
    let image = image::RgbImage::from_raw(WIDTH, HEIGHT, buffer)
        .ok_or_else(|| anyhow!("internal: plot buffer of the wrong size"))?;
    let mut png = std::io::Cursor::new(Vec::new());
    image.write_to(&mut png, image::ImageFormat::Png)?;
    crate::atomic::write_atomic(path, png.get_ref())
}

fn drawing(e: impl std::fmt::Display) -> anyhow::Error {
    anyhow!("cannot draw the plot: {e}")
}

/// Whether plots have text: the font is loaded once per process, with a one-line warning
/// when none can be.
pub(crate) fn has_font() -> bool {
    static LOADED: OnceLock<bool> = OnceLock::new();
    *LOADED.get_or_init(|| match load_font() {
        Ok(()) => true,
        Err(why) => {
            eprintln!("warning: {why}; plots are drawn without text");
            false
        }
    })
}

/// Registers the first readable TrueType font: `SSLBENCH_FONT` when set, else [`FONT_PATHS`].
fn load_font() -> std::result::Result<(), String> {
    let asked = std::env::var_os("SSLBENCH_FONT").map(PathBuf::from);
    let candidates: Vec<PathBuf> = match &asked {
        Some(p) => vec![p.clone()],
        None => FONT_PATHS.iter().map(PathBuf::from).collect(),
    };
    for path in &candidates {
        let Ok(bytes) = std::fs::read(path) else {
            continue;
        };
        // plotters keeps fonts for the whole process: the one font read is kept too.
        let bytes: &'static [u8] = Box::leak(bytes.into_boxed_slice());
        if plotters::style::register_font(FAMILY, FontStyle::Normal, bytes).is_ok() {
            return Ok(());
        }
    }
    Err(match asked {
        Some(p) => format!(
            "SSLBENCH_FONT={} is not a readable TrueType font",
            p.display()
        ),
        None => "no font found (apt-get install fonts-dejavu-core, or set SSLBENCH_FONT to a \
                 .ttf file)"
            .to_string(),
    })
}

/// Curves over a numeric x axis (training steps, environment frames): one line per
/// `(label, points)` series, axes fitted to the data.
pub fn curves(
    title: &str,
    series: &[(String, Vec<(f64, f64)>)],
    x_label: &str,
    y_label: &str,
    path: &Path,
) -> Result<()> {
    let banded: Vec<(String, Vec<(f64, f64, f64)>)> = series
        .iter()
        .map(|(l, p)| (l.clone(), p.iter().map(|&(x, y)| (x, y, 0.0)).collect()))
        .collect();
    band_curves(title, &banded, x_label, y_label, path)
}

/// [`curves`] with a shaded band of +-`spread` around each line: `(x, mean, spread)` points
/// (the mean and std over seeds).
pub fn band_curves(
    title: &str,
    series: &[(String, Vec<(f64, f64, f64)>)],
    x_label: &str,
    y_label: &str,
    path: &Path,
) -> Result<()> {
    let all = || series.iter().flat_map(|(_, p)| p.iter());
    let (x0, x1) = all().fold((f64::MAX, f64::MIN), |(a, b), p| (a.min(p.0), b.max(p.0)));
    let (y0, y1) = all().fold((f64::MAX, f64::MIN), |(a, b), p| {
        (a.min(p.1 - p.2), b.max(p.1 + p.2))
    });
    if x0 > x1 || !(y0.is_finite() && y1.is_finite()) {
        return Err(anyhow!("no finite points to plot in {}", path.display()));
    }
    let pad = ((y1 - y0) * 0.05).max(1e-6);
    let x1 = if x1 > x0 { x1 } else { x0 + 1.0 };
    draw_png(path, |root| {
        let text = has_font();
        let mut builder = ChartBuilder::on(root);
        builder.margin(20);
        if text {
            builder
                .caption(title, (FAMILY, 24))
                .x_label_area_size(60)
                .y_label_area_size(80);
        }
        let mut chart = builder
            .build_cartesian_2d(x0..x1, (y0 - pad)..(y1 + pad))
            .map_err(drawing)?;
        let mut mesh = chart.configure_mesh();
        mesh.light_line_style(TRANSPARENT);
        if text {
            mesh.x_desc(x_label)
                .y_desc(y_label)
                .label_style((FAMILY, 16))
                .axis_desc_style((FAMILY, 18));
        } else {
            mesh.x_labels(0).y_labels(0);
        }
        mesh.draw().map_err(drawing)?;
        for (j, (label, points)) in series.iter().enumerate() {
            if points.iter().any(|p| p.2 > 0.0) {
                let upper = points.iter().map(|p| (p.0, p.1 + p.2));
                let lower = points.iter().rev().map(|p| (p.0, p.1 - p.2));
                let shade = color(j).mix(0.2).filled();
                chart
                    .draw_series(std::iter::once(Polygon::new(
                        upper.chain(lower).collect::<Vec<_>>(),
                        shade,
                    )))
                    .map_err(drawing)?;
            }
            let style = color(j).stroke_width(2);
            let drawn = chart
                .draw_series(LineSeries::new(points.iter().map(|p| (p.0, p.1)), style))
                .map_err(drawing)?;
            if text {
                drawn
                    .label(label.as_str())
                    .legend(move |(x, y)| PathElement::new(vec![(x, y), (x + 18, y)], style));
            }
        }
        if text && series.len() > 1 {
            legend(&mut chart, SeriesLabelPosition::UpperRight)?;
        }
        Ok(())
    })
}
