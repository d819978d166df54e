//! The training log of one agent: `progress.csv`, one row per PPO update, truncated to the
//! checkpoint a run resumes from (the updates after it are redone).

use super::ppo::UpdateStats;
use anyhow::{Context, Result};
use std::io::Write;
use std::path::{Path, PathBuf};

/// The CSV header.
pub const HEADER: &str = "update,frames,episodes,return_mean,success_rate,policy_loss,value_loss,entropy,approx_kl,clip_fraction,grad_norm,fps,seconds";

/// One update's row.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Row {
    /// Updates done.
    pub update: usize,
    /// Environment frames so far.
    pub frames: usize,
    /// Episodes that ended during this update.
    pub episodes: usize,
    /// Their mean return (NaN when none ended).
    pub return_mean: f64,
    /// Their success rate in percent (NaN when none ended).
    pub success_rate: f64,
    /// The update's losses and diagnostics.
    pub stats: [f64; 6],
    /// Environment frames per second of this update (acting, learning included).
    pub fps: f64,
    /// Seconds of training so far in this process.
    pub seconds: f64,
}

impl Row {
    /// A row from an update's episode outcomes and statistics.
    pub fn new(
        update: usize,
        frames: usize,
        ended: &[(f64, bool)],
        s: &UpdateStats,
        fps: f64,
        seconds: f64,
    ) -> Self {
        let n = ended.len();
        let (return_mean, success_rate) = if n == 0 {
            (f64::NAN, f64::NAN)
        } else {
            (
                ended.iter().map(|e| e.0).sum::<f64>() / n as f64,
                100.0 * ended.iter().filter(|e| e.1).count() as f64 / n as f64,
            )
        };
        Self {
            update,
            frames,
            episodes: n,
            return_mean,
            success_rate,
            stats: [
                s.policy_loss,
                s.value_loss,
                s.entropy,
                s.approx_kl,
                s.clip_fraction,
                s.grad_norm,
            ],
            fps,
            seconds,
        }
    }

    fn csv(&self) -> String {
        let mut fields = vec![
            self.update.to_string(),
            self.frames.to_string(),
            self.episodes.to_string(),
            format!("{:.6}", self.return_mean),
            format!("{:.4}", self.success_rate),
        ];
        fields.extend(self.stats.iter().map(|v| format!("{v:.6}")));
        fields.push(format!("{:.2}", self.fps));
        fields.push(format!("{:.3}", self.seconds));
        fields.join(",")
    }

    fn parse(line: &str) -> Option<Self> {
        let v: Vec<&str> = line.split(',').collect();
        if v.len() != 13 {
            return None;
        }
        let f = |i: usize| v[i].parse::<f64>().ok();
        let mut stats = [0.0; 6];
        for (k, s) in stats.iter_mut().enumerate() {
            *s = f(5 + k)?;
        }
        Some(Self {
            update: v[0].parse().ok()?,
            frames: v[1].parse().ok()?,
            episodes: v[2].parse().ok()?,
            return_mean: f(3)?,
            success_rate: f(4)?,
            stats,
            fps: f(11)?,
            seconds: f(12)?,
        })
    }
}

/// `progress.csv` of one agent.
pub struct ProgressLog {
    path: PathBuf,
    rows: Vec<Row>,
}

impl ProgressLog {
    /// Opens the log in `dir`, keeping the rows up to `resume_update`.
    pub fn open(dir: &Path, resume_update: usize) -> Result<Self> {
        let path = dir.join("progress.csv");
        let rows = Self::read(&path)?
            .into_iter()
            .filter(|r| r.update <= resume_update)
            .collect();
        let log = Self { path, rows };
        log.write()?;
        Ok(log)
    }

    /// Reads a `progress.csv`, naming the file and line of a malformed row.
    pub fn read(path: &Path) -> Result<Vec<Row>> {
        if !path.exists() {
            return Ok(Vec::new());
        }
        let text = std::fs::read_to_string(path)
            .with_context(|| format!("cannot read {}", path.display()))?;
        text.lines()
            .enumerate()
            .skip(1)
            .filter(|(_, l)| !l.trim().is_empty())
            .map(|(i, l)| {
                Row::parse(l).with_context(|| {
                    format!(
                        "{} line {} is not a progress row; delete the run folder to start over",
                        path.display(),
                        i + 1
                    )
                })
            })
            .collect()
    }

    /// Appends a row.
    pub fn push(&mut self, row: Row) -> Result<()> {
        let mut file = std::fs::OpenOptions::new()
            .append(true)
            .open(&self.path)
            .with_context(|| format!("cannot append to {}", self.path.display()))?;
        writeln!(file, "{}", row.csv())?;
        self.rows.push(row);
        Ok(())
    }

    /// The rows so far.
    pub fn rows(&self) -> &[Row] {
        &self.rows
    }

    fn write(&self) -> Result<()> {
        let mut text = format!("{HEADER}\n");
        for r in &self.rows {
            text.push_str(&r.csv());
            text.push('\n');
        }
        crate::features::partial::write_atomic(&self.path, text.as_bytes())
    }
}
