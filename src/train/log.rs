//! The training log: one CSV row per logged step (loss, pretext accuracy, learning rate,
//! throughput), kept consistent with the checkpoint a run resumes from, and PNG curves of
//! the loss and the accuracy.

use crate::report::plot;
use anyhow::{Context, Result};
use std::io::Write;
use std::path::{Path, PathBuf};

/// The CSV header.
pub const HEADER: &str = "step,loss,accuracy,lr,images_per_s,seconds";

/// One logged step.
#[derive(Clone, Debug, PartialEq)]
pub struct LogRow {
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

/// The log of one run: `<out>/log.csv`, `<out>/loss.png`, `<out>/accuracy.png`.
pub struct TrainLog {
    dir: PathBuf,
    rows: Vec<LogRow>,
}

impl TrainLog {
    /// Opens the log of the run in `dir`, keeping only the rows up to `resume_step` (the rows
    /// of steps a killed run logged after its last checkpoint are dropped, as they are redone).
    pub fn open(dir: &Path, resume_step: usize) -> Result<Self> {
        let path = dir.join("log.csv");
        let mut rows = Vec::new();
        if resume_step > 0 && path.exists() {
            let text = std::fs::read_to_string(&path)
                .with_context(|| format!("cannot read {}", path.display()))?;
            for line in text.lines().skip(1) {
                let v: Vec<f64> = line.split(',').filter_map(|x| x.parse().ok()).collect();
                if let [step, loss, accuracy, lr, images_per_s, seconds] = v[..] {
                    if (step as usize) <= resume_step {
                        rows.push(LogRow {
                            step: step as usize,
                            loss,
                            accuracy,
                            lr,
                            images_per_s,
                            seconds,
                        });
                    }
                }
            }
        }
        let log = Self {
            dir: dir.to_path_buf(),
            rows,
        };
        log.rewrite()?;
        Ok(log)
    }

    fn rewrite(&self) -> Result<()> {
        let mut text = format!("{HEADER}\n");
        for r in &self.rows {
            text += &line(r);
        }
        crate::features::partial::write_atomic(&self.dir.join("log.csv"), text.as_bytes())
    }

    /// Appends a row to the CSV.
    pub fn push(&mut self, row: LogRow) -> Result<()> {
        let path = self.dir.join("log.csv");
        let mut f = std::fs::OpenOptions::new()
            .append(true)
            .open(&path)
            .with_context(|| format!("cannot append to {}", path.display()))?;
        f.write_all(line(&row).as_bytes())?;
        self.rows.push(row);
        Ok(())
    }

    /// The rows so far.
    pub fn rows(&self) -> &[LogRow] {
        &self.rows
    }

    /// Writes `loss.png` and `accuracy.png` (pretext accuracy against `chance`, in percent).
    pub fn plot(&self, title: &str, chance: f64) -> Result<()> {
        if self.rows.is_empty() {
            return Ok(());
        }
        let series = |f: fn(&LogRow) -> f64| -> Vec<(f64, f64)> {
            self.rows.iter().map(|r| (r.step as f64, f(r))).collect()
        };
        plot::curves(
            &format!("{title}: training loss"),
            &[("loss".into(), series(|r| r.loss))],
            "step",
            "loss",
            &self.dir.join("loss.png"),
        )?;
        let last = self.rows.last().map_or(0.0, |r| r.step as f64);
        let first = self.rows.first().map_or(0.0, |r| r.step as f64);
        plot::curves(
            &format!("{title}: pretext accuracy"),
            &[
                ("accuracy".into(), series(|r| r.accuracy)),
                ("chance".into(), vec![(first, chance), (last, chance)]),
            ],
            "step",
            "accuracy (%)",
            &self.dir.join("accuracy.png"),
        )
    }
}

fn line(r: &LogRow) -> String {
    format!(
        "{},{:.6},{:.4},{:.6e},{:.3},{:.3}\n",
        r.step, r.loss, r.accuracy, r.lr, r.images_per_s, r.seconds
    )
}
