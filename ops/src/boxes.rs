//! Boxes in Detectron's pixel convention (inclusive corners, widths `x2 - x1 + 1`): IoU, NMS,
//! the box coding of Fast R-CNN, clipping.
//!
//! Every function reproduces the arithmetic of Detectron's `utils/boxes.py`,
//! `utils/cython_bbox.pyx` and `utils/cython_nms.pyx` operation for operation in `f32`, so
//! results are bit-identical to Detectron's wherever the reference is plain IEEE arithmetic
//! (IoU, NMS, the centre offsets); the logarithm and exponential of the box coding may differ
//! from NumPy's vectorised `log`/`exp` in the last bit.

/// A box `[x1, y1, x2, y2]` in pixels, corners inclusive: its width is `x2 - x1 + 1`.
pub type BoxF = [f32; 4];

/// The area `(x2 - x1 + 1) * (y2 - y1 + 1)`, in `f32` as Detectron computes it.
pub fn area(b: &BoxF) -> f32 {
    (b[2] - b[0] + 1.0) * (b[3] - b[1] + 1.0)
}

/// Intersection over union with the +1 convention, in `f32` exactly as `cython_bbox`'s
/// `bbox_overlaps` computes it: 0 when the boxes do not overlap by a whole pixel's width
/// (`iw <= 0` or `ih <= 0`).
pub fn iou(a: &BoxF, b: &BoxF) -> f32 {
    let iw = a[2].min(b[2]) - a[0].max(b[0]) + 1.0;
    if iw <= 0.0 {
        return 0.0;
    }
    let ih = a[3].min(b[3]) - a[1].max(b[1]) + 1.0;
    if ih <= 0.0 {
        return 0.0;
    }
    let inter = iw * ih;
    inter / (area(a) + area(b) - inter)
}

/// The order in which [`nms`] visits boxes: by descending score, equal scores by descending
/// index. This is NumPy's `np.argsort(scores, kind="stable")[::-1]`, and it equals Detectron's
/// `scores.argsort()[::-1]` whenever NumPy's default sort keeps equal keys in index order (it
/// always does for 16 scores or fewer; for more, its introsort may order ties differently).
/// NaN scores come first, as in NumPy; `-0.0` and `0.0` are equal.
pub fn score_order(scores: &[f32]) -> Vec<usize> {
    let mut order: Vec<usize> = (0..scores.len()).collect();
    // NumPy's ascending order (NaN last), stable; reversed below.
    order.sort_by(|&i, &j| {
        let (a, b) = (scores[i], scores[j]);
        match (a.is_nan(), b.is_nan()) {
            (false, false) => a.partial_cmp(&b).expect("neither is NaN"),
            (an, bn) => an.cmp(&bn),
        }
    });
    order.reverse();
    order
}

/// Greedy non-maximum suppression as Detectron's `cython_nms.nms`: visit boxes in
/// [`score_order`], keep each box not yet suppressed and suppress every later box whose IoU
/// with it is `>= thresh`. Returns the kept indices in visiting order.
///
/// The IoU is `inter / (area_i + area_j - inter)` in `f32` with `inter = max(0, w) * max(0, h)`;
/// `thresh` is an `f64` because Detectron compares the `f32` overlap with a Python float
/// (an `f32` threshold such as `0.7f32` lies below `0.7` and would suppress more).
///
/// # Panics
/// If `boxes` and `scores` differ in length (a caller's bug, not user input).
pub fn nms(boxes: &[BoxF], scores: &[f32], thresh: f64) -> Vec<usize> {
    assert_eq!(boxes.len(), scores.len(), "nms: one score per box");
    let areas: Vec<f32> = boxes.iter().map(area).collect();
    let order = score_order(scores);
    let mut suppressed = vec![false; boxes.len()];
    let mut keep = Vec::new();
    for (pos, &i) in order.iter().enumerate() {
        if suppressed[i] {
            continue;
        }
        keep.push(i);
        let bi = &boxes[i];
        for &j in &order[pos + 1..] {
            if suppressed[j] {
                continue;
            }
            let bj = &boxes[j];
            let w = (bi[2].min(bj[2]) - bi[0].max(bj[0]) + 1.0).max(0.0);
            let h = (bi[3].min(bj[3]) - bi[1].max(bj[1]) + 1.0).max(0.0);
            let inter = w * h;
            let ovr = inter / (areas[i] + areas[j] - inter);
            if f64::from(ovr) >= thresh {
                suppressed[j] = true;
            }
        }
    }
    keep
}

/// Clips a box to the image, `x` to `[0, width - 1]` and `y` to `[0, height - 1]`
/// (Detectron's `clip_boxes_to_image`; NaN coordinates become the lower bound).
pub fn clip_box(b: &BoxF, width: u32, height: u32) -> BoxF {
    let (xmax, ymax) = (width as f32 - 1.0, height as f32 - 1.0);
    [
        b[0].max(0.0).min(xmax),
        b[1].max(0.0).min(ymax),
        b[2].max(0.0).min(xmax),
        b[3].max(0.0).min(ymax),
    ]
}

