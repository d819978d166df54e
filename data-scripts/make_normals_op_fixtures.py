#!/usr/bin/env python3
"""Write the normals decoder's op parity fixtures ops/tests/fixtures/normals_ops/*.npz.

Derived fixtures: PyTorch's CPU kernels for the two resampling ops of the PSPNet decoder,
forward and backward, on seeded random maps (torch.Generator, seed below):
- F.adaptive_avg_pool2d, bin [floor(i*In/Out), ceil((i+1)*In/Out)): the PPM's bins 1, 2, 3
  and 6 of a non-divisible 57 x 75 map (overlapping windows), a few odd sizes, outputs larger
  than the input (repeated cells), and a 1 x 1 output of a 2-D odd map;
- F.interpolate(mode="bilinear", size=..., align_corners=False and True): up and down by
  non-integer ratios (57x75 <-> 60x80), an 8x upsample (10x15 -> 80x120, the decoder's final
  upsample ratio, corners not aligned as the paper's code), HSZ's 8k + 1 sizes with corners
  aligned (7x9 -> 49x65), 1 x 1 outputs and inputs, a one-row map, and the same size (a
  copy).

Files: adaptive_avg_pool_{f32,f64}.npz and resize_bilinear_{f32,f64}.npz; the f64 files hold
the small cases only (computed by torch in float64). Each case `k` stores, in the file's type:
  k.x       the map, N x C x H x W (absent: the previous case's map)
  k.params  adaptive: (oh, ow); bilinear: (oh, ow, align_corners)
  k.y       the op's output
  k.dy      a seeded upstream gradient of y (absent: the previous case's)
  k.dx      torch's gradient with respect to x of sum(y * dy)
Sharing a map or a gradient between neighbouring cases keeps the files small.

Needs torch. Run from the repository root:
    python3 data-scripts/make_normals_op_fixtures.py
"""
import os

import numpy as np
import torch
import torch.nn.functional as F

OUT = os.path.join(os.path.dirname(__file__), "..", "ops", "tests", "fixtures", "normals_ops")
SEED = 14

# (N, C, H, W, outputs, flags): every output of one entry pools the same map.
NONE = [None]
POOL_LARGE = [(1, 1, 57, 75, [(1, 1), (2, 2), (3, 3), (6, 6)], NONE)]
POOL_SMALL = [
    (2, 3, 7, 5, [(3, 4), (5, 3), (1, 1)], NONE),
    (1, 2, 3, 3, [(6, 6), (4, 5)], NONE),
    (2, 2, 13, 11, [(6, 6), (3, 2), (13, 11)], NONE),
    (1, 1, 1, 9, [(1, 4), (3, 2)], NONE),
]
# (N, C, H, W, outputs, align_corners flags): each output is run with each flag (same dy).
BOTH = [False, True]
RESIZE_LARGE = [
    (1, 1, 57, 75, [(60, 80)], BOTH),
    (1, 1, 60, 80, [(57, 75)], BOTH),
    (1, 1, 10, 15, [(80, 120)], [False]),  # the paper's (NRM's) convention
    (1, 1, 7, 9, [(49, 65)], [True]),  # HSZ's: 8k + 1 sizes, corners aligned
]
RESIZE_SMALL = [
    (2, 3, 7, 5, [(11, 9), (4, 3), (7, 5), (1, 1), (1, 4)], BOTH),
    (1, 2, 1, 1, [(3, 4)], BOTH),
    (1, 2, 1, 6, [(5, 4)], BOTH),
    (1, 1, 6, 8, [(30, 40), (13, 17)], BOTH),
]


def pool(x, out, _):
    return F.adaptive_avg_pool2d(x, out)


def resize(x, out, align_corners):
    return F.interpolate(x, size=out, mode="bilinear", align_corners=align_corners)


def run(op, x, out, flag, dy):
    x = x.clone().requires_grad_(True)
    y = op(x, out, flag)
    y.backward(dy)
    return y.detach(), x.grad.detach()


def cases(op, shapes, dtype, gen):
    out = []
    for n, c, h, w, sizes, flags in shapes:
        x = torch.randn(n, c, h, w, generator=gen, dtype=torch.float64).to(dtype)
        first_x = True
        for size in sizes:
            dy = torch.randn((n, c) + size, generator=gen, dtype=torch.float64).to(dtype)
            first_dy = True
            for flag in flags:
                y, dx = run(op, x, size, flag, dy)
                params = [size[0], size[1]] + ([] if flag is None else [float(flag)])
                case = dict(params=torch.tensor(params, dtype=dtype), y=y, dx=dx)
                if first_x:
                    case["x"] = x
                if first_dy:
                    case["dy"] = dy
                first_x = first_dy = False
                out.append(case)
    return out


def save(name, cases, dtype):
    arrays = {}
    for k, case in enumerate(cases):
        for key, value in case.items():
            arrays[f"{k}.{key}"] = np.ascontiguousarray(value.numpy().astype(dtype))
    path = os.path.join(OUT, name)
    np.savez(path, **arrays)
    print(f"wrote {path}: {len(cases)} cases, {os.path.getsize(path)} bytes")


def main():
    torch.set_num_threads(1)
    os.makedirs(OUT, exist_ok=True)
    for suffix, dtype, np_dtype in [("f32", torch.float32, np.float32),
                                    ("f64", torch.float64, np.float64)]:
        gen = torch.Generator().manual_seed(SEED)
        large = suffix == "f32"
        shapes = (POOL_LARGE if large else []) + POOL_SMALL
        save(f"adaptive_avg_pool_{suffix}.npz", cases(pool, shapes, dtype, gen), np_dtype)
        shapes = (RESIZE_LARGE if large else []) + RESIZE_SMALL
        save(f"resize_bilinear_{suffix}.npz", cases(resize, shapes, dtype, gen),
             np_dtype)
    print(f"torch {torch.__version__}")


if __name__ == "__main__":
    main()
