//! Detectron's roidb for Fast R-CNN on a VOC devkit split: one entry per image (and per
//! flipped copy) holding the ground-truth boxes first and the image's proposals after them,
//! each box's best overlap with the ground truth and its class, and the box-regression
//! target of every box that overlaps a ground-truth box enough.
//!
//! The steps are Detectron's (`datasets/json_dataset.py`, `datasets/roidb.py`), in its order:
//! 1. ground truth ([`gt_entries`]): VOC's 1-based inclusive corners become 0-based
//!    (`x1 = xmin - 1`, `x2 = x1 + max(0, w - 1)` with `w = xmax - xmin + 1`, which is what
//!    Detectron's VOC JSON holds), clipped to the image, kept when `x2 > x1` and `y2 > y1`;
//!    difficult objects are left out unless [`RoidbConfig::use_difficult`] (py-faster-rcnn's
//!    `use_diff: False`; evaluation reads them from the annotations itself);
//! 2. proposals ([`merge_proposals`]): clipped, first occurrences of each rounded box kept
//!    (`unique_boxes`), boxes `w <= min_size` or `h <= min_size` dropped, then the first
//!    `limit` kept; each gets its best IoU with the ground truth and that box's class;
//! 3. flipped copies appended ([`extend_with_flipped`]);
//! 4. training only: entries without a foreground or background box dropped
//!    ([`filter_for_training`]), then the regression targets ([`add_bbox_targets`]).
//!
//! A box that leaves the image is clipped, as Detectron does, and counted in the
//! [`RoidbSummary`] with the first annotation file that holds one, so the caller says so once
//! per dataset. An image without (non-difficult) objects keeps its proposals as background
//! RoIs in training, as in Detectron, unless [`RoidbConfig::skip_images_without_gt`]; at test
//! every image is kept.

use std::collections::HashSet;
use std::fmt;
use std::path::{Path, PathBuf};

use anyhow::{bail, Context, Result};
use rayon::prelude::*;
use serde::Deserialize;
use sslbench_ops::boxes::{clip_box, iou, BoxCoder, BoxF};

use super::sampling::SamplingConfig;
use crate::data::voc::{read_annotation, VocAnnotation};

/// Every threshold of the roidb, with Detectron's defaults.
#[derive(Clone, Debug, Deserialize, PartialEq)]
#[serde(default, deny_unknown_fields)]
pub struct RoidbConfig {
    /// Keep difficult objects as training ground truth (py-faster-rcnn's `use_diff`; false).
    pub use_difficult: bool,
    /// Proposals are kept when `x2 - x1 + 1 > min` and `y2 - y1 + 1 > min` (Detectron's
    /// `min_proposal_size`, 2).
    pub proposal_min_size: f32,
    /// The first proposals kept per training image, after deduplication (`None`: all, as
    /// Detectron's `TRAIN.PROPOSAL_LIMIT` -1).
    pub train_proposal_limit: Option<usize>,
    /// The first proposals kept per test image (Detectron's `TEST.PROPOSAL_LIMIT`, 2000).
    pub test_proposal_limit: Option<usize>,
    /// Append a horizontally flipped copy of every training image (`TRAIN.USE_FLIPPED`, true).
    pub use_flipped: bool,
    /// Ground-truth objects whose area `(xmax - xmin + 1)(ymax - ymin + 1)` is below this
    /// are skipped (`TRAIN.GT_MIN_AREA`, -1: none).
    pub gt_min_area: f32,
    /// Boxes whose best overlap is `>=` this get a regression target (`TRAIN.BBOX_THRESH`,
    /// 0.5).
    pub bbox_thresh: f32,
    /// The box coding's weights (`MODEL.BBOX_REG_WEIGHTS`, (10, 10, 5, 5)).
    pub bbox_reg_weights: [f32; 4],
    /// Leave training images without ground truth out instead of keeping their proposals as
    /// background RoIs (false, as Detectron, which keeps them).
    pub skip_images_without_gt: bool,
}

