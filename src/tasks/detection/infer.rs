//! Test-time detection as Detectron's `im_detect_bbox` and `box_results_with_nms_and_limit`
//! run it: the test roidb's proposals (the first `roidb.test_proposal_limit`) scaled into the
//! blob, RoIs equal at 1/16
//! run once (`DEDUP_BOXES`), softmax scores, class-specific decoding clipped to the image,
//! then per class a score threshold and greedy NMS, and at most `detections_per_im` per
//! image over all classes.

use super::blob::scale_test_rois;
use super::config::DetectionConfig;
use super::head::FastRcnnHead;
use super::maps::FrozenMaps;
use super::roidb::RoidbEntry;
use super::voc_eval::Detection;
use anyhow::Result;
use candle_core::{DType, Device, Tensor};
use sslbench_ops::boxes::{clip_box, nms, BoxF};
use std::collections::HashMap;

/// The indices of the first occurrence of each distinct RoI after `round(roi * scale)`
/// (Detectron's hash of the rounded coordinates), and each RoI's index among them.
pub fn dedup(rois: &[BoxF], scale: f32) -> (Vec<usize>, Vec<usize>) {
    if scale <= 0.0 {
        let all: Vec<usize> = (0..rois.len()).collect();
        return (all.clone(), all);
    }
    let mut first: HashMap<[i64; 4], usize> = HashMap::new();
    let mut unique = Vec::new();
    let inverse = rois
        .iter()
        .enumerate()
        .map(|(i, b)| {
            let key = b.map(|v| (v * scale).round() as i64);
            *first.entry(key).or_insert_with(|| {
                unique.push(i);
                unique.len() - 1
            })
        })
        .collect();
    (unique, inverse)
}

/// Scores (R x (classes + 1)) and deltas (R x 4 (classes + 1)) of an image's RoIs.
fn score_rois(
    head: &FastRcnnHead,
    frozen: &Tensor,
    rois: &[BoxF],
    chunk: usize,
    device: &Device,
) -> Result<(Vec<Vec<f32>>, Vec<Vec<f32>>)> {
    let res4 = head.res4(&frozen.unsqueeze(0)?.to_device(device)?)?;
    let (mut scores, mut deltas) = (Vec::new(), Vec::new());
    for part in rois.chunks(chunk.max(1)) {
        let flat: Vec<f32> = part
            .iter()
            .flat_map(|b| [0.0, b[0], b[1], b[2], b[3]])
            .collect();
        let t = Tensor::from_vec(flat, (part.len(), 5), device)?;
        let out = head.classify(&head.roi_maps(&res4, &t)?)?;
        let p = candle_nn::ops::softmax_last_dim(&out.logits)?;
        scores.extend(p.to_dtype(DType::F32)?.to_vec2::<f32>()?);
        deltas.extend(out.deltas.to_dtype(DType::F32)?.to_vec2::<f32>()?);
    }
    Ok((scores, deltas))
}

/// The detections of one test image, per class (index 0 is background and stays empty).
pub fn detect_image(
    cfg: &DetectionConfig,
    head: &FastRcnnHead,
    maps: &FrozenMaps,
    entry: &RoidbEntry,
    classes: usize,
    device: &Device,
) -> Result<Vec<Vec<Detection>>> {
    let t = &cfg.test;
    let proposals = &entry.boxes;
    if proposals.is_empty() {
        return Ok(vec![Vec::new(); classes + 1]);
    }
    let (frozen, im_scale) = maps.read(entry)?;
    let rois = scale_test_rois(proposals, im_scale);
    let (unique, inverse) = dedup(&rois, t.dedup_boxes);
    let unique_rois: Vec<BoxF> = unique.iter().map(|&i| rois[i]).collect();
    let (scores, deltas) = score_rois(head, &frozen, &unique_rois, t.roi_chunk, device)?;
    let coder = cfg.coder();
    let boxes_of = |i: usize, j: usize| {
        if !t.bbox_reg {
            return proposals[i];
        }
        let col = if cfg.sampling.class_agnostic_bbox_reg {
            1
        } else {
            j
        };
        let d = &deltas[inverse[i]][4 * col..4 * col + 4];
        coder.decode(&proposals[i], [d[0], d[1], d[2], d[3]])
    };
    Ok(post_process(
        cfg,
        entry,
        classes,
        |i, j| scores[inverse[i]][j],
        boxes_of,
    ))
}

