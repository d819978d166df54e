#!/usr/bin/env python3
"""Write tests/fixtures/detection/resize.json: OpenCV's INTER_LINEAR resize and Detectron's
image preparation, for tests/detection_data.rs.

Derived fixture, from seeded random images (NumPy's PCG64, seed below), computed with cv2
(opencv-python-headless or opencv-contrib-python-headless from PyPI; the version is recorded):
- "resize": float32 HxWx3 images and `cv2.resize(im, None, None, fx=s, fy=s,
  interpolation=cv2.INTER_LINEAR)`, for shrinking and enlarging scales;
- "prep": uint8 RGB images through Detectron's `prep_im_for_blob` as `_get_image_blob` calls
  it: RGB to BGR (cv2.imread's order), mirrored when flipped, float32 minus the float64
  PIXEL_MEANS, the scale rule (`target / min(H, W)` unless `round(scale * max(H, W)) >
  max_size`), cv2.resize. Small targets keep the file small; one case hits the max-size rule
  and one a half-pixel output size (10.5, rounded to even).

Run from the repository root with a Python that has numpy and cv2:
    python3 data-scripts/make_resize_fixtures.py
"""
import json
import os

import cv2
import numpy as np

OUT = os.path.join("tests", "fixtures", "detection", "resize.json")
SEED = 5
PIXEL_MEANS = np.array([[[102.9801, 115.9465, 122.7717]]])


def prep_im_for_blob(im, target, max_size):
    """Detectron's prep_im_for_blob on a BGR uint8 image."""
    im = im.astype(np.float32, copy=False)
    im -= PIXEL_MEANS
    short, long = min(im.shape[:2]), max(im.shape[:2])
    scale = float(target) / float(short)
    if np.round(scale * long) > max_size:
        scale = float(max_size) / float(long)
    return cv2.resize(im, None, None, fx=scale, fy=scale, interpolation=cv2.INTER_LINEAR), scale


def flat(a):
    """float32 values as their shortest decimal (parsed back, they round to the same f32)."""
    return [float(str(v)) for v in np.asarray(a, dtype=np.float32).ravel()]


def main():
    rng = np.random.default_rng(SEED)
    resize = []
    for h, w, s in [(7, 5, 1.6), (5, 9, 0.37), (12, 9, 600 / 338), (6, 7, 2.5), (9, 7, 0.6),
                    (20, 14, 0.37), (4, 4, 3.0)]:
        src = (rng.uniform(0, 255, (h, w, 3)) - 120).astype(np.float32)
        out = cv2.resize(src, None, None, fx=s, fy=s, interpolation=cv2.INTER_LINEAR)
        resize.append({"height": h, "width": w, "scale": s, "src": flat(src),
                       "out_height": out.shape[0], "out_width": out.shape[1], "out": flat(out)})
    prep = []
    for h, w, target, max_size, flipped in [(7, 10, 12, 15, False), (7, 10, 12, 15, True),
                                            (9, 6, 10, 30, False), (8, 8, 5, 30, True)]:
        rgb = rng.integers(0, 256, (h, w, 3), dtype=np.uint8)
        bgr = rgb[:, :, ::-1]
        if flipped:
            bgr = bgr[:, ::-1]
        out, scale = prep_im_for_blob(np.ascontiguousarray(bgr), target, max_size)
        prep.append({"height": h, "width": w, "target": target, "max_size": max_size,
                     "flipped": flipped, "rgb": [int(v) for v in rgb.ravel()], "scale": scale,
                     "out_height": out.shape[0], "out_width": out.shape[1], "out": flat(out)})
    os.makedirs(os.path.dirname(OUT), exist_ok=True)
    with open(OUT, "w") as f:
        json.dump({"seed": SEED, "cv2": cv2.__version__, "resize": resize, "prep": prep}, f)
    for p in prep:
        print(f"prep {p['height']}x{p['width']} -> {p['out_height']}x{p['out_width']} "
              f"(scale {p['scale']:.4f})")
    print("wrote", OUT, os.path.getsize(OUT), "bytes")


if __name__ == "__main__":
    main()
