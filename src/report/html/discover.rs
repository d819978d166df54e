//! Finding what a results folder holds: the runs' results JSONs, the images each run wrote
//! (beside its JSON as `<run>_*.png`, or under its folder `<run>/`), the pretext runs the
//! runs' backbones came from, and the images of the sweep as a whole.

use crate::report::result::{RunResult, RESULT_SCHEMA};
use anyhow::{Context, Result};
use std::path::{Path, PathBuf};

/// File extensions a browser shows as images.
const IMAGE_EXTENSIONS: [&str; 5] = ["png", "gif", "jpg", "jpeg", "svg"];

/// Folders whose images are training state, not results.
const SKIPPED_FOLDERS: [&str; 2] = ["checkpoints", ".sweep"];

/// How deep below the results folder pretext runs are looked for.
const PRETEXT_DEPTH: usize = 4;

/// One task run and the files it wrote.
pub struct Run {
    /// Its results JSON.
    pub json: PathBuf,
    /// The results.
    pub result: RunResult,
    /// Its images (canonical paths), in path order.
    pub images: Vec<PathBuf>,
}

/// One pretext training run: a folder with `pretrain.json`.
pub struct PretextRun {
    /// The run folder (canonical).
    pub dir: PathBuf,
    /// `pretrain.json` as written.
    pub summary: serde_json::Value,
    /// `log.csv`, when there is one.
    pub log: Option<String>,
    /// Its images (loss and accuracy curves, colourised strips), in path order.
    pub images: Vec<PathBuf>,
}

/// Everything a report shows of a results folder.
pub struct Found {
    /// The results folder (canonical).
    pub root: PathBuf,
    /// The runs, by task then backbone.
    pub runs: Vec<Run>,
    /// The pretext runs, by folder.
    pub pretext: Vec<PretextRun>,
    /// Images of the results folder that belong to no run (the sweep's plots).
    pub sweep_images: Vec<PathBuf>,
}

/// Reads the results folder `root`: every `*.json` in it whose `schema` is a results schema
/// (a results file of another version is an error that names it), their images, and the
/// pretext runs found below `root` or named by a run's weights.
pub fn discover(root: &Path) -> Result<Found> {
    let root = root.canonicalize().with_context(|| {
        format!(
            "cannot open the results folder {}: give the --out folder of `sslbench run` or \
             `sslbench sweep`",
            root.display()
        )
    })?;
    let mut top: Vec<PathBuf> = std::fs::read_dir(&root)
        .with_context(|| format!("cannot list {}", root.display()))?
        .filter_map(|e| e.ok().map(|e| e.path()))
        .collect();
    top.sort();
    let mut runs = Vec::new();
    for path in top.iter().filter(|p| has_extension(p, &["json"])) {
        if is_result(path)? {
            runs.push(Run {
                json: path.clone(),
                result: RunResult::read(path)?,
                images: Vec::new(),
            });
        }
    }
    if runs.is_empty() {
        anyhow::bail!(
            "{} holds no results JSON ({RESULT_SCHEMA}): run `sslbench run ... --out {}` or \
             `sslbench sweep ... --out {}` first",
            root.display(),
            root.display(),
            root.display()
        );
    }
    runs.sort_by(|a, b| {
        (&a.result.task, &a.result.backbone_name).cmp(&(&b.result.task, &b.result.backbone_name))
    });
    let mut sweep_images = Vec::new();
    for path in top.iter().filter(|p| p.is_file() && is_image(p)) {
        let name = file_name(path);
        match owner(&runs, |run| name.starts_with(&format!("{run}_"))) {
            Some(i) => runs[i].images.push(path.clone()),
            None => sweep_images.push(path.clone()),
        }
    }
    for run in &mut runs {
        let dir = root.join(&run.result.run);
        if dir.is_dir() {
            run.images.extend(images_below(&dir));
        }
        run.images.sort();
    }
    let pretext = pretext_runs(&root, &runs)?;
    Ok(Found {
        root,
        runs,
        pretext,
        sweep_images,
    })
}

/// Whether `path` is a results JSON (its `schema` starts with `sslbench.result/`).
fn is_result(path: &Path) -> Result<bool> {
    let text =
        std::fs::read_to_string(path).with_context(|| format!("cannot read {}", path.display()))?;
    let Ok(value) = serde_json::from_str::<serde_json::Value>(&text) else {
        return Ok(false);
    };
    Ok(value
        .get("schema")
        .and_then(|s| s.as_str())
        .is_some_and(|s| s.starts_with("sslbench.result/")))
}

