//! List files, the Places205 / ImageNet format: one `relative/path label` per line.

use std::path::Path;

use anyhow::{bail, Context, Result};

use super::{read_text, Dataset, Sample};

/// Labels must lie below this (2^20): a guard against building a huge default class list.
const MAX_LABEL: i32 = 1 << 20;

/// Reads `file`; images lie at `root/<relative path>`, the id is the relative path and the
/// target `[label]`. Without `classes` the class names are the label numbers `0..=max`.
pub(crate) fn load(file: &Path, root: &Path, classes: Option<Vec<String>>) -> Result<Dataset> {
    let samples = read_text(file, "image list")?
        .lines()
        .enumerate()
        .filter(|(_, line)| !line.trim().is_empty())
        .map(|(i, line)| {
            let parsed = line
                .trim()
                .rsplit_once(char::is_whitespace)
                .and_then(|(path, label)| Some((path.trim_end(), label.parse::<i32>().ok()?)))
                .filter(|(_, label)| (0..MAX_LABEL).contains(label));
            let (rel, label) = parsed.with_context(|| {
                format!(
                    "{}:{}: expected `relative/path label` with a label in 0..{MAX_LABEL}, \
                     found '{line}': fix the list file",
                    file.display(),
                    i + 1
                )
            })?;
            Ok(Sample {
                id: rel.to_owned(),
                path: root.join(rel),
                target: vec![label],
            })
        })
        .collect::<Result<Vec<_>>>()?;
    if samples.is_empty() {
        bail!("image list {} is empty: fix the list file", file.display());
    }
    let count = samples
        .iter()
        .map(|s| s.target[0] as usize + 1)
        .max()
        .unwrap_or(0);
    let classes = match classes {
        None => (0..count).map(|c| c.to_string()).collect(),
        Some(classes) if classes.len() >= count => classes,
        Some(classes) => bail!(
            "image list {} has labels up to {} but {} classes were given: fix the class list",
            file.display(),
            count - 1,
            classes.len()
        ),
    };
    Ok(Dataset::new(classes, samples))
}
