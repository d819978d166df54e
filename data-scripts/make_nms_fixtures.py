#!/usr/bin/env python3
"""Write the box fixture ops/tests/fixtures/boxes/boxes.json: NMS and the Fast R-CNN box
coding, as Detectron computes them, for ops/tests/boxes.rs.

Derived fixture, from seeded random boxes (NumPy's PCG64, seed below). Two references:
- `detectron_nms` below, our own NumPy port of Detectron's `utils/cython_nms.pyx` written from
  its description (research/detection.md 1g): order `scores.argsort()[::-1]` (NumPy's default
  sort, as Detectron), areas with +1, float32 overlaps, suppress when IoU >= thresh (a Python
  float);
- torchvision.ops.nms on the boxes with 1 added to x2 and y2 (its areas have no +1), which
  suppresses IoU > thresh and sorts ties in no stated order: it is recorded only for the cases
  without tied scores and without an overlap equal to a threshold.
The box coding (Detectron's bbox_transform_inv / bbox_transform, float32 arithmetic, NumPy's
float32 log and exp) is recorded for random proposal/ground-truth pairs.

Tied scores: `keep` visits ties in the order sslbench documents, NumPy's
`argsort(kind="stable")[::-1]` (descending index), which is what NumPy 1.x's default sort gave
Detectron for 16 boxes or fewer. `keep_numpy_default_sort` is the same port with the running
NumPy's default sort, whose tie order is an implementation detail (NumPy 2's SIMD sorts do not
keep index order even for a dozen keys); `ties_in_index_order` says whether the two orders
agreed.

Needs torch and torchvision (data-scripts/bench-requirements.txt). Run from the repository root:
    python3 data-scripts/make_nms_fixtures.py
"""
import json
import os

import numpy as np
import torch
import torchvision

OUT = os.path.join("ops", "tests", "fixtures", "boxes", "boxes.json")
SEED = 13


def detectron_nms(boxes, scores, thresh, kind=None):
    """Greedy NMS with Detectron's arithmetic (float32 boxes, Python-float threshold); `kind`
    is the argsort kind (None: NumPy's default, as Detectron calls it)."""
    boxes = boxes.astype(np.float32)
    x1, y1, x2, y2 = boxes[:, 0], boxes[:, 1], boxes[:, 2], boxes[:, 3]
    areas = (x2 - x1 + np.float32(1)) * (y2 - y1 + np.float32(1))
    order = scores.argsort(kind=kind)[::-1]
    suppressed = np.zeros(len(boxes), dtype=bool)
    keep = []
    one, zero = np.float32(1), np.float32(0)
    for pos, i in enumerate(order):
        if suppressed[i]:
            continue
        keep.append(int(i))
        for j in order[pos + 1:]:
            if suppressed[j]:
                continue
            w = max(zero, min(x2[i], x2[j]) - max(x1[i], x1[j]) + one)
            h = max(zero, min(y2[i], y2[j]) - max(y1[i], y1[j]) + one)
            inter = np.float32(w * h)
            ovr = np.float32(inter / (areas[i] + areas[j] - inter))
            if float(ovr) >= thresh:
                suppressed[j] = True
    return keep


def pair_overlaps(boxes):
    """All pairwise float32 overlaps, as detectron_nms computes them."""
    b = boxes.astype(np.float32)
    one = np.float32(1)
    areas = (b[:, 2] - b[:, 0] + one) * (b[:, 3] - b[:, 1] + one)
    w = np.maximum(np.float32(0), np.minimum(b[:, None, 2], b[None, :, 2])
                   - np.maximum(b[:, None, 0], b[None, :, 0]) + one)
    h = np.maximum(np.float32(0), np.minimum(b[:, None, 3], b[None, :, 3])
                   - np.maximum(b[:, None, 1], b[None, :, 1]) + one)
    inter = w * h
    return inter / (areas[:, None] + areas[None, :] - inter)


def torchvision_nms(boxes, scores, thresh):
    b = torch.from_numpy(boxes.astype(np.float32).copy())
    b[:, 2:] += 1
    return [int(i) for i in torchvision.ops.nms(b, torch.from_numpy(scores), thresh)]


def random_boxes(rng, n, size, integer):
    xy = rng.uniform(0, size, (n, 2))
    wh = rng.uniform(1, size / 2, (n, 2))
    b = np.concatenate([xy, xy + wh], axis=1)
    return (np.floor(b) if integer else b).astype(np.float32)


def nms_case(name, boxes, scores, thresh):
    scores = scores.astype(np.float32)
    ties = len(np.unique(scores)) < len(scores)
    ovr = pair_overlaps(boxes)
    exact = bool(np.any(ovr[~np.eye(len(boxes), dtype=bool)].astype(np.float64) == thresh))
    stable = np.argsort(scores, kind="stable")[::-1]
    case = {
        "name": name,
        "boxes": boxes.astype(np.float64).tolist(),
        "scores": scores.astype(np.float64).tolist(),
        "thresh": thresh,
        "keep": detectron_nms(boxes, scores, thresh, kind="stable"),
        "keep_numpy_default_sort": detectron_nms(boxes, scores, thresh),
        "ties": ties,
        "exact_threshold_pair": exact,
        "ties_in_index_order": bool(np.array_equal(scores.argsort()[::-1], stable)),
        "torchvision_keep": None,
    }
    if not ties and not exact:
        case["torchvision_keep"] = torchvision_nms(boxes, scores, thresh)
        assert case["torchvision_keep"] == case["keep"], name
    return case


