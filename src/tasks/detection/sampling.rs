//! Fast R-CNN's RoI sampling (Detectron's `roi_data/fast_rcnn.py:_sample_rois`): per image,
//! a quarter of the RoIs from the foreground boxes, the rest from the background ones, each
//! drawn without replacement; labels, RoIs in blob pixels and class-specific regression
//! targets with their loss weights.
//!
//! The draw comes from [`sample_rng`], a seeded stream of `(seed, iteration, slot)`, so the
//! sample of an image depends on nothing else and a resumed run draws the same RoIs.

use rand::rngs::StdRng;
use rand::Rng;
use serde::Deserialize;

use super::roidb::RoidbEntry;

/// The stream number of RoI sampling among the run's seeded streams.
const STREAM_ROIS: u64 = 0x5a3f_1e7c_0b01_d0e7;

/// The sampling protocol, with Detectron's defaults.
#[derive(Clone, Debug, Deserialize, PartialEq)]
#[serde(default, deny_unknown_fields)]
pub struct SamplingConfig {
    /// RoIs per image (`TRAIN.BATCH_SIZE_PER_IM`, 64).
    pub rois_per_image: usize,
    /// Target fraction of foreground RoIs (`TRAIN.FG_FRACTION`, 0.25: 16 of 64, rounded half
    /// to even as NumPy's `round`).
    pub fg_fraction: f64,
    /// Foreground when the best overlap is `>=` this (`TRAIN.FG_THRESH`, 0.5).
    pub fg_thresh: f32,
    /// Background when the best overlap is `<` this (`TRAIN.BG_THRESH_HI`, 0.5) ...
    pub bg_thresh_hi: f32,
    /// ... and `>=` this (`TRAIN.BG_THRESH_LO`, 0.0).
    pub bg_thresh_lo: f32,
    /// One box regressor for all classes (`MODEL.CLS_AGNOSTIC_BBOX_REG`, false): targets then
    /// have 2 x 4 columns (background, object) instead of 4 per class.
    pub class_agnostic_bbox_reg: bool,
}

impl Default for SamplingConfig {
    fn default() -> Self {
        Self {
            rois_per_image: 64,
            fg_fraction: 0.25,
            fg_thresh: 0.5,
            bg_thresh_hi: 0.5,
            bg_thresh_lo: 0.0,
            class_agnostic_bbox_reg: false,
        }
    }
}

impl SamplingConfig {
    /// Foreground RoIs wanted per image: `round(fg_fraction * rois_per_image)`.
    pub fn fg_rois_per_image(&self) -> usize {
        (self.fg_fraction * self.rois_per_image as f64).round_ties_even() as usize
    }
}

/// The RoIs of one image and what the losses need of them; per-RoI rows are parallel.
#[derive(Clone, Debug, PartialEq)]
pub struct RoiSample {
    /// Indices into the entry's boxes: the foreground RoIs first, then the background ones.
    pub box_indices: Vec<usize>,
    /// How many of them are foreground.
    pub num_fg: usize,
    /// `(batch index, x1, y1, x2, y2)` in blob pixels (the entry's boxes times the image
    /// scale, in f32).
    pub rois: Vec<[f32; 5]>,
    /// Class labels, 0 for background RoIs.
    pub labels: Vec<i32>,
    /// Regression targets, `rois.len()` rows of `4 * regression classes` columns (row-major):
    /// a RoI's 4 targets sit in its target class's columns, the rest are 0.
    pub bbox_targets: Vec<f32>,
    /// 1 on those 4 columns, 0 elsewhere.
    pub bbox_inside_weights: Vec<f32>,
    /// 1 where the inside weight is positive.
    pub bbox_outside_weights: Vec<f32>,
    /// Columns of the target rows: 4 x classes (4 x 2 when class-agnostic).
    pub target_columns: usize,
}