impl Default for RoidbConfig {
    fn default() -> Self {
        Self {
            use_difficult: false,
            proposal_min_size: 2.0,
            train_proposal_limit: None,
            test_proposal_limit: Some(2000),
            use_flipped: true,
            gt_min_area: -1.0,
            bbox_thresh: 0.5,
            bbox_reg_weights: BoxCoder::default().weights,
            skip_images_without_gt: false,
        }
    }
}

/// One image (or its flipped copy) of the roidb. The per-box vectors are parallel; the
/// ground-truth boxes come first.
#[derive(Clone, Debug, PartialEq)]
pub struct RoidbEntry {
    /// The VOC image id.
    pub id: String,
    /// `JPEGImages/<id>.jpg`.
    pub image: PathBuf,
    /// Image width from the annotation's `<size>`.
    pub width: u32,
    /// Image height from the annotation's `<size>`.
    pub height: u32,
    /// A horizontally flipped copy: the image is mirrored before use.
    pub flipped: bool,
    /// Ground-truth boxes, then proposals: 0-based inclusive corners in image pixels.
    pub boxes: Vec<BoxF>,
    /// Per box: the ground-truth class (1-based; 0 is background) for ground-truth boxes, 0
    /// for proposals.
    pub gt_classes: Vec<usize>,
    /// Per box: its largest IoU with a ground-truth box (1 for the ground truth itself).
    pub max_overlaps: Vec<f32>,
    /// Per box: the class of that ground-truth box (0 when the overlap is 0).
    pub max_classes: Vec<usize>,
    /// Per box: the class its regression target refers to (0: no target).
    pub bbox_target_classes: Vec<usize>,
    /// Per box: the regression target towards its best ground-truth box (zeros without one).
    pub bbox_targets: Vec<[f32; 4]>,
}

impl RoidbEntry {
    /// The number of ground-truth boxes (at the front of [`RoidbEntry::boxes`]).
    pub fn num_gt(&self) -> usize {
        self.gt_classes.iter().take_while(|&&c| c > 0).count()
    }
}

/// What building a roidb changed or dropped, for one log line per dataset.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct RoidbSummary {
    /// Images of the split.
    pub images: usize,
    /// Ground-truth objects left out because they are difficult.
    pub difficult_skipped: usize,
    /// Ground-truth boxes that left the image and were clipped to it.
    pub gt_clipped: usize,
    /// The first annotation file holding such a box.
    pub first_clipped: Option<PathBuf>,
    /// Ground-truth boxes dropped as empty after conversion and clipping, or below the
    /// minimum area.
    pub gt_dropped: usize,
    /// Images without any ground-truth box left.
    pub images_without_gt: usize,
    /// Proposals read.
    pub proposals_read: usize,
    /// Proposals dropped as duplicates after rounding.
    pub proposals_duplicate: usize,
    /// Proposals dropped as too small.
    pub proposals_small: usize,
    /// Proposals dropped beyond the per-image limit.
    pub proposals_beyond_limit: usize,
    /// Entries dropped by [`filter_for_training`] (or as images without ground truth).
    pub entries_filtered: usize,
}

impl fmt::Display for RoidbSummary {
    fn fmt(&self, f: &mut fmt::Formatter) -> fmt::Result {
        write!(
            f,
            "{} images; ground truth: {} difficult skipped, {} clipped to the image",
            self.images, self.difficult_skipped, self.gt_clipped
        )?;
        if let Some(p) = &self.first_clipped {
            write!(f, " (first in {})", p.display())?;
        }
        write!(
            f,
            ", {} empty dropped, {} images without any; proposals: {} read, {} duplicates, \
             {} too small, {} beyond the limit dropped; {} entries filtered",
            self.gt_dropped,
            self.images_without_gt,
            self.proposals_read,
            self.proposals_duplicate,
            self.proposals_small,
            self.proposals_beyond_limit,
            self.entries_filtered
        )
    }
}