def bbox_transform_inv(ex, gt, weights):
    """Detectron's encoding, in float32 as its roidb computes it."""
    wx, wy, ww, wh = weights
    ew = ex[:, 2] - ex[:, 0] + 1.0
    eh = ex[:, 3] - ex[:, 1] + 1.0
    ecx = ex[:, 0] + 0.5 * ew
    ecy = ex[:, 1] + 0.5 * eh
    gw = gt[:, 2] - gt[:, 0] + 1.0
    gh = gt[:, 3] - gt[:, 1] + 1.0
    gcx = gt[:, 0] + 0.5 * gw
    gcy = gt[:, 1] + 0.5 * gh
    return np.stack([wx * (gcx - ecx) / ew, wy * (gcy - ecy) / eh,
                     ww * np.log(gw / ew), wh * np.log(gh / eh)], axis=1)


def bbox_transform(boxes, deltas, weights, clip):
    """Detectron's decoding, float32."""
    wx, wy, ww, wh = weights
    w = boxes[:, 2] - boxes[:, 0] + 1.0
    h = boxes[:, 3] - boxes[:, 1] + 1.0
    cx = boxes[:, 0] + 0.5 * w
    cy = boxes[:, 1] + 0.5 * h
    dx, dy = deltas[:, 0] / wx, deltas[:, 1] / wy
    dw = np.minimum(deltas[:, 2] / ww, clip)
    dh = np.minimum(deltas[:, 3] / wh, clip)
    pcx, pcy = dx * w + cx, dy * h + cy
    pw, ph = np.exp(dw) * w, np.exp(dh) * h
    return np.stack([pcx - 0.5 * pw, pcy - 0.5 * ph, pcx + 0.5 * pw - 1, pcy + 0.5 * ph - 1],
                    axis=1)


def main():
    rng = np.random.default_rng(SEED)
    cases = []
    for thresh in (0.3, 0.5, 0.7):
        b = random_boxes(rng, 60, 100, integer=False)
        cases.append(nms_case(f"float boxes, distinct scores, {thresh}", b,
                              rng.uniform(0, 1, 60), thresh))
    # Clusters of jittered copies, the case NMS exists for.
    base = random_boxes(rng, 8, 100, integer=False)
    b = (np.repeat(base, 6, axis=0) + rng.normal(0, 3, (48, 4))).astype(np.float32)
    b[:, 2:] = np.maximum(b[:, 2:], b[:, :2])
    for thresh in (0.5, 0.7):
        cases.append(nms_case(f"jittered clusters, {thresh}", b, rng.uniform(0, 1, 48), thresh))
    # Integer boxes on a coarse grid: many overlaps land exactly on 0.5 (10x10 in 10x20) and
    # 0.25 (10x10 in 20x20).
    grid = np.array([[x, y, x + w - 1, y + h - 1]
                     for x in (0, 5, 10) for y in (0, 10) for w in (10, 20) for h in (10, 20)],
                    dtype=np.float32)
    cases.append(nms_case("grid boxes, exact 0.5 overlaps", grid,
                          rng.permutation(len(grid)) / len(grid), 0.5))
    cases.append(nms_case("grid boxes, threshold 0.25", grid,
                          rng.permutation(len(grid)) / len(grid), 0.25))
    # Tied scores (3 decimals, as Detectron's results files round them), few and many boxes.
    for n in (12, 16):
        b = random_boxes(rng, n, 30, integer=True)
        cases.append(nms_case(f"{n} boxes, tied scores", b,
                              np.round(rng.choice([0.1, 0.5, 0.9], n), 3), 0.3))
    b = random_boxes(rng, 24, 30, integer=True)
    cases.append(nms_case("24 boxes, all scores equal", b, np.full(24, 0.5), 0.3))
    cases.append(nms_case("no boxes", np.zeros((0, 4), np.float32), np.zeros(0), 0.3))

    weights = (10.0, 10.0, 5.0, 5.0)
    clip = np.float32(np.log(1000.0 / 16.0))
    props = random_boxes(rng, 50, 500, integer=True)
    gts = (props + rng.uniform(-20, 20, (50, 4))).astype(np.float32)
    gts[:, 2:] = np.maximum(gts[:, 2:], gts[:, :2] + 1)
    targets = bbox_transform_inv(props, gts, weights).astype(np.float32)
    deltas = rng.normal(0, 2, (50, 4)).astype(np.float32)
    deltas[:5, 2:] = 40.0  # beyond the clip
    decoded = bbox_transform(props, deltas, weights, clip).astype(np.float32)
    assert targets.dtype == np.float32 and decoded.dtype == np.float32
    coding = {
        "weights": list(weights),
        "clip": float(clip),
        "proposals": props.astype(np.float64).tolist(),
        "gts": gts.astype(np.float64).tolist(),
        "targets": targets.astype(np.float64).tolist(),
        "deltas": deltas.astype(np.float64).tolist(),
        "decoded": decoded.astype(np.float64).tolist(),
    }
    os.makedirs(os.path.dirname(OUT), exist_ok=True)
    with open(OUT, "w") as f:
        json.dump({"seed": SEED, "numpy": np.__version__, "torchvision": torchvision.__version__,
                   "nms": cases, "coding": coding}, f)
    for c in cases:
        print(f"{c['name']}: keep {len(c['keep'])}/{len(c['scores'])}, ties {c['ties']}, "
              f"exact {c['exact_threshold_pair']}, index order {c['ties_in_index_order']}, "
              f"same keep with the default sort {c['keep'] == c['keep_numpy_default_sort']}")
    print("wrote", OUT, os.path.getsize(OUT), "bytes")


if __name__ == "__main__":
    main()