/// Fast R-CNN's box coding (Detectron `bbox_transform_inv` to encode, `bbox_transform` to
/// decode) with the +1 widths.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct BoxCoder {
    /// `(wx, wy, ww, wh)`: the targets are `wx * dx`, `wy * dy`, `ww * dw`, `wh * dh`
    /// (Detectron's `MODEL.BBOX_REG_WEIGHTS`, `(10, 10, 5, 5)` for Fast R-CNN).
    pub weights: [f32; 4],
    /// Upper bound on the decoded `dw`, `dh` before `exp` (Detectron's `BBOX_XFORM_CLIP`,
    /// `log(1000 / 16)`).
    pub clip: f32,
}

impl Default for BoxCoder {
    /// Detectron's Fast R-CNN coder: weights `(10, 10, 5, 5)`, clip `log(1000 / 16)` (taken
    /// in `f64` and rounded to `f32`, as NumPy applies a Python float to an `f32` array).
    fn default() -> Self {
        Self {
            weights: [10.0, 10.0, 5.0, 5.0],
            clip: (1000f64 / 16.0).ln() as f32,
        }
    }
}

impl BoxCoder {
    /// The regression target `(dx, dy, dw, dh)` that moves `proposal` onto `gt`:
    /// `dx = wx * (gcx - cx) / w`, `dw = ww * ln(gw / w)`, with `w = x2 - x1 + 1` and
    /// `cx = x1 + 0.5 w`.
    pub fn encode(&self, proposal: &BoxF, gt: &BoxF) -> [f32; 4] {
        let [wx, wy, ww, wh] = self.weights;
        let (ew, eh) = (
            proposal[2] - proposal[0] + 1.0,
            proposal[3] - proposal[1] + 1.0,
        );
        let (ecx, ecy) = (proposal[0] + 0.5 * ew, proposal[1] + 0.5 * eh);
        let (gw, gh) = (gt[2] - gt[0] + 1.0, gt[3] - gt[1] + 1.0);
        let (gcx, gcy) = (gt[0] + 0.5 * gw, gt[1] + 0.5 * gh);
        [
            wx * (gcx - ecx) / ew,
            wy * (gcy - ecy) / eh,
            ww * (gw / ew).ln(),
            wh * (gh / eh).ln(),
        ]
    }

    /// Applies `deltas` to `proposal`: divide by the weights, clip `dw`, `dh` at
    /// [`BoxCoder::clip`], then `x1 = pcx - 0.5 pw`, `x2 = pcx + 0.5 pw - 1` (same for y).
    pub fn decode(&self, proposal: &BoxF, deltas: [f32; 4]) -> BoxF {
        let [wx, wy, ww, wh] = self.weights;
        let (w, h) = (
            proposal[2] - proposal[0] + 1.0,
            proposal[3] - proposal[1] + 1.0,
        );
        let (cx, cy) = (proposal[0] + 0.5 * w, proposal[1] + 0.5 * h);
        let (dx, dy) = (deltas[0] / wx, deltas[1] / wy);
        let dw = (deltas[2] / ww).min(self.clip);
        let dh = (deltas[3] / wh).min(self.clip);
        let (pcx, pcy) = (dx * w + cx, dy * h + cy);
        let (pw, ph) = (dw.exp() * w, dh.exp() * h);
        [
            pcx - 0.5 * pw,
            pcy - 0.5 * ph,
            pcx + 0.5 * pw - 1.0,
            pcy + 0.5 * ph - 1.0,
        ]
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn iou_counts_inclusive_pixels() {
        // Two 10x10 boxes sharing a 5x10 strip: 50 / 150.
        let a = [0.0, 0.0, 9.0, 9.0];
        let b = [5.0, 0.0, 14.0, 9.0];
        assert_eq!(area(&a), 100.0);
        assert_eq!(iou(&a, &b), 50.0 / 150.0);
        // Touching corners share one pixel; boxes a pixel apart share none.
        assert_eq!(iou(&a, &[9.0, 9.0, 18.0, 18.0]), 1.0 / 199.0);
        assert_eq!(iou(&a, &[10.0, 0.0, 19.0, 9.0]), 0.0);
    }

    #[test]
    fn nms_suppresses_at_the_threshold_itself() {
        // IoU exactly 0.5 (a 10x10 box inside a 10x20 one): suppressed at 0.5, kept above.
        let boxes = [[0.0, 0.0, 9.0, 9.0], [0.0, 0.0, 9.0, 19.0]];
        assert_eq!(iou(&boxes[0], &boxes[1]), 0.5);
        assert_eq!(nms(&boxes, &[0.9, 0.8], 0.5), vec![0]);
        assert_eq!(nms(&boxes, &[0.9, 0.8], 0.500001), vec![0, 1]);
        // Equal scores: the later index is visited first.
        assert_eq!(nms(&boxes, &[0.5, 0.5], 0.5), vec![1]);
    }

    #[test]
    fn coding_round_trips() {
        let coder = BoxCoder::default();
        let p = [10.0, 20.0, 59.0, 99.0];
        let g = [14.0, 18.0, 70.0, 90.0];
        let d = coder.encode(&p, &g);
        let back = coder.decode(&p, d);
        for (x, y) in back.iter().zip(g) {
            assert!((x - y).abs() < 1e-3, "{back:?} vs {g:?}");
        }
        // Deltas beyond the clip are capped: the width grows at most 1000/16 times.
        let big = coder.decode(&p, [0.0, 0.0, 1e3, 0.0]);
        assert!((big[2] - big[0] + 1.0 - 50.0 * 62.5).abs() < 0.1);
    }
}
