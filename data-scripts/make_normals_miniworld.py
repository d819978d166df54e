#!/usr/bin/env python3
"""Render a small NYUv2-layout training set with exact depth for the normals task's CI test.

MiniWorld 2.1.0 (pyglet 1.5, headless through EGL) indoor worlds: rooms, corridors and mazes
with floors, walls, ceilings and boxes, so the surface normals in the camera frame vary (floor,
ceiling, walls at every yaw, box faces). EPISODES worlds, each a MiniWorld env from ENVS (in
turn) reset with its own seed; in each, FRAMES_PER_EPISODE agent poses drawn by MiniWorld's own
`place_agent` (a random room, position and heading, free of collisions) from that seed, and a
camera pitch drawn uniformly in +-PITCH_DEG degrees. The last --test-episodes worlds are the
test split, so no test view is a view of a training world.

Camera: MiniWorld's `render_obs` projection is gluPerspective(fov_y = 60 degrees, aspect W/H,
near 0.04 m, far 100 m) on a W x H frame buffer, square pixels, so fy = fx = (H / 2) /
tan(30 degrees) (103.92 px at 160 x 120) and, for 0-based pixel centres, cx = (W - 1) / 2,
cy = (H - 1) / 2. `render_depth` reads the 16-bit depth buffer back and inverts the projection,
which gives the planar eye-space depth z in metres (what NYU's `depths` hold), exact up to the
16-bit step (about 0.4 mm at 1 m, 1 cm at 5 m). Pixels at or beyond FAR_M (sky, where a world has
no ceiling) get rawDepths 0 and `depths` fills them from the nearest measured pixel.

Output (OUT):
  nyu_depth_v2_labeled.mat   MATLAB v7.3 layout (make_nyuv2_fixtures.write_v73): images
                             (N, 3, W, H) uint8, depths and rawDepths (N, W, H) float32.
  splits.mat                 MATLAB v5: trainNdxs / testNdxs (1-based, double columns); the
                             test frames are those of the last --test-episodes worlds.
  intrinsics.txt             fx fy cx cy of the frames (0-based pixel centres).

Deterministic for a given seed (the same arrays on every run: Mesa's software rasteriser).

Usage:
    python3 data-scripts/make_normals_miniworld.py [--out data/samples/normals-miniworld]
        [--episodes 24] [--test-episodes 6] [--frames-per-episode 4] [--seed 5]
        [--width 160] [--height 120]
"""

import argparse
import math
import os
import shutil
import sys

import numpy as np
import scipy.io

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from make_nyuv2_fixtures import fill, write_v73  # noqa: E402

# Indoor worlds with floors, walls and (most) ceilings; RoomObjects, PutNext, PickupObjects
# and CollectHealth add boxes and other objects.
ENVS = [
    "MiniWorld-OneRoom-v0",
    "MiniWorld-FourRooms-v0",
    "MiniWorld-ThreeRooms-v0",
    "MiniWorld-RoomObjects-v0",
    "MiniWorld-MazeS3-v0",
    "MiniWorld-PutNext-v0",
    "MiniWorld-Hallway-v0",
    "MiniWorld-TMaze-v0",
    "MiniWorld-PickupObjects-v0",
    "MiniWorld-YMaze-v0",
    "MiniWorld-WallGap-v0",
    "MiniWorld-CollectHealth-v0",
]
FOV_Y_DEG = 60.0
PITCH_DEG = 10.0
FAR_M = 50.0


def render(episodes, per_episode, seed, width, height):
    """[(episode, RGB HxWx3 uint8, depth HxW float32 metres)] over `episodes` worlds."""
    import pyglet

    pyglet.options["headless"] = True
    import gymnasium as gym
    import miniworld  # noqa: F401  (registers the MiniWorld-* envs)

    rng = np.random.default_rng(seed)
    frames = []
    for e in range(episodes):
        env = gym.make(ENVS[e % len(ENVS)], obs_width=width, obs_height=height)
        env.reset(seed=int(rng.integers(2**31)))
        world = env.unwrapped
        if world.agent.cam_fov_y != FOV_Y_DEG:
            sys.exit(f"error: {ENVS[e % len(ENVS)]} has fov_y {world.agent.cam_fov_y}")
        for _ in range(per_episode):
            world.entities.remove(world.agent)  # place_agent appends it again
            world.place_agent()
            world.agent.cam_pitch = float(rng.uniform(-PITCH_DEG, PITCH_DEG))
            rgb = np.array(world.render_obs(), dtype=np.uint8)
            z = np.array(world.render_depth()[..., 0], dtype=np.float32)
            frames.append((e, rgb, z))
        env.close()
    return frames


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--out", default="data/samples/normals-miniworld")
    ap.add_argument("--episodes", type=int, default=24)
    ap.add_argument("--test-episodes", type=int, default=6)
    ap.add_argument("--frames-per-episode", type=int, default=4)
    ap.add_argument("--seed", type=int, default=5)
    ap.add_argument("--width", type=int, default=160)
    ap.add_argument("--height", type=int, default=120)
    args = ap.parse_args()
    if not 0 < args.test_episodes < args.episodes:
        sys.exit("error: --test-episodes must lie strictly between 0 and --episodes")
    frames = render(args.episodes, args.frames_per_episode, args.seed, args.width, args.height)
    episode = np.array([f[0] for f in frames])
    rgbs = np.stack([f[1] for f in frames])
    raws = np.stack([np.where(f[2] < FAR_M, f[2], 0.0) for f in frames]).astype(np.float32)
    if (raws > 0).mean() < 0.5:
        sys.exit("error: fewer than half the pixels have a depth; check the EGL rendering")
    fills = np.stack([fill(r) for r in raws]).astype(np.float32)
    out = args.out
    if os.path.isdir(out):
        shutil.rmtree(out)
    os.makedirs(out)
    write_v73(os.path.join(out, "nyu_depth_v2_labeled.mat"), {
        "images": (np.ascontiguousarray(rgbs.transpose(0, 3, 2, 1)), "uint8"),
        "depths": (np.ascontiguousarray(fills.transpose(0, 2, 1)), "single"),
        "rawDepths": (np.ascontiguousarray(raws.transpose(0, 2, 1)), "single"),
    })
    idx = np.arange(1, len(frames) + 1, dtype=np.float64)
    test = episode >= args.episodes - args.test_episodes
    scipy.io.savemat(os.path.join(out, "splits.mat"),
                     {"trainNdxs": idx[~test, None], "testNdxs": idx[test, None]})
    h, w = rgbs.shape[1:3]
    f = (h / 2) / math.tan(math.radians(FOV_Y_DEG / 2))
    with open(os.path.join(out, "intrinsics.txt"), "w") as fh:
        fh.write(f"{f!r} {f!r} {(w - 1) / 2} {(h - 1) / 2}\n")
    print(f"wrote {out}: {len(frames)} frames of {h}x{w} ({int((~test).sum())} train), "
          f"{int((raws > 0).sum())} measured depths, focal {f:.4f} px")


if __name__ == "__main__":
    main()
