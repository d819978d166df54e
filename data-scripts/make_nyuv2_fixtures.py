#!/usr/bin/env python3
"""Write small fixtures in the exact layouts of the NYUv2 files users have (tests/nyuv2_readers.rs).

Three frames of H x W = 240 x 320 (half NYUv2's 480 x 640, to keep the fixture at a few MB;
the readers' 480 x 640 orientation check is exercised by bad/transposed.mat) with real or
rendered depth:
  000001  Middlebury 2014 "Motorcycle" (scikit-image's copy: motorcycle_left.png and the
          ground-truth disparity motorcycle_disp.npz, taken from the scikit-image 0.26.0 wheel
          that fetch_samples.sh keeps in data/samples/downloads/). Metric depth
          Z = f * B / (d + doffs) with the calibration of that pair (f = 994.978 px,
          cx = 311.193, cy = 254.877, doffs = 31.086, B = 193.001 mm); unknown disparity (inf)
          gives rawDepths 0. Then every second pixel of every second row (so f, cx and cy
          halve) and a centre crop of 240 x 320.
  000002, 000003  ViZDoom 1.3.2 frames at 320x240 (my_way_home, seeded, at the start spot after
          turning left for TURN_TICS and 2 * TURN_TICS tics), with the engine's
          8-bit depth buffer scaled to metres by DOOM_METRES_PER_LEVEL; level 0 gives
          rawDepths 0. Horizontal field of view 90 degrees: fx = fy = 160 px.
`depths` is `rawDepths` with its holes filled from the nearest measured pixel (a stand-in for
the toolbox's colorization in-painting).

Normals (a simple method, stated): back-project the filled depth with the frame's intrinsics
(0-based pixel centres, OpenCV camera frame x right, y down, z forward), take central
differences along rows and columns, n = normalise(dP/dv x dP/du), turned to face the camera
(n . P < 0), then expressed in the codebook's frame (x, -y, -z): +z toward the viewer. A pixel
is valid when it and its four neighbours have measured depth and it is not on the border.
Invalid pixels hold (0, 0, 0).

Output (OUT):
  nyu_depth_v2_labeled.mat   MATLAB v7.3: HDF5 behind a 512-byte user block whose first bytes
                             are MATLAB's header text; `images` (N, 3, W, H) uint8, `depths`
                             and `rawDepths` (N, W, H) float32 (the transposed layout h5py
                             shows for MATLAB's column-major HxWx3xN), MATLAB_class attributes,
                             chunked per image and gzip-compressed as MATLAB writes them.
  splits.mat                 MATLAB v5: trainNdxs [1; 3], testNdxs [2] (1-based, double columns).
  all_normals.pklz           gzip pickle (protocol 2, as Python 2 wrote it) of a dict:
                             all_normals (N, H, W, 3) float32, all_valid_depth_masks (N, H, W)
                             float32, all_filenames ['000001', ...] (FAIR's converter's names).
  normals_mat/000001.mat ... per-image MATLAB v5 (compressed): nx, ny, nz (H x W single),
                             depthValid (H x W double).
  normals_png/00001.png ...  Ladicky's PNG form: RGB uint8 = round((n + 1) / 2 * 255), with
  masks/0000.png ...         Eigen's separate masks (0-based names; 255 valid, 0 not).
  expected.h5                what a reader must return, in the usual orientation: images
                             (N, H, W, 3) uint8, depths and raw_depths (N, H, W) float32,
                             normals (N, H, W, 3) float32, valid (N, H, W) uint8, labels
                             (N, H, W) uint8:
                             scikit-learn's pairwise_distances_argmin of every valid normal
                             against vocab40's centres, 255 where invalid (FAIR's make_SN_labels).
  bad/                       files a reader must refuse: transposed.mat (480 x 640 images
                             stored (N, 3, H, W)), no_depths.mat (no `depths`), wrong_rank.mat (`images`
                             of rank 3), non_unit.pklz (a valid normal of length 0.5),
                             non_unit_mat/000002.mat (the same as a per-image file).

Runs in a few seconds; the same arguments give the same arrays (ViZDoom is seeded).

Usage:
    python3 data-scripts/make_nyuv2_fixtures.py [--out data/samples/nyuv2-fixture]
        [--vocab tests/fixtures/normals/vocab40.mat] [--seed 7]
"""