/// A class name reduced to lowercase letters and digits, so that `tv/monitor`,
/// `TV monitor` and `tvmonitor`, or `potted plant` and `pottedplant`, name the same class.
pub fn canonical_class(name: &str) -> String {
    name.chars()
        .filter(char::is_ascii_alphanumeric)
        .map(|c| c.to_ascii_lowercase())
        .collect()
}

/// The image ids of `ROOT/ImageSets/Main/<split>.txt`, in file order.
pub fn split_ids(root: &Path, split: &str) -> Result<(PathBuf, Vec<String>)> {
    let file = root
        .join("ImageSets")
        .join("Main")
        .join(format!("{split}.txt"));
    let text = std::fs::read_to_string(&file).with_context(|| {
        format!(
            "cannot read the VOC split file {}: check the dataset root and that the split \
             exists in ImageSets/Main",
            file.display()
        )
    })?;
    let ids: Vec<String> = text.split_whitespace().map(str::to_owned).collect();
    if ids.is_empty() {
        bail!(
            "VOC split file {} lists no image: restore it from the VOCdevkit",
            file.display()
        );
    }
    Ok((file, ids))
}

/// Ground-truth entries of a split, in the split file's order (no proposals yet, no flips).
/// `classes` are the foreground classes: class `k` of the entries is `classes[k - 1]`.
pub fn gt_entries(
    root: &Path,
    split: &str,
    classes: &[String],
    cfg: &RoidbConfig,
) -> Result<(Vec<RoidbEntry>, RoidbSummary)> {
    let (_, ids) = split_ids(root, split)?;
    let canon: Vec<String> = classes.iter().map(|c| canonical_class(c)).collect();
    let per_image = ids
        .par_iter()
        .map(|id| {
            let (path, ann, mut entry) = image_entry(root, id)?;
            let mut s = RoidbSummary::default();
            for obj in &ann.objects {
                let name = canonical_class(&obj.name);
                let class = canon.iter().position(|c| *c == name).with_context(|| {
                    format!(
                        "VOC annotation {} names the class '{}', which is not among the task's \
                         classes [{}]: fix the name or give the task this dataset's class list",
                        path.display(),
                        obj.name,
                        classes.join(", ")
                    )
                })? + 1;
                if obj.difficult && !cfg.use_difficult {
                    s.difficult_skipped += 1;
                    continue;
                }
                match voc_to_detectron(obj.bbox, ann.width, ann.height, cfg.gt_min_area) {
                    GtBox::Kept { b, clipped } => {
                        if clipped {
                            s.gt_clipped += 1;
                            s.first_clipped.get_or_insert_with(|| path.clone());
                        }
                        entry.boxes.push(b);
                        entry.gt_classes.push(class);
                        entry.max_overlaps.push(1.0);
                        entry.max_classes.push(class);
                    }
                    GtBox::Dropped => s.gt_dropped += 1,
                }
            }
            if entry.boxes.is_empty() {
                s.images_without_gt += 1;
            }
            Ok((entry, s))
        })
        .collect::<Result<Vec<_>>>()?;
    let mut summary = RoidbSummary {
        images: ids.len(),
        ..Default::default()
    };
    let mut entries = Vec::with_capacity(per_image.len());
    for (entry, s) in per_image {
        summary.difficult_skipped += s.difficult_skipped;
        summary.gt_clipped += s.gt_clipped;
        if summary.first_clipped.is_none() {
            summary.first_clipped = s.first_clipped;
        }
        summary.gt_dropped += s.gt_dropped;
        summary.images_without_gt += s.images_without_gt;
        entries.push(entry);
    }
    Ok((entries, summary))
}