/// Detections of one image from a score for each (proposal, class) and a box for each
/// (proposal, class): Detectron's `box_results_with_nms_and_limit`, i.e. per class the
/// scores above `test.score_thresh`, the boxes clipped to the image, greedy NMS at
/// `test.nms`, then at most `test.detections_per_im` over all classes.
fn post_process(
    cfg: &DetectionConfig,
    entry: &RoidbEntry,
    classes: usize,
    score: impl Fn(usize, usize) -> f32,
    bbox: impl Fn(usize, usize) -> BoxF,
) -> Vec<Vec<Detection>> {
    let t = &cfg.test;
    let mut per_class: Vec<Vec<Detection>> = vec![Vec::new(); classes + 1];
    for (j, out) in per_class.iter_mut().enumerate().skip(1) {
        let mut boxes = Vec::new();
        let mut kept_scores = Vec::new();
        for i in 0..entry.boxes.len() {
            let s = score(i, j);
            if s <= t.score_thresh {
                continue;
            }
            boxes.push(clip_box(&bbox(i, j), entry.width, entry.height));
            kept_scores.push(s);
        }
        for k in nms(&boxes, &kept_scores, t.nms as f64) {
            out.push(Detection {
                image: entry.id.clone(),
                score: kept_scores[k],
                bbox: boxes[k],
            });
        }
    }
    limit(&mut per_class, t.detections_per_im);
    per_class
}

/// The chance baseline of an image: every proposal gets an independent uniform score in
/// [0, 1) per class and keeps its own box, then the test's threshold, NMS and limit run as
/// for the trained head. Its mAP is what a head that learned nothing would reach over the
/// same proposals.
pub fn random_scores_image(
    cfg: &DetectionConfig,
    entry: &RoidbEntry,
    classes: usize,
    rng: &mut impl rand::Rng,
) -> Vec<Vec<Detection>> {
    let n = entry.boxes.len();
    let scores: Vec<f32> = (0..n * (classes + 1))
        .map(|_| rng.random::<f32>())
        .collect();
    post_process(
        cfg,
        entry,
        classes,
        |i, j| scores[i * (classes + 1) + j],
        |i, _| entry.boxes[i],
    )
}

/// Keeps the detections scoring at least the `max`-th highest score of the image (ties at
/// that score can keep more, as in Detectron).
pub fn limit(per_class: &mut [Vec<Detection>], max: usize) {
    let mut all: Vec<f32> = per_class.iter().flatten().map(|d| d.score).collect();
    if max == 0 || all.len() <= max {
        return;
    }
    all.sort_by(|a, b| b.total_cmp(a));
    let threshold = all[max - 1];
    for dets in per_class.iter_mut() {
        dets.retain(|d| d.score >= threshold);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn dedup_keeps_first_occurrences_of_boxes_equal_at_the_scale() {
        let rois = [
            [0.0, 0.0, 15.0, 15.0],
            [1.0, 1.0, 16.0, 15.0],
            [64.0, 0.0, 90.0, 30.0],
            [0.0, 0.0, 15.0, 15.0],
        ];
        let (unique, inverse) = dedup(&rois, 1.0 / 16.0);
        assert_eq!(unique, vec![0, 2]);
        assert_eq!(inverse, vec![0, 0, 1, 0]);
    }

    #[test]
    fn the_limit_keeps_the_top_scores_with_ties() {
        let d = |s| Detection {
            image: "a".into(),
            score: s,
            bbox: [0.0; 4],
        };
        let mut per_class = vec![vec![], vec![d(0.9), d(0.5)], vec![d(0.5), d(0.1)]];
        limit(&mut per_class, 2);
        assert_eq!(per_class[1].len(), 2);
        assert_eq!(per_class[2].len(), 1);
    }
}
