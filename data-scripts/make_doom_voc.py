#!/usr/bin/env python3
"""Render a small object-detection set in PASCAL VOC layout from ViZDoom (rendered, synthetic).

The frames are rendered by a real engine (ViZDoom 1.3.2, the ZDoom renderer, on the Freedoom
WADs its wheel ships); the boxes come from ViZDoom's labels buffer, which tags every pixel with
the object drawn there, so a box is the exact extent of an object's visible pixels. The data
are synthetic: rendered game frames, not photographs, with labels the engine computed.

Episodes. `--scenarios` lists ViZDoom configs with an optional map (`freedoom2:MAP04`,
`defend_the_line`); episode e plays scenario e mod len(scenarios) from a fresh
`new_episode()` with its own game seed (derived from --seed and e), with the `god` and
`notarget` cheats: the monsters ignore the player, so they keep their idle animation at
their own places and angles (the views vary, their poses little), and nothing is killed (no
corpses, no exploded barrels) nor ends the episode (a scenario that ends by itself, e.g. at
a pickup, starts a new episode with the next seed). The train episodes come first, then the
test episodes: the split is by episode, never one episode's frames in both.

Policy (seeded, scripted). For each frame: pick a class uniformly among the classes still
present in the level (ViZDoom's objects info), then one live object of it; pick a camera
spot 64 to 640 map units from it (320 for a medikit, 480 for a barrel: MAX_DISTANCE), in a
random direction or near another object's position, whose straight line to the object
crosses no solid wall or closed door, at least PLAYER_CLEARANCE from every wall and
impassable line, inside a sector tall enough for the player; `warp` there, walk and turn at
random for a few tics, then turn to face the object with a random offset of up to
+-AIM_JITTER degrees, and wait GAP_TICS between frames. A frame is kept when it holds at
least one non-difficult object of the classes and no object of any kind within MIN_DISTANCE
of the camera (a few huge texels fill such a frame); otherwise it is redrawn (at most
MAX_TRIES per frame). The player's weapon is not drawn. Consecutive frames are from different spots
and angles, so they are not near-duplicates.

Classes (CLASSES below): the Freedoom monsters zombieman, shotgunguy, imp and demon, the
exploding barrel, and the medikit (Medikit and Stimpack, the same first-aid case at two
sizes). Every other object (the player `DoomPlayer`, bullet puffs, blood, other items,
decorations) is not annotated.

Boxes. ViZDoom's label box (W x H) can be larger than what is visible of the object: parts of
the sprite it drew end up covered (e.g. by a nearer sprite drawn later); the labels buffer
holds what is finally visible. So the box written is the extent of the object's pixels in
the labels buffer (P pixels, w x h), and the engine's box serves to measure occlusion. Sizes
are scaled by s = (image height) / 240, so the rule is the same at every resolution:
  dropped    P < MIN_PIXELS * s^2, or min(w, h) < MIN_SIDE * s  (a few stray pixels)
  difficult  min(w, h) < DIFFICULT_SIDE * s, or P < DIFFICULT_PIXELS * s^2 (too small), or
             P < DIFFICULT_FILL * w h (a sliver seen past a wall or through a grate), or
             w h < DIFFICULT_VISIBLE * W H (mostly hidden by a nearer object), or the mean
             luma (BT.601, 0-255) of its visible pixels is below DIFFICULT_DARK (in a dark
             sector, all but black), as VOC marks objects too small, too occluded or too
             dark to recognise
  truncated  the box touches the image border (the object is cut by the frame)
Boxes are written as the devkit writes them: 1-based inclusive pixels, xmin = x + 1,
xmax = x + w for pixels in columns x .. x + w - 1.

Output (OUT):
  JPEGImages/<id>.jpg            the frame, RGB, JPEG quality 95 (no HUD, no messages)
  Annotations/<id>.xml           VOC XML: filename, size, objects (name, pose, truncated,
                                 difficult, bndbox)
  ImageSets/Main/{trainval,test}.txt and <class>_{trainval,test}.txt with the devkit's labels
                                 (1: a non-difficult object of the class, 0: difficult ones
                                 only, -1: none; lines "%s %2d")
  classes.txt                    the class names, one a line
Ids are <split>_<episode>_<frame>, e.g. trainval_003_011.

Determinism: the same arguments give the same files byte for byte (ViZDoom is seeded per
episode, the policy by --seed; Pillow's JPEG encoder is deterministic for one libjpeg). A
rerun into an OUT this script wrote first clears it; another non-empty OUT is refused.

Usage:
    python3 data-scripts/make_doom_voc.py --out data/doom-voc [--seed 0] [--train-images 150]
        [--test-images 75] [--resolution RES_320X240] [--scenarios freedoom2:MAP04,...]
"""