/// Reads an image's annotation: its path, contents and an entry without boxes.
fn image_entry(root: &Path, id: &str) -> Result<(PathBuf, VocAnnotation, RoidbEntry)> {
    let path = root.join("Annotations").join(format!("{id}.xml"));
    let ann = read_annotation(&path)?;
    if ann.width == 0 || ann.height == 0 {
        bail!(
            "VOC annotation {} gives the image size {}x{}: fix its <size> (the image's width \
             and height in pixels)",
            path.display(),
            ann.width,
            ann.height
        );
    }
    let entry = RoidbEntry {
        id: id.to_owned(),
        image: root.join("JPEGImages").join(format!("{id}.jpg")),
        width: ann.width,
        height: ann.height,
        flipped: false,
        boxes: Vec::new(),
        gt_classes: Vec::new(),
        max_overlaps: Vec::new(),
        max_classes: Vec::new(),
        bbox_target_classes: Vec::new(),
        bbox_targets: Vec::new(),
    };
    Ok((path, ann, entry))
}

/// A VOC box after Detectron's conversion.
enum GtBox {
    /// Kept; `clipped` when it left the image.
    Kept { b: BoxF, clipped: bool },
    /// Empty after conversion and clipping, or below the minimum area.
    Dropped,
}

/// Detectron's ground-truth box from a VOC `[xmin, ymin, xmax, ymax]` (1-based, inclusive):
/// the COCO-style `x = xmin - 1`, `w = xmax - xmin + 1` of its VOC JSON, then
/// `x2 = x + max(0, w - 1)`, clipped to `[0, W - 1] x [0, H - 1]`, kept if `x2 > x1` and
/// `y2 > y1`. Computed in f64 (the JSON's Python floats) and stored as f32, as Detectron does.
fn voc_to_detectron(b: [f32; 4], width: u32, height: u32, min_area: f32) -> GtBox {
    let [xmin, ymin, xmax, ymax] = b.map(f64::from);
    let (x, y, w, h) = (xmin - 1.0, ymin - 1.0, xmax - xmin + 1.0, ymax - ymin + 1.0);
    if w * h < f64::from(min_area) {
        return GtBox::Dropped;
    }
    let raw = [x, y, x + (w - 1.0).max(0.0), y + (h - 1.0).max(0.0)];
    let (wmax, hmax) = (f64::from(width) - 1.0, f64::from(height) - 1.0);
    let c = [
        raw[0].max(0.0).min(wmax),
        raw[1].max(0.0).min(hmax),
        raw[2].max(0.0).min(wmax),
        raw[3].max(0.0).min(hmax),
    ];
    if !(c[2] > c[0] && c[3] > c[1]) {
        return GtBox::Dropped;
    }
    GtBox::Kept {
        b: c.map(|v| v as f32),
        clipped: c != raw,
    }
}

/// Detectron's `unique_boxes` (scale 1): the indices of the first box of each distinct
/// `round(box) . (1, 1e3, 1e6, 1e9)` hash (rounding half to even, as NumPy), in order.
pub fn unique_boxes(boxes: &[BoxF]) -> Vec<usize> {
    let mut seen = HashSet::with_capacity(boxes.len());
    (0..boxes.len())
        .filter(|&i| {
            let r = boxes[i].map(|v| f64::from(v.round_ties_even()));
            let hash = r[0] + 1e3 * r[1] + 1e6 * r[2] + 1e9 * r[3] + 0.0;
            seen.insert(hash.to_bits())
        })
        .collect()
}

