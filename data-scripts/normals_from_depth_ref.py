#!/usr/bin/env python3
"""NumPy reference of sslbench's normals from depth (src/tasks/normals/from_depth.rs), run on
real metric depth, for the parity test tests/normals_from_depth.rs.

Depth. Middlebury 2014 "Motorcycle" as scikit-image 0.26.0 ships it (4x downsampled, 500x741):
`skimage.data.stereo_motorcycle()` returns `np.load("skimage/data/motorcycle_disp.npz")["arr_0"]`
as its disparity, after checking the file against the SHA-256 in skimage's data registry. We do
the same without installing scikit-image: the file is read from the scikit-image wheel that
data-scripts/fetch_samples.sh keeps in data/samples/downloads/, and checked against the hash the
wheel's own `skimage/data/_registry.py` pins. Calibration (skimage's docstring, valid for the
downsampled images): f = 994.978 px, cx = 311.193, cy = 254.877, doffs = 31.086 px, baseline
B = 193.001 mm; Z = f * B / (d + doffs), in metres; a non-finite disparity is missing (0).

Method (the same as the Rust): back-project pixel (row v, column u) with
X = (u + origin - cx) * Z / fx, Y = (v + origin - cy) * Z / fy (camera frame: x right, y down,
z forward); the neighbours of a pixel are the pixels of the (2r+1)^2 window around it that lie
inside the image and have a valid depth (finite, > 0), the pixel itself included; their mean,
then their covariance sum((p - mean)(p - mean)^T) / count, both summed offset by offset in
row-major window order; the normal is the eigenvector of the smallest eigenvalue
(numpy.linalg.eigh), flipped so that n . p < 0 (toward the camera) with p the pixel's own point.
Mask = valid depth and count >= min_points and (raw depth > 0 when a raw map is given) and
inside the projection crop when one is given. Normals are 0 outside the mask.

Cases written (each a folder with normals.npy (H, W, 3) float32, mask.npy (H, W) uint8 and
params.json):
  plain/     depth with its holes, window 7, min_points 25, no raw map, no crop;
  nyu_style/ the NYU arrangement: `filled` depth (holes filled with the nearest valid depth,
             scipy.ndimage.distance_transform_edt) for the geometry, the holed depth as the
             raw map, the toolbox's projection crop (0-based rows 44..=470, cols 40..=600),
             1-based pixel origin, window 5, min_points 9.
Inputs: depth.npy (holes = 0) and filled.npy, (H, W) float32 metres.
"""

import argparse
import hashlib
import io
import json
import os
import re
import sys
import zipfile

import numpy as np

WHEEL = "data/samples/downloads/scikit_image-0.26.0-cp311-cp311-manylinux_2_24_x86_64.manylinux_2_28_x86_64.whl"
MEMBER = "skimage/data/motorcycle_disp.npz"
F, CX, CY, DOFFS, BASELINE_M = 994.978, 311.193, 254.877, 31.086, 0.193001
# The NYU toolbox's get_projection_mask (1-based rows 45:471, cols 41:601), 0-based inclusive.
NYU_CROP = {"top": 44, "left": 40, "height": 427, "width": 561}


def motorcycle_disparity(wheel):
    """The disparity skimage.data.stereo_motorcycle() returns, read from the wheel."""
    if not os.path.isfile(wheel):
        sys.exit(f"error: {wheel} is missing: run data-scripts/fetch_samples.sh first")
    with zipfile.ZipFile(wheel) as z:
        blob = z.read(MEMBER)
        registry = z.read("skimage/data/_registry.py").decode()
    pinned = re.search(r'"data/motorcycle_disp.npz":\s*"([0-9a-f]{64})"', registry).group(1)
    if hashlib.sha256(blob).hexdigest() != pinned:
        sys.exit(f"error: {MEMBER} in {wheel} does not match skimage's registry hash {pinned}")
    with np.load(io.BytesIO(blob)) as data:
        return data["arr_0"]


