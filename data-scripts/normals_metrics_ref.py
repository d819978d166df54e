#!/usr/bin/env python3
"""NumPy reference of sslbench's normals evaluation (src/tasks/normals/metrics.rs) and of the
codebook labels (src/tasks/normals/codebook.rs), for tests/normals_metrics.rs.

The evaluation is the paper's (imisra/semantic-segmentation-pytorch, research/normals.md
1.8-1.9): a prediction is the softmax-weighted sum of the codebook's centres in float64,
renormalised n / (||n|| + eps) (eps = float64 machine epsilon); prediction and ground truth are
each renormalised the same way; angle = degrees(arccos(clip(sum(n * g), -1, 1))) over the valid
pixels of every image, pooled; mean, np.percentile(angle, 50) (linear), and
np.mean(angle < t) * 100 for t in 11.25, 22.5, 30.

Data. Ground truth: real normals, those data-scripts/normals_from_depth_ref.py computed from the
Middlebury Motorcycle depth (its `plain` case), in three 200 x 300 windows of the frame, one per
"image". Codebook: 40 centres from scikit-learn's KMeans (seed 0) on a seeded sample of the valid
normals, renormalised. Predictions: a softmax over the centres of 8 * (c_k . m), m the ground
truth perturbed by seeded Gaussian noise (sigma 0.1, 0.2, 0.3 by image), as float32 class
probabilities, channel-first (40, H, W) as the model writes them.

Writes into --out: codebook.npy (40, 3) f64; per image i: gt_i.npy (H, W, 3) f32, mask_i.npy
(H, W) u8, probs_i.npy (40, H, W) f32, decoded_i.npy (H, W, 3) f64, labels_i.npy (H, W) u8
(sklearn.metrics.pairwise_distances_argmin of the ground truth to the centres, 255 where
invalid); metrics.json with the pooled metrics.
"""

import argparse
import json
import os

import numpy as np
from sklearn.cluster import KMeans
from sklearn.metrics import pairwise_distances_argmin

EPS = np.finfo(np.float64).eps
WINDOWS = [(0, 0), (150, 200), (300, 441)]
SIZE = (200, 300)
THRESHOLDS = [11.25, 22.5, 30.0]


def renormalise(m):
    return m / (np.linalg.norm(m, axis=-1, keepdims=True) + EPS)


def decode(probs, codebook):
    """(K, H, W) probabilities -> (H, W, 3) float64 normals."""
    k, h, w = probs.shape
    n = probs.reshape(k, -1).T.astype(np.float64) @ codebook
    return renormalise(n).reshape(h, w, 3)


def angles(pred, gt, mask):
    n, g = renormalise(pred.astype(np.float64)), renormalise(gt.astype(np.float64))
    dp = np.clip(np.sum(n * g, axis=-1), -1.0, 1.0)
    return np.degrees(np.arccos(dp))[mask > 0]


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--normals", required=True, help="normals_from_depth_ref.py's --out folder")
    ap.add_argument("--out", required=True)
    args = ap.parse_args()
    normals = np.load(os.path.join(args.normals, "plain", "normals.npy"))
    mask = np.load(os.path.join(args.normals, "plain", "mask.npy"))
    rng = np.random.default_rng(0)
    valid = normals[mask > 0].astype(np.float64)
    sample = valid[rng.choice(len(valid), 20000, replace=False)]
    codebook = renormalise(KMeans(40, n_init=1, random_state=0).fit(sample).cluster_centers_)
    os.makedirs(args.out, exist_ok=True)
    np.save(os.path.join(args.out, "codebook.npy"), codebook)
    pooled = []
    for i, (top, left) in enumerate(WINDOWS):
        gt = normals[top : top + SIZE[0], left : left + SIZE[1]]
        m = mask[top : top + SIZE[0], left : left + SIZE[1]]
        noisy = renormalise(gt + rng.normal(0.0, 0.1 * (i + 1), gt.shape))
        logits = 8.0 * np.einsum("hwc,kc->khw", noisy, codebook)
        e = np.exp(logits - logits.max(axis=0, keepdims=True))
        probs = (e / e.sum(axis=0, keepdims=True)).astype(np.float32)
        pred = decode(probs, codebook)
        labels = np.full(m.shape, 255, dtype=np.uint8)
        labels[m > 0] = pairwise_distances_argmin(gt[m > 0].astype(np.float64), codebook)
        for name, a in [("gt", gt), ("mask", m), ("probs", probs), ("decoded", pred), ("labels", labels)]:
            np.save(os.path.join(args.out, f"{name}_{i}.npy"), np.ascontiguousarray(a))
        pooled.append(angles(pred, gt, m))
    e = np.concatenate(pooled)
    metrics = {
        "pixels": int(e.size),
        "mean": float(np.mean(e)),
        "median": float(np.percentile(e, 50)),
        "below": [int(np.sum(e < t)) for t in THRESHOLDS],
        "percent_below": [float(np.mean(e < t) * 100) for t in THRESHOLDS],
    }
    with open(os.path.join(args.out, "metrics.json"), "w") as f:
        json.dump(metrics, f, indent=1)
    print(f"normals-metrics: {len(WINDOWS)} images, {metrics}")


if __name__ == "__main__":
    main()