import argparse
import collections
import contextlib
import math
import os
import random
import shutil
import sys
import tempfile

import numpy as np
from PIL import Image

# VOC class name -> the ViZDoom object names it covers.
CLASSES = {
    "zombieman": ["Zombieman"],
    "shotgunguy": ["ShotgunGuy"],
    "imp": ["DoomImp"],
    "demon": ["Demon"],
    "barrel": ["ExplosiveBarrel"],
    "medikit": ["Medikit", "Stimpack"],
}
DEFAULT_SCENARIOS = ",".join("freedoom2:MAP%02d" % m for m in (1, 2, 4, 5, 6))

FRAMES_PER_EPISODE = 15
JPEG_QUALITY = 95
# Box rule (pixels at 240 rows; see the docstring).
MIN_PIXELS = 12
MIN_SIDE = 3
DIFFICULT_SIDE = 8
DIFFICULT_PIXELS = 60
DIFFICULT_FILL = 0.2
DIFFICULT_VISIBLE = 0.5
DIFFICULT_DARK = 5.0
LUMA = np.array([0.299, 0.587, 0.114])  # ITU-R BT.601 luma of RGB
# Policy (map units, degrees, tics).
CAMERA_DISTANCE = (64.0, 640.0)
# Nearer for the small classes, so that they are not mostly too small to count.
MAX_DISTANCE = {"barrel": 480.0, "medikit": 320.0}
PLAYER_CLEARANCE = 20.0
ANCHOR_JITTER = 32.0
MIN_DISTANCE = 64.0
PLAYER_HEIGHT = 56.0
AIM_JITTER = 25.0
WANDER_TICS = (0, 6)
GAP_TICS = 4
MAX_TRIES = 20
SPOT_TRIES = 60


@contextlib.contextmanager
def working_directory(path):
    """Run a block in another directory: ViZDoom writes _vizdoom.ini and _vizdoom/ where it
    starts."""
    cwd = os.getcwd()
    os.chdir(path)
    try:
        yield
    finally:
        os.chdir(cwd)


def parse_scenario(spec, vzd):
    """(config path, map or None) of `cfg[:MAP]`; cfg is a shipped scenario or a .cfg path."""
    name, _, doom_map = spec.partition(":")
    cfg = name if name.endswith(".cfg") else os.path.join(vzd.scenarios_path, name + ".cfg")
    if not os.path.isfile(cfg):
        shipped = sorted(f[:-4] for f in os.listdir(vzd.scenarios_path) if f.endswith(".cfg"))
        sys.exit(f"error: no ViZDoom scenario `{name}` ({cfg} does not exist); shipped: "
                 f"{', '.join(shipped)}")
    return cfg, doom_map or None


def make_game(vzd, cfg, doom_map, resolution, workdir):
    """A headless DoomGame on `cfg` with the labels, objects and sectors buffers on."""
    game = vzd.DoomGame()
    if not game.load_config(cfg):
        sys.exit(f"error: ViZDoom could not load {cfg}: check the file")
    game.set_window_visible(False)
    game.set_sound_enabled(False)
    game.set_audio_buffer_enabled(False)
    game.set_automap_buffer_enabled(False)
    game.set_depth_buffer_enabled(False)
    game.set_render_hud(False)
    game.set_render_messages(False)
    game.set_render_screen_flashes(False)
    game.set_render_weapon(False)  # the weapon sprite is drawn over the labels it would hide
    game.set_screen_format(vzd.ScreenFormat.RGB24)
    game.set_screen_resolution(resolution)
    game.set_labels_buffer_enabled(True)
    game.set_objects_info_enabled(True)
    game.set_sectors_info_enabled(True)
    game.set_available_buttons([vzd.Button.MOVE_FORWARD, vzd.Button.MOVE_BACKWARD,
                                vzd.Button.TURN_LEFT_RIGHT_DELTA])
    gv = vzd.GameVariable
    game.set_available_game_variables([gv.POSITION_X, gv.POSITION_Y, gv.ANGLE])
    game.set_episode_timeout(0)
    game.set_mode(vzd.Mode.PLAYER)
    game.add_game_args("+sv_cheats 1")
    if doom_map is not None:
        game.set_doom_map(doom_map)
    with working_directory(workdir):
        game.init()
    return game


