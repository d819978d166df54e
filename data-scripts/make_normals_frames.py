#!/usr/bin/env python3
"""Render a small NYUv2-layout training set with exact depth for the normals task's CI test.

ViZDoom 1.3.2 (my_way_home, seeded) frames along a seeded random walk (turn left or right,
step forward), rendered at 320 x 240 and subsampled to 160 x 120 (every second pixel of every
second row; the 90-degree horizontal field of view gives fx = fy = 80 px at 160 x 120). Depth
is the engine's 8-bit depth buffer times DOOM_METRES_PER_LEVEL = 0.1 m per level (the same
scale as make_nyuv2_fixtures.py); level 0 gives rawDepths 0, and `depths` fills those holes
from the nearest measured pixel. The depth is exact up to that quantisation (it is the
renderer's own), so normals computed from it (the task's `from_depth` source, a window PCA)
are the ground truth of the frames up to the 8-bit steps. Those steps (0.1 m) would make most
windows fronto-parallel, so `depths` is the filled depth smoothed by a Gaussian of
DEPTH_SIGMA = 4 px at 320 x 240 before subsampling (a staircase of 0.1 m steps becomes its
slope); `rawDepths` keeps the engine's quantised values.

Output (OUT):
  nyu_depth_v2_labeled.mat   MATLAB v7.3 layout (make_nyuv2_fixtures.write_v73): images
                             (N, 3, W, H) uint8, depths and rawDepths (N, W, H) float32.
  splits.mat                 MATLAB v5: trainNdxs = the first TRAIN frames, testNdxs the rest
                             (1-based, double columns). Test frames come from later in the walk.
  intrinsics.txt             fx fy cx cy of the 160 x 120 frames.

Usage:
    python3 data-scripts/make_normals_frames.py [--out data/samples/normals-frames]
        [--frames 96] [--train 72] [--seed 11]
"""

import argparse
import contextlib
import os
import shutil
import sys
import tempfile

import numpy as np
import scipy.io
import scipy.ndimage

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from make_nyuv2_fixtures import DOOM_METRES_PER_LEVEL, fill, write_v73  # noqa: E402

# Tics per action: turns of about 22 degrees, steps of a few metres of walk.
TURN_TICS = 6
STEP_TICS = 10
DEPTH_SIGMA = 4.0


def walk(count, seed):
    """`count` (RGB 240x320x3 uint8, raw depth 240x320 float32 metres) along a random walk."""
    import vizdoom as vzd

    rng = np.random.default_rng(seed)
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
        game.set_episode_timeout(1_000_000)
        game.set_mode(vzd.Mode.PLAYER)
        game.set_seed(seed)
        game.init()
        game.new_episode()
        # my_way_home's buttons: TURN_LEFT, TURN_RIGHT, MOVE_FORWARD, ...
        n = game.get_available_buttons_size()
        action = lambda i: [1 if j == i else 0 for j in range(n)]  # noqa: E731
        while len(frames) < count:
            if game.is_episode_finished():
                game.new_episode()
            r = rng.random()
            if r < 0.3:
                game.make_action(action(0), TURN_TICS)
            elif r < 0.6:
                game.make_action(action(1), TURN_TICS)
            else:
                game.make_action(action(2), STEP_TICS)
            state = game.get_state()
            if state is None:
                continue
            rgb = np.array(state.screen_buffer, dtype=np.uint8)
            z = state.depth_buffer.astype(np.float32) * DOOM_METRES_PER_LEVEL
            frames.append((rgb, z))
        game.close()
    return frames


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--out", default="data/samples/normals-frames")
    ap.add_argument("--frames", type=int, default=96)
    ap.add_argument("--train", type=int, default=72)
    ap.add_argument("--seed", type=int, default=11)
    args = ap.parse_args()
    if not 0 < args.train < args.frames:
        sys.exit("error: --train must lie strictly between 0 and --frames")
    frames = walk(args.frames, args.seed)
    rgbs = np.stack([f[0][::2, ::2] for f in frames])
    raws = np.stack([f[1][::2, ::2] for f in frames])
    fills = np.stack([scipy.ndimage.gaussian_filter(fill(f[1]), DEPTH_SIGMA)[::2, ::2]
                      for f in frames]).astype(np.float32)
    out = args.out
    if os.path.isdir(out):
        shutil.rmtree(out)
    os.makedirs(out)
    write_v73(os.path.join(out, "nyu_depth_v2_labeled.mat"), {
        "images": (np.ascontiguousarray(rgbs.transpose(0, 3, 2, 1)), "uint8"),
        "depths": (np.ascontiguousarray(fills.transpose(0, 2, 1)), "single"),
        "rawDepths": (np.ascontiguousarray(raws.transpose(0, 2, 1)), "single"),
    })
    idx = np.arange(1, args.frames + 1, dtype=np.float64)
    scipy.io.savemat(os.path.join(out, "splits.mat"),
                     {"trainNdxs": idx[:args.train, None], "testNdxs": idx[args.train:, None]})
    h, w = rgbs.shape[1:3]
    # Pixel centres subsample as x' = x / 2: the 320-px frame's (319) / 2 centre halves again.
    with open(os.path.join(out, "intrinsics.txt"), "w") as f:
        f.write(f"{80.0} {80.0} {(2 * w - 1) / 4} {(2 * h - 1) / 4}\n")
    print(f"wrote {out}: {args.frames} frames of {h}x{w} ({args.train} train), "
          f"{int((raws > 0).sum())} measured depths")


if __name__ == "__main__":
    main()
