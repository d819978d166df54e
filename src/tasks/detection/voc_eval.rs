//! The VOC devkit's detection AP (`voc_eval`, as Detectron and py-faster-rcnn run it; the MATLAB
//! `VOCevaldet` as an option): per class, detections sorted by score are matched greedily to
//! the ground truth at IoU 0.5, then the precision/recall curve gives the VOC07 11-point AP or
//! the VOC2010+ area AP.
//!
//! The rules, as the devkit has them:
//! - IoU counts pixels inclusively (`w = x2 - x1 + 1`), in float64, in the devkit's order of
//!   operations; the ground truth is the 1-based box as written, the detection `x + 1`.
//!   (The house's VOC reader keeps boxes as f32: exact for the devkit's integer coordinates;
//!   fractional ones, as labelme writes, move by ~3e-5 px, which changes an outcome only at an
//!   IoU within ~1e-7 of the threshold.)
//! - A detection is matched to the first ground-truth box of maximum IoU in the image,
//!   difficult ones included. Above the threshold: a difficult box makes the detection neither
//!   TP nor FP; a free box makes it a TP and takes the box; a taken box makes it an FP
//!   (a duplicate). Below: FP. `npos` counts the non-difficult boxes only.
//! - The threshold test is `>` in the Python devkit ([`OverlapTest::Strict`]) and `>=` in the
//!   MATLAB one ([`OverlapTest::Inclusive`], which also skips pairs that do not overlap at all).
//! - `precision = tp / max(tp + fp, eps)`, `recall = tp / npos` (cumulative, one point per
//!   detection). 11-point AP: the mean over `t = i * 0.1`, i = 0..10 (exactly numpy's
//!   `arange(0, 1.1, 0.1)`, so t = 0.30000000000000004, and a recall of exactly 3/10 does not
//!   reach it) of the highest precision at recall >= t, 0 if none. Area AP: the area under the
//!   precision envelope at the points where recall changes.
//!
//! Ties: detections are sorted by descending score with a **stable** sort, so tied scores keep
//! their input order (the results file's line order). MATLAB's `sort` is stable too; numpy's
//! `argsort(-confidence)` in the Python devkit is a quicksort, whose order among ties is
//! unspecified, so on tied scores (frequent once scores are rounded to 3 decimals) the Python
//! devkit's AP can differ from ours by the reordering of tied TPs and FPs.
//! data-scripts/voc_eval.py is our port with `kind='mergesort'` (stable): it agrees exactly.

use super::voc_results;
use crate::data::VocObject;
use anyhow::{bail, Result};
use rayon::prelude::*;
use serde::{Deserialize, Serialize};
use std::collections::HashMap;

/// One detection of a class in an image: a box in 0-based pixel coordinates, `x1 y1 x2 y2`
/// with `x2, y2` inclusive (Detectron's convention), and its score.
#[derive(Clone, Debug, PartialEq)]
pub struct Detection {
    /// The image id (the annotation's file stem).
    pub image: String,
    /// The detector's score.
    pub score: f32,
    /// `x1, y1, x2, y2`, 0-based, inclusive.
    pub bbox: [f32; 4],
}

/// Which IoU passes the threshold.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum OverlapTest {
    /// `iou > threshold`: the Python devkit (Detectron, py-faster-rcnn).
    #[default]
    Strict,
    /// `iou >= threshold`, on pairs that overlap: the MATLAB devkit's `VOCevaldet`.
    Inclusive,
}

/// How detections are scored against the ground truth.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct EvalConfig {
    /// The IoU a detection needs to match a ground-truth box (VOC: 0.5).
    pub iou_threshold: f64,
    /// `>` (Python devkit) or `>=` (MATLAB devkit).
    pub overlap_test: OverlapTest,
    /// The VOC07 11-point AP (true, the paper's metric) or the VOC2010+ area AP (false).
    pub use_07_metric: bool,
    /// Score the detections as the results files hold them (scores to 3 decimals, boxes to
    /// 0.1 pixel), so this AP equals the devkit's on our files.
    pub as_written: bool,
}