def normals_from_depth(depth, fx, fy, cx, cy, origin, window, min_points, raw=None, crop=None):
    """Window-PCA normals and mask, (H, W, 3) float64 and (H, W) bool."""
    h, w = depth.shape
    r = window // 2
    z = depth.astype(np.float64)
    valid = np.isfinite(z) & (z > 0)
    z = np.where(valid, z, 0.0)
    u = np.arange(w, dtype=np.float64) + origin
    v = np.arange(h, dtype=np.float64) + origin
    x = (u[None, :] - cx) * z / fx
    y = (v[:, None] - cy) * z / fy
    p = np.stack([x, y, z], axis=-1)
    pp = np.zeros((h + 2 * r, w + 2 * r, 3))
    pp[r : r + h, r : r + w] = p
    vp = np.zeros((h + 2 * r, w + 2 * r), dtype=bool)
    vp[r : r + h, r : r + w] = valid
    offsets = [(dy, dx) for dy in range(-r, r + 1) for dx in range(-r, r + 1)]

    def shifted(a, dy, dx):
        return a[r + dy : r + dy + h, r + dx : r + dx + w]

    count = np.zeros((h, w), dtype=np.int64)
    total = np.zeros((h, w, 3))
    for dy, dx in offsets:
        m = shifted(vp, dy, dx)
        count += m
        total += np.where(m[..., None], shifted(pp, dy, dx), 0.0)
    mean = total / np.maximum(count, 1)[..., None]
    cov = np.zeros((h, w, 3, 3))
    for dy, dx in offsets:
        m = shifted(vp, dy, dx)
        d = np.where(m[..., None], shifted(pp, dy, dx) - mean, 0.0)
        cov += d[..., :, None] * d[..., None, :]
    cov /= np.maximum(count, 1)[..., None, None]

    mask = valid & (count >= min_points)
    if raw is not None:
        mask &= np.isfinite(raw) & (raw > 0)
    if crop is not None:
        inside = np.zeros((h, w), dtype=bool)
        inside[crop["top"] : crop["top"] + crop["height"], crop["left"] : crop["left"] + crop["width"]] = True
        mask &= inside
    normals = np.zeros((h, w, 3))
    _, vecs = np.linalg.eigh(cov[mask])
    n = vecs[:, :, 0]
    n /= np.linalg.norm(n, axis=-1, keepdims=True)
    flip = np.sum(n * p[mask], axis=-1) > 0
    n[flip] = -n[flip]
    normals[mask] = n
    return normals, mask, cov, count


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--out", required=True, help="folder to write (e.g. data/samples/normals-ref)")
    ap.add_argument("--wheel", default=WHEEL)
    args = ap.parse_args()
    from scipy import ndimage

    disp = motorcycle_disparity(args.wheel).astype(np.float64)
    known = np.isfinite(disp)
    depth = np.where(known, F * BASELINE_M / np.where(known, disp + DOFFS, 1.0), 0.0).astype(np.float32)
    _, (iy, ix) = ndimage.distance_transform_edt(depth == 0, return_indices=True)
    filled = depth[iy, ix]
    os.makedirs(args.out, exist_ok=True)
    np.save(os.path.join(args.out, "depth.npy"), depth)
    np.save(os.path.join(args.out, "filled.npy"), filled)
    cases = {
        "plain": dict(depth="depth.npy", raw=None, crop=None, fx=F, fy=F, cx=CX, cy=CY, origin=0.0,
                      window=7, min_points=25),
        "nyu_style": dict(depth="filled.npy", raw="depth.npy", crop=NYU_CROP, fx=F, fy=F, cx=CX, cy=CY,
                          origin=1.0, window=5, min_points=9),
    }
    for name, c in cases.items():
        d = np.load(os.path.join(args.out, c["depth"]))
        raw = None if c["raw"] is None else np.load(os.path.join(args.out, c["raw"]))
        normals, mask, cov, count = normals_from_depth(
            d, c["fx"], c["fy"], c["cx"], c["cy"], c["origin"], c["window"], c["min_points"], raw, c["crop"])
        folder = os.path.join(args.out, name)
        os.makedirs(folder, exist_ok=True)
        np.save(os.path.join(folder, "normals.npy"), normals.astype(np.float32))
        np.save(os.path.join(folder, "mask.npy"), mask.astype(np.uint8))
        with open(os.path.join(folder, "params.json"), "w") as f:
            json.dump(c, f, indent=1)
        # How well posed the fits are: the gap of the two smallest eigenvalues over the largest.
        ev = np.linalg.eigvalsh(cov[mask])
        gap = (ev[:, 1] - ev[:, 0]) / ev[:, 2]
        print(f"normals-ref/{name}: {mask.sum()} valid of {mask.size}, window {c['window']}, "
              f"min relative eigen-gap {gap.min():.3g}")


if __name__ == "__main__":
    main()