class Level:
    """The walls and sectors of a map at the start of an episode, for picking camera spots."""

    def __init__(self, state):
        sides = collections.Counter()  # line -> how many sectors it bounds
        blocking, doors = set(), set()
        self.sectors = []
        for sector in state.sectors:
            edges = [(l.x1, l.y1, l.x2, l.y2) for l in sector.lines]
            self.sectors.append((sector.ceiling_height - sector.floor_height, edges))
            for l in sector.lines:
                key = tuple(sorted([(l.x1, l.y1), (l.x2, l.y2)]))
                sides[key] += 1
                if l.is_blocking:
                    blocking.add(key)
                if sector.ceiling_height <= sector.floor_height:
                    doors.add(key)

        def array(keys):
            return np.array([a + b for a, b in sorted(keys)], dtype=np.float64).reshape(-1, 4)

        # Sight stops at one-sided lines (solid walls) and closed doors; the player also keeps
        # clear of two-sided lines marked impassable (e.g. the rails of a monster's alcove).
        solid = {k for k, n in sides.items() if n == 1} | doors
        self.sight_walls = array(solid)
        self.walls = array(solid | blocking)

    def clearance(self, x, y):
        """Distance from (x, y) to the nearest blocking wall."""
        w = self.walls
        d = w[:, 2:] - w[:, :2]
        t = np.clip(((x - w[:, 0]) * d[:, 0] + (y - w[:, 1]) * d[:, 1])
                    / np.maximum((d * d).sum(1), 1e-9), 0, 1)
        px, py = w[:, 0] + t * d[:, 0], w[:, 1] + t * d[:, 1]
        return float(np.sqrt((px - x) ** 2 + (py - y) ** 2).min())

    def blocked(self, ax, ay, bx, by):
        """Whether the segment a-b crosses a solid wall or a closed door."""
        w = self.sight_walls

        def side(px, py, qx, qy, rx, ry):
            return (qx - px) * (ry - py) - (qy - py) * (rx - px)

        s1 = side(ax, ay, bx, by, w[:, 0], w[:, 1])
        s2 = side(ax, ay, bx, by, w[:, 2], w[:, 3])
        s3 = side(w[:, 0], w[:, 1], w[:, 2], w[:, 3], ax, ay)
        s4 = side(w[:, 0], w[:, 1], w[:, 2], w[:, 3], bx, by)
        return bool(np.any((s1 * s2 < 0) & (s3 * s4 < 0)))

    def tall_enough(self, x, y):
        """Whether (x, y) lies in a sector with room for the player (even-odd rule)."""
        for height, edges in self.sectors:
            inside = False
            for x1, y1, x2, y2 in edges:
                if (y1 > y) != (y2 > y) and x < x1 + (y - y1) * (x2 - x1) / (y2 - y1):
                    inside = not inside
            if inside:
                return height >= PLAYER_HEIGHT
        return False

    def spot(self, rng, tx, ty, anchors, hi):
        """A camera spot with a clear line to (tx, ty), or None. Half the candidates are drawn
        around the target, half near one of `anchors` (positions of other objects, which lie
        where the map is open: in a narrow corridor a random direction rarely is)."""
        lo = CAMERA_DISTANCE[0]
        near = [(x, y) for x, y in anchors if lo <= math.hypot(x - tx, y - ty) <= hi]
        for _ in range(SPOT_TRIES):
            if near and rng.random() < 0.5:
                x, y = rng.choice(near)
                x, y = x + rng.uniform(-ANCHOR_JITTER, ANCHOR_JITTER), \
                    y + rng.uniform(-ANCHOR_JITTER, ANCHOR_JITTER)
            else:
                d, a = rng.uniform(lo, hi), rng.uniform(0, 2 * math.pi)
                x, y = tx + d * math.cos(a), ty + d * math.sin(a)
            if (self.clearance(x, y) >= PLAYER_CLEARANCE and not self.blocked(tx, ty, x, y)
                    and self.tall_enough(x, y)):
                return x, y
        return None


