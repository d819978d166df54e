//! ImageFolder trees (`DIR/<class>/.../<image>`), as torchvision's `ImageFolder` reads them.

use std::path::{Path, PathBuf};

use anyhow::{bail, Context, Result};

use super::{Dataset, Sample};

/// Image file extensions, compared case-insensitively.
const EXTENSIONS: [&str; 4] = ["jpg", "jpeg", "png", "bmp"];

/// Reads `dir`: classes are its sorted sub-folder names (or `classes`, each a sub-folder);
/// images are the files below each class folder with an image extension, in torchvision's
/// order;
/// ids are paths relative to `dir`, and targets `[class index]`.
pub(crate) fn load(dir: &Path, classes: Option<Vec<String>>) -> Result<Dataset> {
    let classes = match classes {
        Some(classes) => classes,
        None => {
            let mut names: Vec<String> = read_dir(dir)?
                .into_iter()
                .filter(|p| p.is_dir())
                .filter_map(|p| Some(p.file_name()?.to_string_lossy().into_owned()))
                .collect();
            names.sort();
            names
        }
    };
    if classes.is_empty() {
        bail!(
            "{} has no class folders: expected {}/<class>/<image>",
            dir.display(),
            dir.display()
        );
    }
    let mut samples = Vec::new();
    for (index, class) in classes.iter().enumerate() {
        let mut images = Vec::new();
        collect_images(&dir.join(class), &mut images)?;
        if images.is_empty() {
            bail!(
                "class folder {} holds no image ({}): add images or leave the class out",
                dir.join(class).display(),
                EXTENSIONS.join("/")
            );
        }
        // torchvision's order: folders sorted as strings, then file names within each.
        images.sort_by(|a, b| {
            (a.parent().map(Path::as_os_str), a.file_name())
                .cmp(&(b.parent().map(Path::as_os_str), b.file_name()))
        });
        samples.extend(images.into_iter().map(|path| {
            let id = path
                .strip_prefix(dir)
                .unwrap_or(&path)
                .to_string_lossy()
                .replace('\\', "/");
            Sample {
                id,
                path,
                target: vec![index as i32],
            }
        }));
    }
    Ok(Dataset::new(classes, samples))
}

/// Appends the image files below `dir` (recursively) to `out`.
fn collect_images(dir: &Path, out: &mut Vec<PathBuf>) -> Result<()> {
    for path in read_dir(dir)? {
        if path.is_dir() {
            collect_images(&path, out)?;
        } else if path
            .extension()
            .and_then(|e| e.to_str())
            .is_some_and(|e| EXTENSIONS.iter().any(|x| e.eq_ignore_ascii_case(x)))
        {
            out.push(path);
        }
    }
    Ok(())
}

/// The entries of a directory, with an error naming it.
fn read_dir(dir: &Path) -> Result<Vec<PathBuf>> {
    let context = || {
        format!(
            "cannot list image folder {}: check the dataset path",
            dir.display()
        )
    };
    std::fs::read_dir(dir)
        .with_context(context)?
        .map(|entry| entry.map(|e| e.path()).with_context(context))
        .collect()
}
