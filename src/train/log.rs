//! The one training log: a CSV file of rows, one per logged step or update, kept consistent
//! with the checkpoint a run resumes from (rows logged after it are dropped, as their steps
//! are redone). Each training loop brings its row type; plots are drawn by their owners.
//! Each row's scalars also go to a TensorBoard event file beside the CSV
//! ([`crate::train::tensorboard`]), kept consistent with the checkpoint the same way.

use super::tensorboard::EventFile;
use anyhow::{Context, Result};
use std::io::Write;
use std::path::{Path, PathBuf};

/// One row of a training log, written and read back as a CSV line.
pub trait LogRow: Sized {
    /// The CSV header line (without its newline).
    const HEADER: &'static str;
    /// The step (or update) the row was logged at; a resume keeps the rows up to its step.
    fn step(&self) -> usize;
    /// The row as a CSV line (without its newline).
    fn to_csv(&self) -> String;
    /// A CSV line back as a row, `None` when it is not one.
    fn parse(line: &str) -> Option<Self>;
    /// The row's scalars for TensorBoard, by tag: by default each column after the first
    /// (the step) whose CSV field reads as a number, tagged with its header name.
    fn scalars(&self) -> Vec<(String, f64)> {
        Self::HEADER
            .split(',')
            .zip(self.to_csv().split(','))
            .skip(1)
            .filter_map(|(tag, field)| Some((tag.to_string(), field.trim().parse().ok()?)))
            .collect()
    }
}

/// A CSV training log at one path, with its TensorBoard event file.
pub struct CsvLog<R> {
    path: PathBuf,
    rows: Vec<R>,
    events: EventFile,
}

impl<R: LogRow> CsvLog<R> {
    /// Opens the log at `path`, keeping only the rows up to `resume_step` (a fresh run, at
    /// step 0, starts an empty log), and rewrites it atomically; starts its event file
    /// ([`EventFile::start`]).
    pub fn open(path: &Path, resume_step: usize) -> Result<Self> {
        let rows = match resume_step {
            0 => Vec::new(),
            _ => Self::read(path)?
                .into_iter()
                .filter(|r| r.step() <= resume_step)
                .collect(),
        };
        let log = Self {
            path: path.to_path_buf(),
            rows,
            events: EventFile::start(path, resume_step)?,
        };
        let mut text = format!("{}\n", R::HEADER);
        for r in &log.rows {
            text.push_str(&r.to_csv());
            text.push('\n');
        }
        crate::atomic::write_atomic(&log.path, text.as_bytes())?;
        Ok(log)
    }

    /// Reads a log (no file: no rows), naming the file and line of a malformed row.
    pub fn read(path: &Path) -> Result<Vec<R>> {
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
                R::parse(l).with_context(|| {
                    format!(
                        "{} line {} is not a row of `{}`; delete the run folder to start over",
                        path.display(),
                        i + 1,
                        R::HEADER
                    )
                })
            })
            .collect()
    }

    /// Appends a row, and its scalars to the event file.
    pub fn push(&mut self, row: R) -> Result<()> {
        let mut file = std::fs::OpenOptions::new()
            .append(true)
            .open(&self.path)
            .with_context(|| format!("cannot append to {}", self.path.display()))?;
        writeln!(file, "{}", row.to_csv())?;
        self.events.scalars(row.step(), &row.scalars())?;
        self.rows.push(row);
        Ok(())
    }

    /// The rows so far.
    pub fn rows(&self) -> &[R] {
        &self.rows
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[derive(Debug, PartialEq)]
    struct Row(usize, f64);

    impl LogRow for Row {
        const HEADER: &'static str = "step,loss";
        fn step(&self) -> usize {
            self.0
        }
        fn to_csv(&self) -> String {
            format!("{},{:.3}", self.0, self.1)
        }
        fn parse(line: &str) -> Option<Self> {
            let (s, l) = line.split_once(',')?;
            Some(Row(s.parse().ok()?, l.parse().ok()?))
        }
    }

    #[test]
    fn a_resume_keeps_the_rows_up_to_its_step_and_a_bad_row_names_the_file() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("log.csv");
        let mut log = CsvLog::<Row>::open(&path, 0).unwrap();
        for s in 1..=5 {
            log.push(Row(s, s as f64 / 2.0)).unwrap();
        }
        let resumed = CsvLog::<Row>::open(&path, 3).unwrap();
        assert_eq!(resumed.rows(), &[Row(1, 0.5), Row(2, 1.0), Row(3, 1.5)]);
        let text = std::fs::read_to_string(&path).unwrap();
        assert_eq!(text, "step,loss\n1,0.500\n2,1.000\n3,1.500\n");
        assert!(CsvLog::<Row>::open(&path, 0).unwrap().rows().is_empty());
        assert_eq!(Row(4, 0.25).scalars(), vec![("loss".to_string(), 0.25)]);
        std::fs::write(&path, "step,loss\n1,x\n").unwrap();
        let err = format!("{:#}", CsvLog::<Row>::read(&path).unwrap_err());
        assert!(err.contains("line 2") && err.contains("log.csv"), "{err}");
    }
}