def annotate(state, width, height):
    """The VOC objects of a frame: (class, xmin, ymin, xmax, ymax, truncated, difficult)."""
    names = {n: c for c, ns in CLASSES.items() for n in ns}
    s = height / 240.0
    objects = []
    for label in sorted(state.labels, key=lambda l: l.value):
        cls = names.get(label.object_name)
        if cls is None:
            continue
        x, y, w, h = label.x, label.y, label.width, label.height
        visible = state.labels_buffer[y:y + h, x:x + w] == label.value
        pixels = int(np.count_nonzero(visible))
        if pixels == 0:
            continue
        rows, cols = np.flatnonzero(visible.any(1)), np.flatnonzero(visible.any(0))
        x0, y0 = x + int(cols[0]), y + int(rows[0])
        vw, vh = int(cols[-1] - cols[0]) + 1, int(rows[-1] - rows[0]) + 1
        if pixels < MIN_PIXELS * s * s or min(vw, vh) < MIN_SIDE * s:
            continue
        luma = float((state.screen_buffer[y:y + h, x:x + w][visible] @ LUMA).mean())
        difficult = (min(vw, vh) < DIFFICULT_SIDE * s or pixels < DIFFICULT_PIXELS * s * s
                     or pixels < DIFFICULT_FILL * vw * vh
                     or vw * vh < DIFFICULT_VISIBLE * w * h or luma < DIFFICULT_DARK)
        truncated = x0 == 0 or y0 == 0 or x0 + vw == width or y0 + vh == height
        objects.append((cls, x0 + 1, y0 + 1, x0 + vw, y0 + vh, int(truncated), int(difficult)))
    return objects


def annotation_xml(image_id, width, height, objects):
    """The VOC XML of one frame."""
    parts = [
        "<annotation>\n"
        "  <folder>doom-voc</folder>\n"
        f"  <filename>{image_id}.jpg</filename>\n"
        "  <source><database>ViZDoom (rendered)</database></source>\n"
        f"  <size><width>{width}</width><height>{height}</height><depth>3</depth></size>\n"
        "  <segmented>0</segmented>\n"
    ]
    for cls, x1, y1, x2, y2, truncated, difficult in objects:
        parts.append(
            "  <object>\n"
            f"    <name>{cls}</name>\n"
            "    <pose>Unspecified</pose>\n"
            f"    <truncated>{truncated}</truncated>\n"
            f"    <difficult>{difficult}</difficult>\n"
            f"    <bndbox><xmin>{x1}</xmin><ymin>{y1}</ymin><xmax>{x2}</xmax>"
            f"<ymax>{y2}</ymax></bndbox>\n"
            "  </object>\n")
    parts.append("</annotation>\n")
    return "".join(parts)


def live_targets(state):
    """class -> the objects of that class in the level now."""
    names = {n: c for c, ns in CLASSES.items() for n in ns}
    targets = collections.defaultdict(list)
    for o in state.objects:
        if o.name in names:
            targets[names[o.name]].append(o)
    return targets


def aim(game, rng, tx, ty):
    """Turn the player to face (tx, ty), give or take AIM_JITTER degrees."""
    px, py, angle = game.get_state().game_variables
    want = math.degrees(math.atan2(ty - py, tx - px)) + rng.uniform(-AIM_JITTER, AIM_JITTER)
    game.make_action([0, 0, ((angle - want + 180.0) % 360.0) - 180.0], 1)


def start_episode(game, rng):
    """A new episode with a game seed drawn from `rng`, in god mode."""
    game.set_seed(rng.randrange(2 ** 31))
    game.new_episode()
    game.send_game_command("god")
    game.send_game_command("notarget")  # monsters ignore the player: no fights, no corpses