import argparse
import contextlib
import gzip
import io
import os
import pickle
import shutil
import sys
import tempfile
import zipfile

import h5py
import numpy as np
import scipy.io
import scipy.ndimage
from PIL import Image
from sklearn.metrics import pairwise_distances_argmin

H, W = 240, 320
SKIMAGE_WHEEL = "data/samples/downloads/scikit_image-0.26.0-cp311-cp311-manylinux_2_24_x86_64.manylinux_2_28_x86_64.whl"
MOTORCYCLE = dict(f=994.978, cx=311.193, cy=254.877, doffs=31.086, baseline_mm=193.001)
DOOM_METRES_PER_LEVEL = 0.1
TURN_TICS = 12
DOOM_FOCAL = 160.0
MATLAB_HEADER = (b"MATLAB 7.3 MAT-file, Platform: GLNXA64, Created on: Mon Jan  1 00:00:00 2024 "
                 b"HDF5 schema 1.00 .")


def motorcycle():
    """RGB (H, W, 3) uint8, raw metric depth (H, W) float32 (0 unknown), intrinsics."""
    if not os.path.isfile(SKIMAGE_WHEEL):
        sys.exit(f"error: {SKIMAGE_WHEEL} is missing: run data-scripts/fetch_samples.sh first")
    with zipfile.ZipFile(SKIMAGE_WHEEL) as z:
        disp = np.load(io.BytesIO(z.read("skimage/data/motorcycle_disp.npz")))["arr_0"]
        rgb = np.asarray(Image.open(io.BytesIO(z.read("skimage/data/motorcycle_left.png"))).convert("RGB"))
    c = MOTORCYCLE
    disp = disp.astype(np.float64)
    with np.errstate(invalid="ignore", divide="ignore"):
        z = c["f"] * c["baseline_mm"] / (disp + c["doffs"]) / 1000.0
    z[~np.isfinite(disp)] = 0.0
    z, rgb = z[::2, ::2], rgb[::2, ::2]
    top, left = (z.shape[0] - H) // 2, (z.shape[1] - W) // 2
    z, rgb = z[top:top + H, left:left + W], rgb[top:top + H, left:left + W]
    f = c["f"] / 2
    return rgb, z.astype(np.float32), (f, f, c["cx"] / 2 - left, c["cy"] / 2 - top)


def doom_frames(count, seed):
    """`count` ViZDoom frames: (RGB, raw depth in metres, intrinsics) each."""
    import vizdoom as vzd

    frames = []
    with tempfile.TemporaryDirectory() as work, contextlib.chdir(work):
        game = vzd.DoomGame()
        game.load_config(os.path.join(vzd.scenarios_path, "my_way_home.cfg"))
        game.set_window_visible(False)
        game.set_sound_enabled(False)
        game.set_depth_buffer_enabled(True)
        game.set_render_hud(False)
        game.set_render_weapon(False)
        game.set_render_messages(False)
        game.set_screen_format(vzd.ScreenFormat.RGB24)
        game.set_screen_resolution(vzd.ScreenResolution.RES_320X240)
        game.set_mode(vzd.Mode.PLAYER)
        game.set_seed(seed)
        game.init()
        game.new_episode()
        turn_left = [1] + [0] * (game.get_available_buttons_size() - 1)
        for _ in range(count):
            game.make_action(turn_left, TURN_TICS)
            state = game.get_state()
            rgb = np.array(state.screen_buffer, dtype=np.uint8)
            z = state.depth_buffer.astype(np.float32) * DOOM_METRES_PER_LEVEL
            frames.append((rgb, z, (DOOM_FOCAL, DOOM_FOCAL, (W - 1) / 2, (H - 1) / 2)))
        game.close()
    return frames


