//! TensorBoard event files beside the CSV training logs, so that `tensorboard --logdir runs/`
//! shows every training loop: [`crate::train::log::CsvLog`] writes each row's scalars into
//! one, and the loops add their preview PNGs with [`add_preview`]. A log at `dir/NAME.csv`
//! owns the files `dir/events.out.tfevents.<secs>.<host>.<pid>.NAME`; a fresh run removes
//! them, and a resumed run starts a new one. Each file opens a session as TensorFlow's
//! writers do, with a `SessionLog` START at its first step: on a restart TensorBoard discards
//! what the older files hold from that step on, as the CSV drops the rows after the
//! checkpoint. (TensorBoard's Python loader ignores a run's first START and purges on the
//! later ones; its other reader, EventAccumulator, purges on every one.) A folder is one run
//! to TensorBoard, so each log needs a folder of its own.

mod proto;
mod tfrecord;

use anyhow::{Context, Result};
use proto::{Image, Payload};
use std::fs::File;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::time::{SystemTime, UNIX_EPOCH};

/// What every event file's name starts with (TensorBoard lists the files holding "tfevents").
const PREFIX: &str = "events.out.tfevents.";

/// One event file, open for appending.
pub struct EventFile {
    path: PathBuf,
    file: File,
}

impl EventFile {
    /// Starts a new event file for the CSV log at `csv`, for a run at `resume_step`: a fresh
    /// run (step 0) first removes the log's old event files; a resumed one keeps them, and
    /// its session START tells TensorBoard to discard their events after `resume_step`.
    pub fn start(csv: &Path, resume_step: usize) -> Result<Self> {
        let (dir, name) = owner(csv)?;
        if resume_step == 0 {
            for (_, f) in files(dir, name)? {
                std::fs::remove_file(&f)
                    .with_context(|| format!("cannot remove the old event file {}", f.display()))?;
            }
        }
        let first = if resume_step == 0 { 0 } else { resume_step + 1 };
        Self::create(dir, name, first)
    }

    /// Opens the newest event file of the CSV log at `csv` for appending, or a new one when
    /// there is none.
    pub fn append(csv: &Path) -> Result<Self> {
        let (dir, name) = owner(csv)?;
        let Some((_, path)) = files(dir, name)?.pop() else {
            return Self::create(dir, name, 0);
        };
        let file = std::fs::OpenOptions::new()
            .append(true)
            .open(&path)
            .with_context(|| format!("cannot append to the event file {}", path.display()))?;
        Ok(Self { path, file })
    }

    /// Writes the scalars of `step`, one `simple_value` (f32) per tag.
    pub fn scalars(&mut self, step: usize, values: &[(String, f64)]) -> Result<()> {
        let values: Vec<(String, f32)> =
            values.iter().map(|(t, v)| (t.clone(), *v as f32)).collect();
        self.write(step as i64, &Payload::Scalars(&values))
    }

    /// Writes the PNG `png` as image `tag` at `step`.
    pub fn image(&mut self, tag: &str, step: usize, png: &[u8]) -> Result<()> {
        let decoded = image::load_from_memory_with_format(png, image::ImageFormat::Png)
            .context("a preview for TensorBoard is not a PNG")?;
        let image = Image {
            tag,
            height: decoded.height(),
            width: decoded.width(),
            colorspace: u32::from(decoded.color().channel_count()),
            encoded: png,
        };
        self.write(step as i64, &Payload::Image(&image))
    }

    /// A new event file of the log `name` in `dir`, named to sort after the log's others
    /// (readers take a folder's files in name order), holding its file version and the
    /// START of a session at step `first`.
    fn create(dir: &Path, name: &str, first: usize) -> Result<Self> {
        let secs = now() as u64;
        let secs = files(dir, name)?
            .last()
            .map_or(secs, |(s, _)| secs.max(s + 1));
        let path = dir.join(format!(
            "{PREFIX}{secs}.{}.{}.{name}",
            crate::lock::host_name(),
            std::process::id()
        ));
        let file = File::create(&path).with_context(|| {
            format!(
                "cannot create the event file {}; check that its folder is writable",
                path.display()
            )
        })?;
        let mut events = Self { path, file };
        events.write(0, &Payload::FileVersion)?;
        events.write(first as i64, &Payload::SessionStart)?;
        Ok(events)
    }

    /// The file's path.
    pub fn path(&self) -> &Path {
        &self.path
    }

    fn write(&mut self, step: i64, payload: &Payload) -> Result<()> {
        let record = tfrecord::record(&proto::event(now(), step, payload));
        self.file
            .write_all(&record)
            .and_then(|()| self.file.flush())
            .with_context(|| format!("cannot write to the event file {}", self.path.display()))
    }
}

/// Adds the PNG file `png` (a preview a loop wrote) as image `tag` at `step` to the newest
/// event file of the CSV log at `csv`.
pub fn add_preview(csv: &Path, tag: &str, step: usize, png: &Path) -> Result<()> {
    let bytes = std::fs::read(png).with_context(|| format!("cannot read {}", png.display()))?;
    EventFile::append(csv)?
        .image(tag, step, &bytes)
        .with_context(|| format!("cannot add {} to TensorBoard's events", png.display()))
}

/// The folder and the name (file stem) of the CSV log at `csv`.
fn owner(csv: &Path) -> Result<(&Path, &str)> {
    let name = csv.file_stem().and_then(|s| s.to_str());
    match (csv.parent(), name) {
        (Some(dir), Some(name)) => Ok((dir, name)),
        _ => anyhow::bail!("{} names no log file in a folder", csv.display()),
    }
}

/// The event files of the log `name` in `dir` with the seconds their names carry, oldest
/// first.
fn files(dir: &Path, name: &str) -> Result<Vec<(u64, PathBuf)>> {
    let suffix = format!(".{name}");
    let entries =
        std::fs::read_dir(dir).with_context(|| format!("cannot list {}", dir.display()))?;
    let mut out = Vec::new();
    for entry in entries {
        let file = entry?.file_name();
        let Some(rest) = file.to_str().and_then(|f| f.strip_prefix(PREFIX)) else {
            continue;
        };
        if !rest.ends_with(&suffix) {
            continue;
        }
        if let Some(secs) = rest.split('.').next().and_then(|s| s.parse().ok()) {
            out.push((secs, dir.join(&file)));
        }
    }
    out.sort();
    Ok(out)
}

/// Seconds since the epoch.
fn now() -> f64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0.0, |d| d.as_secs_f64())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_fresh_run_replaces_the_logs_files_and_a_resume_adds_one_that_sorts_last() {
        let dir = tempfile::tempdir().unwrap();
        let csv = dir.path().join("train.csv");
        let other = dir.path().join("progress.csv");
        EventFile::start(&other, 0).unwrap();
        let first = EventFile::start(&csv, 0).unwrap().path().to_path_buf();
        let resumed = EventFile::start(&csv, 10).unwrap().path().to_path_buf();
        assert!(
            resumed > first,
            "{} sorts before {}",
            resumed.display(),
            first.display()
        );
        assert_eq!(files(dir.path(), "train").unwrap().len(), 2);
        assert_eq!(EventFile::append(&csv).unwrap().path(), resumed);
        EventFile::start(&csv, 0).unwrap();
        assert_eq!(files(dir.path(), "train").unwrap().len(), 1);
        assert_eq!(files(dir.path(), "progress").unwrap().len(), 1);
        let err = EventFile::start(&csv, 0)
            .unwrap()
            .image("x", 1, b"not a png");
        assert!(format!("{:#}", err.unwrap_err()).contains("PNG"));
    }
}
