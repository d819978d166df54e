//! Selective search over a dataset: images in parallel, each image's boxes written
//! atomically to a partial directory as soon as they are found, so an interrupted run
//! resumes where it stopped. The directory also records the configuration, so a rerun with
//! other parameters cannot mix its boxes with old ones.
//!
//! A partial file `<id>.ssbox` is the magic `SSBOX1\0\0`, the box count (u64, little
//! endian) and that many `[x1, y1, x2, y2]` f32 (little endian).

use super::config::SelectiveSearchConfig;
use super::search::selective_search;
use anyhow::{bail, ensure, Context, Result};
use rayon::prelude::*;
use std::path::{Path, PathBuf};

/// The first bytes of a partial file.
const MAGIC: &[u8; 8] = b"SSBOX1\0\0";

/// The configuration record of a partial directory.
const CONFIG_FILE: &str = "config.json";

/// The partial file of image `id` in `dir`. Ids must be plain file names (letters, digits,
/// `_`, `-`, `.`, not starting with `.`).
pub fn partial_path(dir: &Path, id: &str) -> Result<PathBuf> {
    let plain = !id.is_empty()
        && !id.starts_with('.')
        && id
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '_' | '-' | '.'));
    ensure!(
        plain,
        "image id {id:?} cannot name a partial file: ids must be letters, digits, '_', '-' or \
         '.' (rename the image or map its id)"
    );
    Ok(dir.join(format!("{id}.ssbox")))
}

/// Writes one image's boxes to `path`, atomically.
pub fn write_partial(path: &Path, boxes: &[[f32; 4]]) -> Result<()> {
    let mut bytes = Vec::with_capacity(16 + 16 * boxes.len());
    bytes.extend_from_slice(MAGIC);
    bytes.extend_from_slice(&(boxes.len() as u64).to_le_bytes());
    for v in boxes.iter().flatten() {
        bytes.extend_from_slice(&v.to_le_bytes());
    }
    crate::atomic::write_atomic(path, &bytes)
}

/// Reads one image's boxes back from `path`.
pub fn read_partial(path: &Path) -> Result<Vec<[f32; 4]>> {
    let bad = || {
        format!(
            "partial selective-search file {} is damaged: delete it and rerun to recompute it",
            path.display()
        )
    };
    let bytes = std::fs::read(path).with_context(bad)?;
    if bytes.len() < 16 || &bytes[..8] != MAGIC {
        bail!("{}", bad());
    }
    let count = u64::from_le_bytes(bytes[8..16].try_into().expect("8 bytes")) as usize;
    if Some(bytes.len()) != count.checked_mul(16).and_then(|n| n.checked_add(16)) {
        bail!("{}: {count} boxes announced, {} bytes", bad(), bytes.len());
    }
    Ok(bytes[16..]
        .chunks_exact(16)
        .map(|b| {
            std::array::from_fn(|i| f32::from_le_bytes(b[4 * i..4 * i + 4].try_into().unwrap()))
        })
        .collect())
}

/// Records `cfg` in `dir`, or checks that the record there is `cfg`.
fn claim(dir: &Path, cfg: &SelectiveSearchConfig) -> Result<()> {
    std::fs::create_dir_all(dir)
        .with_context(|| format!("cannot create the partial directory {}", dir.display()))?;
    let path = dir.join(CONFIG_FILE);
    let ours = serde_json::to_string_pretty(cfg)?;
    if path.exists() {
        let theirs: SelectiveSearchConfig = std::fs::read_to_string(&path)
            .ok()
            .and_then(|t| serde_json::from_str(&t).ok())
            .with_context(|| {
                format!(
                    "{} is not a selective-search configuration: empty the partial directory {} \
                     or choose another",
                    path.display(),
                    dir.display()
                )
            })?;
        ensure!(
            &theirs == cfg,
            "the partial directory {} holds boxes of another selective-search configuration \
             ({}): choose another directory, or delete it to start over",
            dir.display(),
            path.display()
        );
        return Ok(());
    }
    crate::atomic::write_atomic(&path, ours.as_bytes())
}

/// Selective search on every `(id, path)` image, in parallel, in input order. Boxes of an
/// image whose partial file exists in `partial_dir` are read back instead of computed; the
/// others are computed and written there. A missing or corrupt image is an error naming it.
pub fn run_dataset(
    images: &[(String, PathBuf)],
    cfg: &SelectiveSearchConfig,
    partial_dir: &Path,
    progress: bool,
) -> Result<Vec<Vec<[f32; 4]>>> {
    cfg.validate()?;
    claim(partial_dir, cfg)?;
    let bar = if progress {
        crate::progress::bar(images.len() as u64, "selective search", "images")
    } else {
        indicatif::ProgressBar::hidden()
    };
    let out = images
        .par_iter()
        .map(|(id, path)| {
            let partial = partial_path(partial_dir, id)?;
            let boxes = if partial.exists() {
                read_partial(&partial)?
            } else {
                let img = crate::data::decode(path)
                    .with_context(|| format!("selective search on image {id}"))?;
                let boxes = selective_search(&img, cfg);
                write_partial(&partial, &boxes)?;
                boxes
            };
            bar.inc(1);
            Ok(boxes)
        })
        .collect::<Result<Vec<_>>>();
    bar.finish_and_clear();
    out
}