def fill(raw):
    """`raw` with each unmeasured pixel given its nearest measured pixel's depth."""
    _, (iy, ix) = scipy.ndimage.distance_transform_edt(raw == 0, return_indices=True)
    return raw[iy, ix]


def normals(depth, raw, intrinsics):
    """Unit normals (H, W, 3) float32 in the codebook frame and the valid mask (H, W) bool."""
    fx, fy, cx, cy = intrinsics
    v, u = np.mgrid[0:H, 0:W].astype(np.float64)
    z = depth.astype(np.float64)
    p = np.stack([(u - cx) * z / fx, (v - cy) * z / fy, z], axis=-1)
    du = np.zeros_like(p)
    dv = np.zeros_like(p)
    du[:, 1:-1] = p[:, 2:] - p[:, :-2]
    dv[1:-1] = p[2:] - p[:-2]
    n = np.cross(dv, du)
    length = np.linalg.norm(n, axis=-1)
    measured = raw > 0
    valid = np.zeros((H, W), bool)
    valid[1:-1, 1:-1] = (measured[1:-1, 1:-1] & measured[:-2, 1:-1] & measured[2:, 1:-1]
                         & measured[1:-1, :-2] & measured[1:-1, 2:])
    valid &= length > 1e-12
    n = np.where(valid[..., None], n / np.where(length > 0, length, 1)[..., None], 0.0)
    n = np.where((np.sum(n * p, axis=-1) > 0)[..., None], -n, n)
    n = n * np.array([1.0, -1.0, -1.0])
    n[~valid] = 0.0
    return n.astype(np.float32), valid


def codebook(vocab_path):
    """vocab40's 40x3 centres, read as FAIR's code reads them."""
    return scipy.io.loadmat(vocab_path)["vocabs"][0][0]["normals"][0][0].astype(np.float64)


def write_v73(path, datasets):
    """An HDF5 file behind a 512-byte user block holding MATLAB's v7.3 header, as MATLAB writes.

    `datasets` maps a name to (array as h5py stores it, MATLAB class)."""
    with h5py.File(path, "w", userblock_size=512, libver="earliest") as f:
        for name, (array, matlab_class) in datasets.items():
            chunks = (1,) + array.shape[1:] if array.ndim > 1 else None
            d = f.create_dataset(name, data=array, chunks=chunks, compression="gzip",
                                 compression_opts=3)
            d.attrs["MATLAB_class"] = np.bytes_(matlab_class)
    header = MATLAB_HEADER.ljust(116, b" ") + bytes(8) + (0x0200).to_bytes(2, "little") + b"IM"
    with open(path, "r+b") as f:
        f.write(header.ljust(512, b"\0"))


def write_pklz(path, all_normals, all_masks, names):
    with open(path, "wb") as raw, gzip.GzipFile(fileobj=raw, mode="wb", mtime=0) as f:
        pickle.dump({"all_normals": all_normals, "all_valid_depth_masks": all_masks,
                     "all_filenames": list(names)}, f, protocol=2)