/// The generator of one image's sample: the run's `seed`, the training `iteration` and the
/// image's `slot` among the iteration's images (0, 1, ...).
pub fn sample_rng(seed: u64, iteration: u64, slot: u64) -> StdRng {
    crate::seed::stream(seed, &[STREAM_ROIS, iteration, slot])
}

/// Draws `amount` of `pool` without replacement, in the order drawn (a partial
/// Fisher-Yates shuffle; NumPy's `choice(replace=False)` is a permutation's prefix too).
fn choose(pool: &mut [usize], amount: usize, rng: &mut impl Rng) -> Vec<usize> {
    for k in 0..amount {
        let j = rng.random_range(k..pool.len());
        pool.swap(k, j);
    }
    pool[..amount].to_vec()
}

/// Samples the RoIs of one roidb entry as Detectron's `_sample_rois`: `min(fg wanted, fg
/// available)` foreground boxes, then `min(rois_per_image - fg, bg available)` background
/// boxes; labels from the entry's `max_classes` with background set to 0; RoIs are the boxes
/// times `im_scale` (rounded to f32 first, as NumPy multiplies an f32 array by a Python
/// float) with `batch_index` in front; targets expanded from the entry's target class (as
/// Detectron does, even for a RoI labelled background). `num_classes` counts the background.
pub fn sample_rois(
    entry: &RoidbEntry,
    im_scale: f64,
    batch_index: usize,
    num_classes: usize,
    cfg: &SamplingConfig,
    rng: &mut impl Rng,
) -> RoiSample {
    let mut fg: Vec<usize> = (0..entry.boxes.len())
        .filter(|&i| entry.max_overlaps[i] >= cfg.fg_thresh)
        .collect();
    let num_fg = cfg.fg_rois_per_image().min(fg.len());
    let fg = choose(&mut fg, num_fg, rng);
    let mut bg: Vec<usize> = (0..entry.boxes.len())
        .filter(|&i| {
            let o = entry.max_overlaps[i];
            o < cfg.bg_thresh_hi && o >= cfg.bg_thresh_lo
        })
        .collect();
    let num_bg = cfg.rois_per_image.saturating_sub(num_fg).min(bg.len());
    let bg = choose(&mut bg, num_bg, rng);
    let box_indices: Vec<usize> = fg.into_iter().chain(bg).collect();

    let scale = im_scale as f32;
    let rois = box_indices
        .iter()
        .map(|&i| {
            let b = entry.boxes[i];
            [
                batch_index as f32,
                b[0] * scale,
                b[1] * scale,
                b[2] * scale,
                b[3] * scale,
            ]
        })
        .collect();
    let labels = box_indices
        .iter()
        .enumerate()
        .map(|(k, &i)| {
            if k < num_fg {
                entry.max_classes[i] as i32
            } else {
                0
            }
        })
        .collect();
    let reg_classes = if cfg.class_agnostic_bbox_reg {
        2
    } else {
        num_classes
    };
    let target_columns = 4 * reg_classes;
    let n = box_indices.len();
    let mut bbox_targets = vec![0f32; n * target_columns];
    let mut bbox_inside_weights = vec![0f32; n * target_columns];
    for (row, &i) in box_indices.iter().enumerate() {
        let class = entry.bbox_target_classes[i];
        if class == 0 {
            continue;
        }
        let class = if cfg.class_agnostic_bbox_reg {
            1
        } else {
            class
        };
        let start = row * target_columns + 4 * class;
        bbox_targets[start..start + 4].copy_from_slice(&entry.bbox_targets[i]);
        bbox_inside_weights[start..start + 4].fill(1.0);
    }
    let bbox_outside_weights = bbox_inside_weights
        .iter()
        .map(|&w| if w > 0.0 { 1.0 } else { 0.0 })
        .collect();
    RoiSample {
        box_indices,
        num_fg,
        rois,
        labels,
        bbox_targets,
        bbox_inside_weights,
        bbox_outside_weights,
        target_columns,
    }
}