impl Default for EvalConfig {
    fn default() -> Self {
        Self {
            iou_threshold: 0.5,
            overlap_test: OverlapTest::Strict,
            use_07_metric: true,
            as_written: true,
        }
    }
}

/// The AP of one class, with its counts and curve.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct ClassAp {
    /// The class name.
    pub class: String,
    /// The AP; `None` when the class has no non-difficult ground truth (the devkit divides by
    /// zero there).
    pub ap: Option<f64>,
    /// Non-difficult ground-truth boxes of the class.
    pub npos: usize,
    /// Detections scored.
    pub detections: usize,
    /// True positives.
    pub tp: usize,
    /// False positives (duplicates included).
    pub fp: usize,
    /// Detections matched to a difficult box: neither TP nor FP.
    pub ignored: usize,
    /// Cumulative precision after each detection, in score order.
    pub precision: Vec<f64>,
    /// Cumulative recall after each detection, in score order (empty when `npos` is 0).
    pub recall: Vec<f64>,
}

/// The APs of every class and their mean.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct VocEval {
    /// One entry per class, in the order given.
    pub classes: Vec<ClassAp>,
    /// The mean AP over the classes that have an AP (`None` if none has).
    pub map: Option<f64>,
}

/// The ground truth of one class in one image.
struct ImageGt {
    boxes: Vec<[f64; 4]>,
    difficult: Vec<bool>,
    taken: Vec<bool>,
}

/// Scores `dets` (detections of `class`, any order) against `gt` (every image of the test set
/// with all its objects; other classes are skipped). Fails on a detection in an image `gt`
/// lacks, on a non-finite score, or on an image listed twice.
pub fn evaluate_class(
    gt: &[(String, Vec<VocObject>)],
    class: &str,
    dets: &[Detection],
    cfg: &EvalConfig,
) -> Result<ClassAp> {
    let mut images: HashMap<&str, ImageGt> = HashMap::with_capacity(gt.len());
    let mut npos = 0;
    for (image, objects) in gt {
        let mine: Vec<&VocObject> = objects.iter().filter(|o| o.name == class).collect();
        npos += mine.iter().filter(|o| !o.difficult).count();
        let entry = ImageGt {
            boxes: mine.iter().map(|o| o.bbox.map(f64::from)).collect(),
            difficult: mine.iter().map(|o| o.difficult).collect(),
            taken: vec![false; mine.len()],
        };
        if images.insert(image, entry).is_some() {
            bail!("image {image} is listed twice in the ground truth: list each image once");
        }
    }
    let scored: Vec<(f64, [f64; 4])> = dets
        .iter()
        .map(|d| {
            if !d.score.is_finite() {
                bail!(
                    "a {class} detection in image {} has score {}: scores must be finite",
                    d.image,
                    d.score
                );
            }
            Ok(if cfg.as_written {
                voc_results::as_written(d)
            } else {
                (f64::from(d.score), d.bbox.map(|x| f64::from(x) + 1.0))
            })
        })
        .collect::<Result<_>>()?;
    let mut order: Vec<usize> = (0..dets.len()).collect();
    // Stable: tied scores keep their input order (scores are finite, and -0 ties with 0 as in
    // numpy).
    order.sort_by(|&a, &b| {
        scored[b]
            .0
            .partial_cmp(&scored[a].0)
            .unwrap_or(std::cmp::Ordering::Equal)
    });

    let (mut tp, mut fp, mut ignored) = (0usize, 0usize, 0usize);
    let eps = f64::EPSILON;
    let mut precision = Vec::with_capacity(dets.len());
    let mut recall = Vec::with_capacity(dets.len());
    for &d in &order {
        let det = &dets[d];
        let Some(image) = images.get_mut(det.image.as_str()) else {
            bail!(
                "a {class} detection is in image {}, which the ground truth lacks: evaluate \
                 against the image set the detections were made on",
                det.image
            );
        };
        match best_match(&scored[d].1, &image.boxes, cfg) {
            Some(j) if image.difficult[j] => ignored += 1,
            Some(j) if !image.taken[j] => {
                image.taken[j] = true;
                tp += 1;
            }
            _ => fp += 1,
        }
        let (t, f) = (tp as f64, fp as f64);
        precision.push(t / (t + f).max(eps));
        if npos > 0 {
            recall.push(t / npos as f64);
        }
    }
    let ap = (npos > 0).then(|| {
        if cfg.use_07_metric {
            ap_11_point(&precision, &recall)
        } else {
            ap_area(&precision, &recall)
        }
    });
    Ok(ClassAp {
        class: class.to_owned(),
        ap,
        npos,
        detections: dets.len(),
        tp,
        fp,
        ignored,
        precision,
        recall,
    })
}

