//! The pretext training log: one CSV row per logged step (loss, pretext accuracy, learning
//! rate, throughput) in `log.csv`, and its curves `loss.png` and `accuracy.png`.

use crate::report::plot;
use crate::train::log::LogRow;
use anyhow::Result;
use std::path::Path;

/// One logged step.
#[derive(Clone, Debug, PartialEq)]
pub struct StepRow {
    /// Steps completed.
    pub step: usize,
    /// Mean training loss over the steps since the previous row.
    pub loss: f64,
    /// Mean pretext accuracy (percent) over the same steps.
    pub accuracy: f64,
    /// Learning rate of the last of them.
    pub lr: f64,
    /// Source images per second over them (data loading included).
    pub images_per_s: f64,
    /// Wall-clock seconds of training so far in this process.
    pub seconds: f64,
}

impl LogRow for StepRow {
    const HEADER: &'static str = "step,loss,accuracy,lr,images_per_s,seconds";

    fn step(&self) -> usize {
        self.step
    }

    fn to_csv(&self) -> String {
        format!(
            "{},{:.6},{:.4},{:.6e},{:.3},{:.3}",
            self.step, self.loss, self.accuracy, self.lr, self.images_per_s, self.seconds
        )
    }

    fn parse(line: &str) -> Option<Self> {
        let v: Vec<f64> = line
            .split(',')
            .map(|x| x.parse().ok())
            .collect::<Option<_>>()?;
        let [step, loss, accuracy, lr, images_per_s, seconds] = v[..] else {
            return None;
        };
        Some(Self {
            step: step as usize,
            loss,
            accuracy,
            lr,
            images_per_s,
            seconds,
        })
    }
}

/// Writes `loss.png` and `accuracy.png` of `rows` into `dir` (pretext accuracy against
/// `chance`, in percent).
pub fn plot(rows: &[StepRow], dir: &Path, title: &str, chance: f64) -> Result<()> {
    let (Some(first), Some(last)) = (rows.first(), rows.last()) else {
        return Ok(());
    };
    let series = |f: fn(&StepRow) -> f64| -> Vec<(f64, f64)> {
        rows.iter().map(|r| (r.step as f64, f(r))).collect()
    };
    plot::curves(
        &format!("{title}: training loss"),
        &[("loss".into(), series(|r| r.loss))],
        "step",
        "loss",
        &dir.join("loss.png"),
    )?;
    let (first, last) = (first.step as f64, last.step as f64);
    plot::curves(
        &format!("{title}: pretext accuracy"),
        &[
            ("accuracy".into(), series(|r| r.accuracy)),
            ("chance".into(), vec![(first, chance), (last, chance)]),
        ],
        "step",
        "accuracy (%)",
        &dir.join("accuracy.png"),
    )
}
