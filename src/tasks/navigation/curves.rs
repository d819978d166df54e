//! Learning curves over seeds: each agent's episodes averaged in windows of `run.log_every`
//! updates, then the mean and std over seeds per window; CSV per tap and PNG over taps.

use super::log::Row;
use crate::report::{plot, Spread};
use anyhow::Result;
use std::fmt::Write as _;
use std::path::Path;

/// One window of a tap's curve.
#[derive(Clone, Debug, PartialEq)]
pub struct Point {
    /// Environment frames at the window's end.
    pub frames: f64,
    /// Mean and std over seeds of the windowed mean return.
    pub reward: (f64, f64),
    /// Mean and std over seeds of the windowed success rate (percent).
    pub success: (f64, f64),
    /// Seeds with at least one finished episode so far.
    pub seeds: usize,
}

/// A seed's windowed (frames, return, success); a window with no finished episode carries
/// the previous window's values (none before the first episode).
fn windows(rows: &[Row], every: usize) -> Vec<(f64, Option<(f64, f64)>)> {
    let mut out = Vec::new();
    let mut last = None;
    for chunk in rows.chunks(every) {
        let episodes: usize = chunk.iter().map(|r| r.episodes).sum();
        if episodes > 0 {
            let weighted = |f: fn(&Row) -> f64| {
                chunk
                    .iter()
                    .filter(|r| r.episodes > 0)
                    .map(|r| f(r) * r.episodes as f64)
                    .sum::<f64>()
                    / episodes as f64
            };
            last = Some((weighted(|r| r.return_mean), weighted(|r| r.success_rate)));
        }
        let frames = chunk.last().map_or(0, |r| r.frames) as f64;
        out.push((frames, last));
    }
    out
}

/// The curve of one tap from its seeds' progress rows.
pub fn curve(seeds: &[Vec<Row>], every: usize) -> Vec<Point> {
    let per_seed: Vec<_> = seeds
        .iter()
        .map(|rows| windows(rows, every.max(1)))
        .collect();
    let len = per_seed.iter().map(Vec::len).min().unwrap_or(0);
    (0..len)
        .filter_map(|w| {
            let vals: Vec<(f64, f64)> = per_seed.iter().filter_map(|s| s[w].1).collect();
            let rewards: Vec<f64> = vals.iter().map(|v| v.0).collect();
            let successes: Vec<f64> = vals.iter().map(|v| v.1).collect();
            let (r, rs) = Spread::of(&rewards)?;
            let (s, ss) = Spread::of(&successes)?;
            Some(Point {
                frames: per_seed[0][w].0,
                reward: (r, rs.std),
                success: (s, ss.std),
                seeds: vals.len(),
            })
        })
        .collect()
}

/// Writes a tap's curve as CSV.
pub fn write_csv(points: &[Point], path: &Path) -> Result<()> {
    let mut text = String::from("frames,return_mean,return_std,success_mean,success_std,seeds\n");
    for p in points {
        writeln!(
            text,
            "{},{:.6},{:.6},{:.4},{:.4},{}",
            p.frames, p.reward.0, p.reward.1, p.success.0, p.success.1, p.seeds
        )?;
    }
    crate::atomic::write_atomic(path, text.as_bytes())
}

/// Plots every tap's reward and success curves (mean line, std band) into `dir`.
pub fn plot_all(curves: &[(String, Vec<Point>)], title: &str, dir: &Path) -> Result<()> {
    let pick = |f: fn(&Point) -> (f64, f64)| -> Vec<(String, Vec<(f64, f64, f64)>)> {
        curves
            .iter()
            .filter(|(_, p)| !p.is_empty())
            .map(|(tap, points)| {
                (
                    tap.clone(),
                    points.iter().map(|p| (p.frames, f(p).0, f(p).1)).collect(),
                )
            })
            .collect()
    };
    let reward = pick(|p| p.reward);
    if reward.is_empty() {
        return Ok(());
    }
    plot::band_curves(
        &format!("{title}: return"),
        &reward,
        "environment frames",
        "episode return (mean ± std over seeds)",
        &dir.join("reward.png"),
    )?;
    plot::band_curves(
        &format!("{title}: success"),
        &pick(|p| p.success),
        "environment frames",
        "success rate % (mean ± std over seeds)",
        &dir.join("success.png"),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    fn row(update: usize, episodes: usize, ret: f64, success: f64) -> Row {
        Row {
            update,
            frames: update * 10,
            episodes,
            return_mean: ret,
            success_rate: success,
            ..Row::default()
        }
    }

    #[test]
    fn windows_weight_by_episodes_and_carry_empty_ones() {
        let rows = vec![
            row(1, 1, 1.0, 0.0),
            row(2, 3, 5.0, 100.0),
            row(3, 0, f64::NAN, f64::NAN),
            row(4, 0, f64::NAN, f64::NAN),
        ];
        let w = windows(&rows, 2);
        assert_eq!(w[0], (20.0, Some((4.0, 75.0))));
        assert_eq!(w[1], (40.0, Some((4.0, 75.0))));
    }

    #[test]
    fn curve_is_mean_and_std_over_seeds() {
        let a = vec![row(1, 1, 2.0, 100.0)];
        let b = vec![row(1, 1, 4.0, 0.0)];
        let c = curve(&[a, b], 1);
        assert_eq!(c.len(), 1);
        assert_eq!(c[0].reward, (3.0, 1.0));
        assert_eq!(c[0].success, (50.0, 50.0));
        assert_eq!(c[0].seeds, 2);
    }
}