/// Scores every class (`per_class`: each class with its detections) and averages the APs.
pub fn evaluate(
    gt: &[(String, Vec<VocObject>)],
    per_class: &[(String, Vec<Detection>)],
    cfg: &EvalConfig,
) -> Result<VocEval> {
    let classes = per_class
        .par_iter()
        .map(|(class, dets)| evaluate_class(gt, class, dets, cfg))
        .collect::<Result<Vec<_>>>()?;
    let aps: Vec<f64> = classes.iter().filter_map(|c| c.ap).collect();
    let map = (!aps.is_empty()).then(|| aps.iter().sum::<f64>() / aps.len() as f64);
    Ok(VocEval { classes, map })
}

/// The first ground-truth box of maximum IoU with `bb` (both 1-based), if that IoU passes the
/// threshold.
fn best_match(bb: &[f64; 4], boxes: &[[f64; 4]], cfg: &EvalConfig) -> Option<usize> {
    let mut best: Option<(usize, f64)> = None;
    for (j, g) in boxes.iter().enumerate() {
        let iw = bb[2].min(g[2]) - bb[0].max(g[0]) + 1.0;
        let ih = bb[3].min(g[3]) - bb[1].max(g[1]) + 1.0;
        if cfg.overlap_test == OverlapTest::Inclusive && !(iw > 0.0 && ih > 0.0) {
            continue;
        }
        let inters = iw.max(0.0) * ih.max(0.0);
        let union = (bb[2] - bb[0] + 1.0) * (bb[3] - bb[1] + 1.0)
            + (g[2] - g[0] + 1.0) * (g[3] - g[1] + 1.0)
            - inters;
        let iou = inters / union;
        if best.is_none_or(|(_, m)| iou > m) {
            best = Some((j, iou));
        }
    }
    let (j, iou) = best?;
    let passes = match cfg.overlap_test {
        OverlapTest::Strict => iou > cfg.iou_threshold,
        OverlapTest::Inclusive => iou >= cfg.iou_threshold,
    };
    passes.then_some(j)
}

/// VOC07's 11-point AP: the mean over t = i * 0.1 of the highest precision at recall >= t.
fn ap_11_point(precision: &[f64], recall: &[f64]) -> f64 {
    let mut ap = 0.0;
    for i in 0..=10 {
        let t = i as f64 * 0.1;
        let p = precision
            .iter()
            .zip(recall)
            .filter(|&(_, &r)| r >= t)
            .map(|(&p, _)| p)
            .fold(None, |m: Option<f64>, p| Some(m.map_or(p, |m| m.max(p))))
            .unwrap_or(0.0);
        ap += p / 11.0;
    }
    ap
}

/// The VOC2010+ AP: the area under the precision envelope (precision made non-increasing
/// from the right), summed where recall changes, with end points (0, 0) and (1, 0).
fn ap_area(precision: &[f64], recall: &[f64]) -> f64 {
    let mrec: Vec<f64> = [0.0]
        .into_iter()
        .chain(recall.iter().copied())
        .chain([1.0])
        .collect();
    let mut mpre: Vec<f64> = [0.0]
        .into_iter()
        .chain(precision.iter().copied())
        .chain([0.0])
        .collect();
    for i in (1..mpre.len()).rev() {
        mpre[i - 1] = mpre[i - 1].max(mpre[i]);
    }
    (0..mrec.len() - 1)
        .filter(|&i| mrec[i + 1] != mrec[i])
        .map(|i| (mrec[i + 1] - mrec[i]) * mpre[i + 1])
        .sum()
}