/// Appends each image's proposals to its entry as Detectron's `_add_proposals_from_file`
/// and `_merge_proposal_boxes_into_roidb` do, and gives every proposal its best IoU with the
/// entry's ground truth (the first maximum) and that box's class. `proposals[i]` belongs to
/// `entries[i]` (the split's order); `source` names the proposals' file in messages.
pub fn merge_proposals(
    entries: &mut [RoidbEntry],
    proposals: &[Vec<BoxF>],
    source: &Path,
    min_size: f32,
    limit: Option<usize>,
    summary: &mut RoidbSummary,
) -> Result<()> {
    if proposals.len() != entries.len() {
        bail!(
            "the proposals in {} cover {} images but the split lists {}: they were made for \
             another split; give the proposals of this split (or make them with `sslbench \
             proposals --dataset voc:ROOT:SPLIT`)",
            source.display(),
            proposals.len(),
            entries.len()
        );
    }
    for (entry, boxes) in entries.iter().zip(proposals) {
        if let Some(b) = boxes.iter().find(|b| b.iter().any(|v| !v.is_finite())) {
            bail!(
                "the proposals in {} for image {} hold the box {b:?}: every coordinate must be \
                 a finite number; regenerate the file",
                source.display(),
                entry.id
            );
        }
    }
    let counts: Vec<[usize; 4]> = entries
        .par_iter_mut()
        .zip(proposals)
        .map(|(entry, boxes)| {
            let clipped: Vec<BoxF> = boxes
                .iter()
                .map(|b| clip_box(b, entry.width, entry.height))
                .collect();
            let unique: Vec<BoxF> = unique_boxes(&clipped)
                .into_iter()
                .map(|i| clipped[i])
                .collect();
            let large: Vec<BoxF> = unique
                .iter()
                .copied()
                .filter(|b| b[2] - b[0] + 1.0 > min_size && b[3] - b[1] + 1.0 > min_size)
                .collect();
            let kept = &large[..limit.map_or(large.len(), |k| k.min(large.len()))];
            let num_gt = entry.num_gt();
            for p in kept {
                let (mut best, mut class) = (0f32, 0);
                for g in 0..num_gt {
                    let o = iou(p, &entry.boxes[g]);
                    if o > best {
                        (best, class) = (o, entry.gt_classes[g]);
                    }
                }
                entry.boxes.push(*p);
                entry.gt_classes.push(0);
                entry.max_overlaps.push(best);
                entry.max_classes.push(class);
            }
            [
                boxes.len(),
                clipped.len() - unique.len(),
                unique.len() - large.len(),
                large.len() - kept.len(),
            ]
        })
        .collect();
    for [read, dup, small, beyond] in counts {
        summary.proposals_read += read;
        summary.proposals_duplicate += dup;
        summary.proposals_small += small;
        summary.proposals_beyond_limit += beyond;
    }
    Ok(())
}

/// Appends a horizontally flipped copy of every entry (Detectron's
/// `extend_with_flipped_entries`): `x1' = W - x2 - 1`, `x2' = W - x1 - 1`; overlaps and
/// classes are copied, not recomputed.
pub fn extend_with_flipped(entries: &mut Vec<RoidbEntry>) {
    let flipped: Vec<RoidbEntry> = entries
        .iter()
        .map(|e| {
            let w = e.width as f32;
            RoidbEntry {
                boxes: e
                    .boxes
                    .iter()
                    .map(|b| [w - b[2] - 1.0, b[1], w - b[0] - 1.0, b[3]])
                    .collect(),
                flipped: !e.flipped,
                ..e.clone()
            }
        })
        .collect();
    entries.extend(flipped);
}

/// Keeps the entries with at least one foreground (`max_overlap >= fg_thresh`) or background
/// (`bg_thresh_lo <= max_overlap < bg_thresh_hi`) box (Detectron's `filter_for_training`).
/// Returns how many were dropped.
pub fn filter_for_training(entries: &mut Vec<RoidbEntry>, sampling: &SamplingConfig) -> usize {
    let before = entries.len();
    entries.retain(|e| {
        e.max_overlaps.iter().any(|&o| {
            o >= sampling.fg_thresh || (o < sampling.bg_thresh_hi && o >= sampling.bg_thresh_lo)
        })
    });
    before - entries.len()
}

