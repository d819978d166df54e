//! The row of a probe run's loss log (`probe_log.csv` in the run folder, one row per tap and
//! logged iteration, kept by [`crate::train::log::CsvLog`], which also writes its scalars to
//! TensorBoard). Values are written in full precision, so the loss curves a resumed run reads
//! back equal those it logged.

use crate::train::log::LogRow;

/// The mean training loss of one head over a window of iterations.
#[derive(Clone, Debug, PartialEq)]
pub(super) struct Row {
    /// Iterations done at the end of the window.
    pub(super) iter: usize,
    /// The head's tap.
    pub(super) tap: String,
    /// The learning rate of the window's last iteration.
    pub(super) lr: f64,
    /// The head's cross-entropy, averaged over the window.
    pub(super) loss: f64,
}

impl LogRow for Row {
    const HEADER: &'static str = "iter,tap,lr,loss";

    fn step(&self) -> usize {
        self.iter
    }

    fn to_csv(&self) -> String {
        format!("{},{},{},{}", self.iter, self.tap, self.lr, self.loss)
    }

    fn parse(line: &str) -> Option<Self> {
        let mut v = line.split(',');
        let row = Self {
            iter: v.next()?.parse().ok()?,
            tap: v.next()?.to_string(),
            lr: v.next()?.parse().ok()?,
            loss: v.next()?.parse().ok()?,
        };
        v.next().is_none().then_some(row)
    }

    /// `loss/<tap>` per head, and `lr` (the same for every head).
    fn scalars(&self) -> Vec<(String, f64)> {
        vec![
            (format!("loss/{}", self.tap), self.loss),
            ("lr".to_string(), self.lr),
        ]
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_row_reads_back_bit_for_bit() {
        let row = Row {
            iter: 25,
            tap: "res3".into(),
            lr: 0.1 * 0.1,
            loss: 2.0f64.sqrt() / 3.0,
        };
        assert_eq!(Row::parse(&row.to_csv()), Some(row));
        assert_eq!(Row::parse("25,res3,0.01"), None);
        assert_eq!(Row::parse("25,res3,0.01,1,2"), None);
    }
}