def play_episode(game, rng, frames, spec):
    """Yield `frames` (rgb, objects, views rendered for it) from the current episode."""
    height, width = game.get_screen_height(), game.get_screen_width()
    level = Level(game.get_state())
    kept = 0
    while kept < frames:
        for tries in range(1, MAX_TRIES + 1):
            if game.is_episode_finished():  # a scenario's own end (an exit, a pickup)
                start_episode(game, rng)
                level = Level(game.get_state())
            state = game.get_state()
            targets = live_targets(state)
            if not targets:
                sys.exit(f"error: {spec} holds none of the classes {', '.join(CLASSES)}: "
                         "choose other --scenarios")
            cls = rng.choice(sorted(targets))
            target = rng.choice(targets[cls])
            tx, ty = target.position_x, target.position_y
            anchors = [(o.position_x, o.position_y) for o in state.objects if o.id != target.id]
            spot = level.spot(rng, tx, ty, anchors, MAX_DISTANCE.get(cls, CAMERA_DISTANCE[1]))
            if spot is None:
                continue
            game.send_game_command("warp %d %d" % spot)
            for _ in range(rng.randint(*WANDER_TICS)):
                game.make_action([rng.random() < 0.5, rng.random() < 0.2,
                                  rng.uniform(-10.0, 10.0)], 1)
            if game.is_episode_finished():
                continue
            aim(game, rng, tx, ty)
            if game.is_episode_finished():
                continue
            state = game.get_state()
            objects = annotate(state, width, height)
            px, py, _ = state.game_variables
            near = min((math.hypot(l.object_position_x - px, l.object_position_y - py)
                        for l in state.labels if l.object_name != "DoomPlayer"), default=1e9)
            game.make_action([0, 0, 0.0], GAP_TICS)
            if near >= MIN_DISTANCE and any(not o[6] for o in objects):
                break
        else:
            sys.exit(f"error: {spec}: no frame with a non-difficult object in {MAX_TRIES} "
                     "tries: choose other --scenarios")
        kept += 1
        yield np.ascontiguousarray(state.screen_buffer), objects, tries


def write_lines(path, lines):
    """Write `lines`, each ended by a newline."""
    with open(path, "w") as f:
        f.writelines(line + "\n" for line in lines)


def write_split(out, split, records):
    """ImageSets/Main/<split>.txt and <class>_<split>.txt with the devkit's labels."""
    main_dir = os.path.join(out, "ImageSets", "Main")
    write_lines(os.path.join(main_dir, split + ".txt"), [r[0] for r in records])
    for cls in CLASSES:
        lines = []
        for image_id, objects in records:
            flags = [o[6] for o in objects if o[0] == cls]
            label = -1 if not flags else (1 if 0 in flags else 0)
            lines.append("%s %2d" % (image_id, label))
        write_lines(os.path.join(main_dir, "%s_%s.txt" % (cls, split)), lines)


def print_counts(split, records):
    """Objects per class (non-difficult / difficult) and images per class of a split."""
    objs, diff, imgs = collections.Counter(), collections.Counter(), collections.Counter()
    for _, objects in records:
        for o in objects:
            (diff if o[6] else objs)[o[0]] += 1
        for cls in {o[0] for o in objects if not o[6]}:
            imgs[cls] += 1
    total = sum(objs.values())
    print(f"{split}: {len(records)} images, {total} objects (+{sum(diff.values())} difficult)")
    for cls in CLASSES:
        print(f"  {cls:<11} {objs[cls]:4d} objects  {diff[cls]:3d} difficult  "
              f"{imgs[cls]:4d} images")


def prepare_out(out):
    """Make OUT's folders, empty. A folder this script wrote before (it has classes.txt) is
    cleared, so no file of an earlier run stays; any other non-empty folder is refused."""
    subs = ("JPEGImages", "Annotations", "ImageSets")
    if os.path.isdir(out) and os.listdir(out):
        if not os.path.isfile(os.path.join(out, "classes.txt")):
            sys.exit(f"error: --out {out} is a non-empty folder this script did not write: "
                     "give a new or empty one")
        for sub in subs:
            shutil.rmtree(os.path.join(out, sub), ignore_errors=True)
    for sub in ("JPEGImages", "Annotations", os.path.join("ImageSets", "Main")):
        os.makedirs(os.path.join(out, sub), exist_ok=True)