/// Detectron's `compute_bbox_regression_targets` on every entry: each box with
/// `max_overlap >= bbox_thresh` is matched to the ground-truth box of highest IoU (the first
/// maximum, overlaps recomputed on the entry's own, possibly flipped, boxes) and gets
/// `coder.encode(box, gt)`, with its `max_class` as the target's class.
pub fn add_bbox_targets(entries: &mut [RoidbEntry], bbox_thresh: f32, coder: &BoxCoder) {
    entries.par_iter_mut().for_each(|e| {
        let n = e.boxes.len();
        e.bbox_target_classes = vec![0; n];
        e.bbox_targets = vec![[0.0; 4]; n];
        let num_gt = e.num_gt();
        if num_gt == 0 {
            return;
        }
        for i in 0..n {
            if e.max_overlaps[i] < bbox_thresh {
                continue;
            }
            let (mut best, mut gt) = (f32::NEG_INFINITY, 0);
            for g in 0..num_gt {
                let o = iou(&e.boxes[i], &e.boxes[g]);
                if o > best {
                    (best, gt) = (o, g);
                }
            }
            e.bbox_target_classes[i] = e.max_classes[i];
            e.bbox_targets[i] = coder.encode(&e.boxes[i], &e.boxes[gt]);
        }
    });
}

/// A training roidb and what building it dropped.
#[derive(Clone, Debug, PartialEq)]
pub struct Roidb {
    /// The entries: the split's images in order, then their flipped copies, minus those
    /// filtered out.
    pub entries: Vec<RoidbEntry>,
    /// Counts for the log.
    pub summary: RoidbSummary,
}

/// Detectron's training roidb of one VOC split: ground truth, proposals (`proposals[i]` for
/// the split's `i`-th image, 0-based x1 y1 x2 y2, from the file `source`), flipped copies,
/// the training filter and the regression targets. For several datasets (VOC07+12), build
/// each and concatenate the entries: every later step is per entry.
pub fn train_roidb(
    root: &Path,
    split: &str,
    classes: &[String],
    proposals: &[Vec<BoxF>],
    source: &Path,
    cfg: &RoidbConfig,
    sampling: &SamplingConfig,
) -> Result<Roidb> {
    let (mut entries, mut summary) = gt_entries(root, split, classes, cfg)?;
    merge_proposals(
        &mut entries,
        proposals,
        source,
        cfg.proposal_min_size,
        cfg.train_proposal_limit,
        &mut summary,
    )?;
    if cfg.skip_images_without_gt {
        let before = entries.len();
        entries.retain(|e| e.num_gt() > 0);
        summary.entries_filtered += before - entries.len();
    }
    if cfg.use_flipped {
        extend_with_flipped(&mut entries);
    }
    summary.entries_filtered += filter_for_training(&mut entries, sampling);
    let coder = BoxCoder {
        weights: cfg.bbox_reg_weights,
        ..BoxCoder::default()
    };
    add_bbox_targets(&mut entries, cfg.bbox_thresh, &coder);
    Ok(Roidb { entries, summary })
}

/// Detectron's test roidb of one VOC split: every image, unflipped, with no ground truth and
/// its first [`RoidbConfig::test_proposal_limit`] cleaned proposals (the boxes of each
/// entry are all proposals). Evaluation reads the ground truth, difficult objects included,
/// from the annotations itself.
pub fn test_roidb(
    root: &Path,
    split: &str,
    proposals: &[Vec<BoxF>],
    source: &Path,
    cfg: &RoidbConfig,
) -> Result<Roidb> {
    let (_, ids) = split_ids(root, split)?;
    let mut entries = ids
        .par_iter()
        .map(|id| image_entry(root, id).map(|(_, _, entry)| entry))
        .collect::<Result<Vec<_>>>()?;
    let mut summary = RoidbSummary {
        images: entries.len(),
        ..Default::default()
    };
    merge_proposals(
        &mut entries,
        proposals,
        source,
        cfg.proposal_min_size,
        cfg.test_proposal_limit,
        &mut summary,
    )?;
    Ok(Roidb { entries, summary })
}
