#!/usr/bin/env python3
"""Reference CIE Lab of 8-bit sRGB images, for tests/colorization_colour.rs.

Writes <out>/<stem>_lab.npy (height x width x 3, float64: L, a, b) for every image given.
The conversion is scikit-image's rgb2lab (D65, 2-degree observer) written out in numpy with
scikit-image's constants, so the test runs where only data-scripts/requirements.txt is
installed (scikit-image is not in it). --check-skimage also runs scikit-image's own rgb2lab
on each image and fails unless the two agree to 1e-9: run it once where scikit-image is
installed to confirm the formulas (done with scikit-image 0.26.0 on
astronaut, chelsea, coffee, motorcycle_left: max difference 3.3e-13).
"""

import argparse
from pathlib import Path

import numpy as np
from PIL import Image

# Linear sRGB -> XYZ (skimage.color.colorconv.xyz_from_rgb).
XYZ_FROM_RGB = np.array(
    [
        [0.412453, 0.357580, 0.180423],
        [0.212671, 0.715160, 0.072169],
        [0.019334, 0.119193, 0.950227],
    ]
)
# D65 reference white, 2-degree observer.
D65_WHITE = np.array([0.95047, 1.0, 1.08883])


def rgb2lab(rgb8):
    """Lab of an H x W x 3 uint8 sRGB array (scikit-image's formulas and thresholds)."""
    c = rgb8.astype(np.float64) / 255.0
    lin = np.where(c > 0.04045, ((c + 0.055) / 1.055) ** 2.4, c / 12.92)
    t = (lin @ XYZ_FROM_RGB.T) / D65_WHITE
    f = np.where(t > 0.008856, np.cbrt(t), 7.787 * t + 16.0 / 116.0)
    fx, fy, fz = f[..., 0], f[..., 1], f[..., 2]
    return np.stack([116.0 * fy - 16.0, 500.0 * (fx - fy), 200.0 * (fy - fz)], axis=-1)


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("images", nargs="+", type=Path, help="8-bit RGB images (PNG)")
    parser.add_argument("--out", type=Path, required=True, help="folder for the .npy files")
    parser.add_argument(
        "--check-skimage",
        action="store_true",
        help="also compare with scikit-image's rgb2lab (needs scikit-image installed)",
    )
    args = parser.parse_args()
    args.out.mkdir(parents=True, exist_ok=True)
    for path in args.images:
        rgb8 = np.asarray(Image.open(path).convert("RGB"))
        lab = rgb2lab(rgb8)
        if args.check_skimage:
            from skimage.color import rgb2lab as skimage_rgb2lab

            diff = np.abs(lab - skimage_rgb2lab(rgb8)).max()
            print(f"{path.name}: max |numpy - scikit-image| = {diff:.3g}")
            if diff > 1e-9:
                raise SystemExit(f"{path}: differs from scikit-image by {diff}")
        np.save(args.out / f"{path.stem}_lab.npy", lab)


if __name__ == "__main__":
    main()