def write_normals_mat(path, n, valid):
    scipy.io.savemat(path, {"nx": n[..., 0], "ny": n[..., 1], "nz": n[..., 2],
                            "depthValid": valid.astype(np.float64)}, do_compression=True)


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--out", default="data/samples/nyuv2-fixture")
    ap.add_argument("--vocab", default="tests/fixtures/normals/vocab40.mat",
                    help="vocab40.mat (default: the copy the repository keeps as test data)")
    ap.add_argument("--seed", type=int, default=7)
    args = ap.parse_args()
    vocab = args.vocab
    if not os.path.isfile(vocab):
        sys.exit(f"error: {vocab} not found: pass --vocab PATH to a vocab40.mat")
    centres = codebook(vocab)

    frames = [motorcycle()] + doom_frames(2, args.seed)
    rgbs, raws, fills, norms, valids = [], [], [], [], []
    for rgb, raw, intrinsics in frames:
        depth = fill(raw)
        n, valid = normals(depth, raw, intrinsics)
        rgbs.append(rgb)
        raws.append(raw)
        fills.append(depth)
        norms.append(n)
        valids.append(valid)
    rgbs, raws, fills = np.stack(rgbs), np.stack(raws), np.stack(fills)
    norms, valids = np.stack(norms), np.stack(valids)
    names = [f"{i + 1:06d}" for i in range(len(frames))]

    out = args.out
    if os.path.isdir(out):
        shutil.rmtree(out)
    for sub in ("normals_mat", "normals_png", "masks", "bad/non_unit_mat"):
        os.makedirs(os.path.join(out, sub))

    # MATLAB's HxWx3xN (column-major) is what h5py shows as (N, 3, W, H).
    write_v73(os.path.join(out, "nyu_depth_v2_labeled.mat"), {
        "images": (np.ascontiguousarray(rgbs.transpose(0, 3, 2, 1)), "uint8"),
        "depths": (np.ascontiguousarray(fills.transpose(0, 2, 1)), "single"),
        "rawDepths": (np.ascontiguousarray(raws.transpose(0, 2, 1)), "single"),
    })
    scipy.io.savemat(os.path.join(out, "splits.mat"),
                     {"trainNdxs": np.array([[1.0], [3.0]]), "testNdxs": np.array([[2.0]])})
    write_pklz(os.path.join(out, "all_normals.pklz"), norms, valids.astype(np.float32), names)

    for i, name in enumerate(names):
        write_normals_mat(os.path.join(out, "normals_mat", name + ".mat"), norms[i], valids[i])
        png = np.round((norms[i].astype(np.float64) + 1) / 2 * 255).astype(np.uint8)
        png[~valids[i]] = 0
        Image.fromarray(png).save(os.path.join(out, "normals_png", f"{i + 1:05d}.png"))
        Image.fromarray(valids[i].astype(np.uint8) * 255).save(os.path.join(out, "masks", f"{i:04d}.png"))

    labels = np.full(valids.shape, 255, np.uint8)
    labels[valids] = pairwise_distances_argmin(norms[valids].astype(np.float64), centres)

    with h5py.File(os.path.join(out, "expected.h5"), "w") as f:
        for key, value in [("images", rgbs), ("depths", fills), ("raw_depths", raws),
                           ("normals", norms), ("valid", valids.astype(np.uint8)),
                           ("labels", labels)]:
            f.create_dataset(key, data=value, compression="gzip", compression_opts=3)
        f["names"] = np.array([n.encode() for n in names])

    # Files a reader must refuse, each with one fault.
    bad = os.path.join(out, "bad")
    small = lambda shape, dtype: np.zeros(shape, dtype)  # noqa: E731 (zeros compress to nothing)
    write_v73(os.path.join(bad, "transposed.mat"), {
        "images": (small((1, 3, 480, 640), np.uint8), "uint8"),
        "depths": (small((1, 480, 640), np.float32), "single"),
        "rawDepths": (small((1, 480, 640), np.float32), "single"),
    })
    write_v73(os.path.join(bad, "no_depths.mat"), {
        "images": (small((1, 3, W, H), np.uint8), "uint8"),
        "rawDepths": (small((1, W, H), np.float32), "single"),
    })
    write_v73(os.path.join(bad, "wrong_rank.mat"), {
        "images": (small((3, W, H), np.uint8), "uint8"),
        "depths": (small((1, W, H), np.float32), "single"),
        "rawDepths": (small((1, W, H), np.float32), "single"),
    })
    # A 16 x 16 patch of a Doom frame's normals (planar, so they compress), one of them halved.
    short = norms[1:2, 100:116, 100:116].copy()
    mask = valids[1:2, 100:116, 100:116]
    ys, xs = np.nonzero(mask[0])
    short[0, ys[0], xs[0]] *= 0.5
    write_pklz(os.path.join(bad, "non_unit.pklz"), short, mask.astype(np.float32), names[1:2])
    write_normals_mat(os.path.join(bad, "non_unit_mat", names[1] + ".mat"), short[0], mask[0])
    print(f"wrote {out}: {len(names)} frames, {int(valids.sum())} valid normals")


if __name__ == "__main__":
    main()