def main():
    global CAMERA_DISTANCE, MAX_DISTANCE
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--out", required=True, help="the VOC root to write")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--train-images", type=int, default=150)
    p.add_argument("--test-images", type=int, default=75)
    p.add_argument("--resolution", default="RES_320X240", help="a ViZDoom ScreenResolution")
    p.add_argument("--scenarios", default=DEFAULT_SCENARIOS,
                   help="comma-separated ViZDoom configs, each with an optional :MAP")
    p.add_argument("--frames-per-episode", type=int, default=FRAMES_PER_EPISODE)
    p.add_argument("--max-distance", type=float, default=CAMERA_DISTANCE[1],
                   help="the farthest camera spot from the target object, in map units (a "
                        "smaller value gives larger objects; the per-class MAX_DISTANCE caps "
                        "still apply)")
    args = p.parse_args()
    if not CAMERA_DISTANCE[0] < args.max_distance:
        sys.exit(f"error: --max-distance must exceed {CAMERA_DISTANCE[0]:g} map units")
    CAMERA_DISTANCE = (CAMERA_DISTANCE[0], args.max_distance)
    MAX_DISTANCE = {k: min(v, args.max_distance) for k, v in MAX_DISTANCE.items()}
    try:
        import vizdoom as vzd
    except ImportError:
        sys.exit("error: vizdoom is not installed: pip install vizdoom==1.3.2")
    key = args.resolution.upper()
    key = key if key.startswith("RES_") else "RES_" + key
    if not hasattr(vzd.ScreenResolution, key):
        valid = sorted(r for r in dir(vzd.ScreenResolution) if r.startswith("RES_"))
        sys.exit(f"error: --resolution {args.resolution} is not a ViZDoom resolution; valid: "
                 f"{', '.join(valid)}")
    resolution = getattr(vzd.ScreenResolution, key)
    specs = [s for s in args.scenarios.split(",") if s]
    if not specs or args.frames_per_episode < 1:
        sys.exit("error: give at least one scenario and a positive --frames-per-episode")
    scenarios = [(spec, *parse_scenario(spec, vzd)) for spec in specs]

    prepare_out(args.out)
    write_lines(os.path.join(args.out, "classes.txt"), list(CLASSES))

    # Episodes: the train ones, then the test ones, cycling through the scenarios.
    plan = []
    for split, n in (("trainval", args.train_images), ("test", args.test_images)):
        for i in range(0, n, args.frames_per_episode):
            plan.append((split, min(args.frames_per_episode, n - i)))
    workdir = tempfile.mkdtemp(prefix="doom-voc-")
    games, views = {}, 0
    records = {"trainval": [], "test": []}
    try:
        for episode, (split, frames) in enumerate(plan):
            spec, cfg, doom_map = scenarios[episode % len(scenarios)]
            if spec not in games:
                games[spec] = make_game(vzd, cfg, doom_map, resolution, workdir)
            game = games[spec]
            rng = random.Random(f"{args.seed}/{episode}")
            start_episode(game, rng)
            for f, (rgb, objects, tries) in enumerate(play_episode(game, rng, frames, spec)):
                views += tries
                image_id = f"{split}_{episode:03d}_{f:03d}"
                height, width = rgb.shape[:2]
                Image.fromarray(rgb).save(
                    os.path.join(args.out, "JPEGImages", image_id + ".jpg"), quality=JPEG_QUALITY)
                with open(os.path.join(args.out, "Annotations", image_id + ".xml"), "w") as fx:
                    fx.write(annotation_xml(image_id, width, height, objects))
                records[split].append((image_id, objects))
    finally:
        for game in games.values():
            game.close()
        shutil.rmtree(workdir, ignore_errors=True)
    for split, recs in records.items():
        write_split(args.out, split, recs)
        print_counts(split, recs)
    kept = sum(len(r) for r in records.values())
    print(f"{len(plan)} episodes; {views} views rendered for {kept} frames kept")


if __name__ == "__main__":
    main()
