#!/usr/bin/env python3
"""Write the RoI op parity fixtures ops/tests/fixtures/roi/{roi_pool,roi_align}.npz.

Derived fixtures: torchvision's CPU kernels (torchvision.ops.roi_pool, the same arithmetic as
Detectron's RoIPoolF, and torchvision.ops.roi_align with aligned False = Caffe2 / Detectron and
True = detectron2's ROIAlignV2, sampling_ratio 0 = adaptive and 2), forward and backward, in
float32, on small random maps (N = 2 images) with random boxes and the edge cases: boxes partly
and wholly outside the map, corners that scale to exactly .5 (rounded away from zero by
RoIPool), inverted (x2 < x1) and zero-size boxes, tiny and huge boxes, bins that fall outside
the map (empty for RoIPool), and a map with exact ties (the first maximum takes the gradient).

Each case `k` stores, in float32:
  k.x       the map, N x C x H x W
  k.rois    R x 5 rows (batch, x1, y1, x2, y2) in image pixels
  k.params  RoIPool: (ph, pw, spatial_scale); RoIAlign: (ph, pw, spatial_scale,
            sampling_ratio, aligned)
  k.y       the op's output, R x C x ph x pw
  k.dy      a seeded upstream gradient of y
  k.dx      torchvision's gradient with respect to x of sum(y * dy)

Needs torch and torchvision. Run from the repository root:
    python3 data-scripts/make_roi_fixtures.py
"""
import os

import numpy as np
import torch
from torchvision.ops import roi_align, roi_pool

OUT = os.path.join(os.path.dirname(__file__), "..", "ops", "tests", "fixtures", "roi")


def boxes(gen, n_random, image_h, image_w, n_images, edges=True):
    """Random boxes over an image of image_h x image_w pixels, then the edge cases (or only
    the huge box and the whole image)."""
    rows = []
    for _ in range(n_random):
        x1, x2 = sorted(torch.rand(2, generator=gen).tolist())
        y1, y2 = sorted(torch.rand(2, generator=gen).tolist())
        rows.append([x1 * image_w, y1 * image_h, x2 * image_w, y2 * image_h])
    w, h = image_w, image_h
    rows += [
        [-0.3 * w, -0.2 * h, 0.4 * w, 0.5 * h],  # partly outside, top left
        [0.6 * w, 0.7 * h, 1.4 * w, 1.3 * h],  # partly outside, bottom right
        [1.2 * w, 1.1 * h, 1.6 * w, 1.5 * h],  # wholly outside
        [-0.9 * w, -0.8 * h, -0.2 * w, -0.1 * h],  # wholly outside, negative
        [0.7 * w, 0.6 * h, 0.3 * w, 0.2 * h],  # inverted
        [0.5 * w, 0.5 * h, 0.5 * w, 0.5 * h],  # zero size
        [0.41 * w, 0.37 * h, 0.43 * w, 0.40 * h],  # tiny
        [-3.0 * w, -2.0 * h, 4.0 * w, 3.0 * h],  # huge
        [0.0, 0.0, w - 1.0, h - 1.0],  # the whole image
    ]
    if not edges:
        rows = rows[:n_random] + rows[-2:]
    out = torch.tensor(rows, dtype=torch.float32)
    batch = torch.randint(0, n_images, (len(rows), 1), generator=gen).float()
    return torch.cat([batch, out], 1)


def half_boxes(scale, n_images):
    """Corners that scale to exactly k + 0.5, positive and negative."""
    s = 1.0 / scale
    rows = [[0, 2.5 * s, 1.5 * s, 6.5 * s, 4.5 * s], [n_images - 1, -1.5 * s, -0.5 * s, 3.5 * s, 7.5 * s]]
    return torch.tensor(rows, dtype=torch.float32)


def run(op, x, rois, dy, **kw):
    x = x.clone().requires_grad_(True)
    y = op(x, rois, **kw)
    y.backward(dy)
    return y.detach(), x.grad.detach()


def save(name, cases):
    arrays = {}
    for k, case in enumerate(cases):
        for key, value in case.items():
            arrays[f"{k}.{key}"] = np.ascontiguousarray(value.numpy().astype(np.float32))
    path = os.path.join(OUT, name)
    np.savez(path, **arrays)
    print(f"wrote {path}: {len(cases)} cases, {os.path.getsize(path)} bytes")


def main():
    torch.set_num_threads(1)
    gen = torch.Generator().manual_seed(13)
    os.makedirs(OUT, exist_ok=True)

    # (N, C, H, W, output, scale, ties); the 14 x 14 case (the protocol's) has fewer boxes.
    pool_shapes = [
        (2, 2, 7, 9, (3, 4), 0.25, False),
        (2, 2, 9, 13, (7, 7), 1 / 16, False),
        (2, 2, 8, 11, (2, 5), 0.5, True),
        (2, 1, 9, 13, (14, 14), 1 / 16, False),
    ]
    cases = []
    for n, c, h, w, output, scale, ties in pool_shapes:
        x = torch.randn(n, c, h, w, generator=gen)
        if ties:
            x = torch.round(x)  # a few distinct values: many exact ties in each bin
        edges = output != (14, 14)
        rois = torch.cat([boxes(gen, 3, h / scale, w / scale, n, edges), half_boxes(scale, n)])
        y_shape = (rois.shape[0], c) + output
        dy = torch.randn(y_shape, generator=gen)
        y, dx = run(roi_pool, x, rois, dy, output_size=output, spatial_scale=scale)
        params = torch.tensor([output[0], output[1], scale])
        cases.append(dict(x=x, rois=rois, params=params, y=y, dy=dy, dx=dx))
    save("roi_pool.npz", cases)

    # (N, C, H, W, output, scale, sampling_ratio, aligned)
    align_shapes = [
        (2, 2, 7, 9, (3, 4), 0.25, 0, False),
        (2, 2, 7, 9, (3, 4), 0.25, 0, True),
        (2, 2, 7, 9, (3, 4), 0.25, 2, False),
        (2, 2, 7, 9, (3, 4), 0.25, 2, True),
        (2, 1, 9, 13, (7, 7), 1 / 16, 0, False),
        (2, 2, 10, 12, (2, 3), 0.5, 2, True),
    ]
    cases = []
    for n, c, h, w, output, scale, ratio, aligned in align_shapes:
        x = torch.randn(n, c, h, w, generator=gen)
        rois = torch.cat([boxes(gen, 3, h / scale, w / scale, n), half_boxes(scale, n)])
        dy = torch.randn((rois.shape[0], c) + output, generator=gen)
        y, dx = run(roi_align, x, rois, dy, output_size=output, spatial_scale=scale,
                    sampling_ratio=ratio, aligned=aligned)
        params = torch.tensor([output[0], output[1], scale, ratio, float(aligned)])
        cases.append(dict(x=x, rois=rois, params=params, y=y, dy=dy, dx=dx))
    save("roi_align.npz", cases)


if __name__ == "__main__":
    main()
