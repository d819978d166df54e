//! The VOC devkit's detection results files, as Detectron writes them
//! (`_write_voc_results_files`): one `comp4_det_test_<class>.txt` per class, a line per
//! detection, `"<image id> <score> <x1> <y1> <x2> <y2>"` with the score to 3 decimals and the
//! box 1-based to 0.1 pixel. The reader takes the same format, so Detectron's files and FAIR's
//! example detections load too.
//!
//! Rounding follows Python's `'{:.3f}'` / `'{:.1f}'` on Detectron's values: the score is a
//! float32 promoted to float64, and the coordinate is `x + 1` computed in float32 (numpy keeps a
//! float32 scalar plus a Python int in float32), then promoted. Both languages print the exact
//! binary value correctly rounded, halves to even, so Rust's `{:.3}` / `{:.1}` on the same f64
//! writes the same text (tests/detection_eval.rs compares them with python3 on many values).

use super::voc_eval::Detection;
use anyhow::{bail, Context, Result};
use std::path::{Path, PathBuf};

/// The results file of `class` in `dir`: `comp4_det_test_<class>.txt` (Detectron's name
/// without its random salt).
pub fn results_file(dir: &Path, class: &str) -> PathBuf {
    dir.join(format!("comp4_det_test_{class}.txt"))
}

/// A score as the results file holds it: `'{:.3f}'` of the float32 promoted to float64.
pub fn score_text(score: f32) -> String {
    format!("{:.3}", f64::from(score))
}

/// A 0-based coordinate as the results file holds it: `'{:.1f}'` of `x + 1` (float32 sum,
/// promoted to float64), i.e. 1-based.
pub fn coord_text(x: f32) -> String {
    format!("{:.1}", f64::from(x + 1.0))
}

/// A detection's score and 1-based box as the devkit reads them back from our file (Python's
/// `float()` of the written text).
pub fn as_written(det: &Detection) -> (f64, [f64; 4]) {
    // The text is ours and always parses; the fallback only keeps this free of panics.
    let parse = |text: String| text.parse::<f64>().unwrap_or(f64::NAN);
    (
        parse(score_text(det.score)),
        det.bbox.map(|x| parse(coord_text(x))),
    )
}

/// One results line, with its newline.
fn line(det: &Detection) -> String {
    let [x1, y1, x2, y2] = det.bbox.map(coord_text);
    format!(
        "{} {} {x1} {y1} {x2} {y2}\n",
        det.image,
        score_text(det.score)
    )
}

/// Writes one results file per class into `dir` (created if missing), each atomically, the
/// detections in the order given (the devkit's order for tied scores). Returns the paths.
pub fn write_results(dir: &Path, per_class: &[(String, Vec<Detection>)]) -> Result<Vec<PathBuf>> {
    std::fs::create_dir_all(dir)
        .with_context(|| format!("cannot create {}: check permissions", dir.display()))?;
    per_class
        .iter()
        .map(|(class, dets)| {
            check_class_name(class)?;
            let mut body = String::new();
            for det in dets {
                if det.image.is_empty() || det.image.contains(char::is_whitespace) {
                    bail!(
                        "image id '{}' of a {class} detection is empty or holds whitespace: the \
                         results format separates fields by spaces, so ids must not",
                        det.image
                    );
                }
                body.push_str(&line(det));
            }
            let path = results_file(dir, class);
            crate::atomic::write_atomic(&path, body.as_bytes())
                .with_context(|| format!("cannot write {}: check permissions", path.display()))?;
            Ok(path)
        })
        .collect()
}

/// Reads the results files of `classes` from `dir`, in the classes' order.
pub fn read_results(dir: &Path, classes: &[String]) -> Result<Vec<(String, Vec<Detection>)>> {
    classes
        .iter()
        .map(|class| {
            check_class_name(class)?;
            Ok((class.clone(), read_results_file(&results_file(dir, class))?))
        })
        .collect()
}

/// Reads one results file: lines `id score x1 y1 x2 y2` (1-based box), blank lines skipped.
/// Boxes come back 0-based, as [`Detection`] holds them.
pub fn read_results_file(path: &Path) -> Result<Vec<Detection>> {
    let text = std::fs::read_to_string(path).with_context(|| {
        format!(
            "cannot read detection results {}: write it with the detection task, or check the \
             folder and the class name",
            path.display()
        )
    })?;
    let mut dets = Vec::new();
    for (i, line) in text.lines().enumerate() {
        let fields: Vec<&str> = line.split_whitespace().collect();
        if fields.is_empty() {
            continue;
        }
        let parsed = match fields[..] {
            [id, score, x1, y1, x2, y2] => parse_detection(id, score, [x1, y1, x2, y2]),
            _ => None,
        };
        dets.push(parsed.with_context(|| {
            format!(
                "{}:{}: expected `image_id score x1 y1 x2 y2` (numbers, 1-based box), found \
                 '{line}': fix the line or rewrite the file",
                path.display(),
                i + 1
            )
        })?);
    }
    Ok(dets)
}

/// One parsed line, or `None` when a field is not a finite number.
fn parse_detection(id: &str, score: &str, coords: [&str; 4]) -> Option<Detection> {
    let score: f32 = score.parse().ok().filter(|s: &f32| s.is_finite())?;
    let mut bbox = [0f32; 4];
    for (b, text) in bbox.iter_mut().zip(coords) {
        let v: f64 = text.parse().ok().filter(|v: &f64| v.is_finite())?;
        *b = (v - 1.0) as f32;
    }
    Some(Detection {
        image: id.to_owned(),
        score,
        bbox,
    })
}

/// A class name must be a plain file-name part.
fn check_class_name(class: &str) -> Result<()> {
    if class.is_empty() || class.contains(['/', '\\']) || class.contains(char::is_whitespace) {
        bail!(
            "class name '{class}' cannot name a results file: use the devkit's names \
             (e.g. tvmonitor, pottedplant)"
        );
    }
    Ok(())
}
