//! The row of an agent's training log (`progress.csv`, one row per PPO update, kept by
//! [`crate::train::log::CsvLog`]).

use super::ppo::UpdateStats;
use crate::train::log::LogRow;

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
}

impl LogRow for Row {
    const HEADER: &'static str = "update,frames,episodes,return_mean,success_rate,policy_loss,value_loss,entropy,approx_kl,clip_fraction,grad_norm,fps,seconds";

    fn step(&self) -> usize {
        self.update
    }

    fn to_csv(&self) -> String {
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