/// The run with the longest name that `matches` accepts: `voc07_svm_a_b_layers.png` belongs
/// to `voc07_svm_a_b`, not to `voc07_svm_a`.
fn owner(runs: &[Run], matches: impl Fn(&str) -> bool) -> Option<usize> {
    runs.iter()
        .enumerate()
        .filter(|(_, r)| matches(&r.result.run))
        .max_by_key(|(_, r)| r.result.run.len())
        .map(|(i, _)| i)
}

/// The pretext runs: folders with `pretrain.json` below `root` (a few levels down) and the
/// folders of the runs' weights files. A relative weights path is relative to the folder the
/// run was started in: it is tried from here, then from `root` and each folder above it.
fn pretext_runs(root: &Path, runs: &[Run]) -> Result<Vec<PretextRun>> {
    let mut dirs = Vec::new();
    find_pretext(root, PRETEXT_DEPTH, &mut dirs);
    let root = root.canonicalize().unwrap_or_else(|_| root.to_path_buf());
    let bases: Vec<&Path> = std::iter::once(Path::new(""))
        .chain(root.ancestors())
        .collect();
    for run in runs {
        let weights = run.result.backbone.get("weights").and_then(|w| w.as_str());
        let Some(dir) = weights.and_then(|w| Path::new(w).parent()) else {
            continue;
        };
        if dir.as_os_str().is_empty() {
            continue;
        }
        let found = bases
            .iter()
            .map(|b| b.join(dir))
            .find(|d| d.join("pretrain.json").is_file());
        if let Some(dir) = found.and_then(|d| d.canonicalize().ok()) {
            dirs.push(dir);
        }
    }
    dirs.sort();
    dirs.dedup();
    dirs.into_iter()
        .map(|dir| {
            let file = dir.join("pretrain.json");
            let text = std::fs::read_to_string(&file)
                .with_context(|| format!("cannot read {}", file.display()))?;
            let summary = serde_json::from_str(&text).with_context(|| {
                format!(
                    "{} is not JSON: run `sslbench pretrain` on it again",
                    file.display()
                )
            })?;
            Ok(PretextRun {
                log: std::fs::read_to_string(dir.join("log.csv")).ok(),
                images: images_below(&dir),
                dir,
                summary,
            })
        })
        .collect()
}

/// Folders holding `pretrain.json` below `dir`, down to `depth` levels.
fn find_pretext(dir: &Path, depth: usize, out: &mut Vec<PathBuf>) {
    if dir.join("pretrain.json").is_file() {
        out.push(dir.to_path_buf());
    }
    if depth == 0 {
        return;
    }
    for sub in subfolders(dir) {
        find_pretext(&sub, depth - 1, out);
    }
}

/// The images in `dir` and its subfolders (not in checkpoint folders), in path order.
fn images_below(dir: &Path) -> Vec<PathBuf> {
    let mut out = Vec::new();
    let mut stack = vec![dir.to_path_buf()];
    while let Some(d) = stack.pop() {
        let Ok(entries) = std::fs::read_dir(&d) else {
            continue;
        };
        for path in entries.filter_map(|e| e.ok().map(|e| e.path())) {
            if path.is_dir() && !SKIPPED_FOLDERS.contains(&file_name(&path).as_str()) {
                stack.push(path);
            } else if path.is_file() && is_image(&path) {
                out.push(path);
            }
        }
    }
    out.sort();
    out
}

/// The subfolders of `dir` that may hold runs, in name order.
fn subfolders(dir: &Path) -> Vec<PathBuf> {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return Vec::new();
    };
    let mut subs: Vec<PathBuf> = entries
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| p.is_dir() && !SKIPPED_FOLDERS.contains(&file_name(p).as_str()))
        .collect();
    subs.sort();
    subs
}

fn file_name(path: &Path) -> String {
    path.file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default()
}

fn has_extension(path: &Path, extensions: &[&str]) -> bool {
    path.extension()
        .and_then(|e| e.to_str())
        .is_some_and(|e| extensions.iter().any(|x| e.eq_ignore_ascii_case(x)))
}

fn is_image(path: &Path) -> bool {
    has_extension(path, &IMAGE_EXTENSIONS)
}
