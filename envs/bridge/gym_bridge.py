#!/usr/bin/env python3
"""sslbench's gym bridge: serves one simulator over a length-prefixed socket protocol.

    python3 gym_bridge.py --env vizdoom:my_way_home --listen unix:/tmp/doom.sock
    python3 gym_bridge.py --env miniworld:MiniWorld-OneRoom-v0 --listen tcp:127.0.0.1:0 \
        --option resize=128x128

Prints one line `READY <address>` on stdout once listening (the port actually bound), or one
line `ERROR {"kind": ..., "message": ...}` and exit status 2 when the simulator cannot start.
Clients are served one at a time; the environment outlives connections (PROTOCOL.md).

Environment ids (navigation adapters use actions 0 forward, 1 turn_right, 2 turn_left):
  vizdoom:<scenario>|<file.cfg>   ViZDoom's DoomGame, headless, RGB24, optional depth
  miniworld:<EnvName>             MiniWorld (pyglet headless through EGL)
  gibson:<config.yaml>|<scene>    GibsonEnv's HuskyNavigateEnv, the Gibson navigation task
  gym:<id>                        any gymnasium id with image observations or rgb_array render

Imports only the standard library and numpy; each simulator is imported when it is used.
"""

import argparse
import contextlib
import importlib
import json
import math
import mmap
import os
import shutil
import signal
import socket
import struct
import sys
import tempfile
import threading

import numpy as np

PROTOCOL_VERSION = 1
MAGIC = "sslbench-gym-bridge"
MAX_FRAME = 256 << 20
MAX_HEADER = 1 << 20
# Once the first byte of a frame has arrived, the rest must follow within this many seconds.
FRAME_TIMEOUT = 30.0
SEND_BUFFER = 4 << 20

HELLO, WELCOME, RESET, STEP, OBS, CLOSE, BYE, ERROR = range(1, 9)
MESSAGE_NAMES = {HELLO: "HELLO", WELCOME: "WELCOME", RESET: "RESET", STEP: "STEP", OBS: "OBS",
                 CLOSE: "CLOSE", BYE: "BYE", ERROR: "ERROR"}
NAV_ACTIONS = ["forward", "turn_right", "turn_left"]
# Doom's map unit: a player is 56 units tall (~1.75 m), so 32 units make a metre.
DOOM_UNITS_PER_METRE = 32.0
# ViZDoom's 8-bit depth: ~14 depth units per 100 map units (ViZDoom issue #192).
DOOM_DEPTH_METRES = 100.0 / 14.0 / DOOM_UNITS_PER_METRE


# ---------------------------------------------------------------------------------------------
# Errors: each carries the protocol's error kind.

class BridgeError(Exception):
    """A failure reported to the client as an ERROR message of this kind."""
    kind = "remote"


class ConfigError(BridgeError):
    """A wrong environment id or option, or a simulator that is not installed."""
    kind = "config"


class ProtocolError(BridgeError):
    """A malformed frame or an unexpected message: the connection is closed after the reply."""
    kind = "protocol"


class VersionError(BridgeError):
    """The client speaks another protocol version."""
    kind = "version"


class NeedsReset(BridgeError):
    """STEP outside an episode."""
    kind = "needs_reset"


class InvalidAction(BridgeError):
    """An action outside the action space."""
    kind = "invalid_action"


class ClientGone(Exception):
    """The client closed the connection."""


def require(module, install):
    """Imports a simulator module or raises ConfigError naming the install command."""
    try:
        return importlib.import_module(module)
    except ImportError as e:
        raise ConfigError(f"the Python module `{module}` is not importable ({e}); "
                          f"install it with: {install}") from e


# ---------------------------------------------------------------------------------------------
# Options: `--option key=value` and the HELLO's options, with typed getters that name the
# option in their errors and a check that every option given was used.

def parse_option_value(text):
    """Reads a command-line option value: true/false, an integer, a float, or text."""
    low = text.strip().lower()
    if low in ("true", "false"):
        return low == "true"
    for cast in (int, float):
        try:
            return cast(text)
        except ValueError:
            pass
    return text


class Options:
    """Adapter options; each getter records the option as known."""

    def __init__(self, values):
        self.values = dict(values)
        self.known = set()

    def _get(self, name, default):
        self.known.add(name)
        return self.values.get(name, default)

    def text(self, name, default=None):
        value = self._get(name, default)
        return None if value is None else str(value)

    def boolean(self, name, default=False):
        value = self._get(name, default)
        if isinstance(value, bool):
            return value
        if isinstance(value, str) and value.lower() in ("true", "false", "1", "0"):
            return value.lower() in ("true", "1")
        if isinstance(value, int) and value in (0, 1):
            return bool(value)
        raise ConfigError(f"option `{name}` must be true or false, got {value!r}")

    def integer(self, name, default=None, minimum=None):
        value = self._get(name, default)
        if value is None:
            return None
        try:
            if isinstance(value, bool) or (isinstance(value, float) and not value.is_integer()):
                raise ValueError
            value = int(value)
        except (TypeError, ValueError):
            raise ConfigError(f"option `{name}` must be an integer, got {value!r}") from None
        if minimum is not None and value < minimum:
            raise ConfigError(f"option `{name}` must be at least {minimum}, got {value}")
        return value

    def number(self, name, default=None):
        value = self._get(name, default)
        if value is None:
            return None
        try:
            if isinstance(value, bool):
                raise ValueError
            return float(value)
        except (TypeError, ValueError):
            raise ConfigError(f"option `{name}` must be a number, got {value!r}") from None

    def size(self, name):
        """An `HxW` option (e.g. resize=128x160) as (height, width), or None."""
        value = self.text(name)
        if value is None:
            return None
        parts = value.lower().split("x")
        if len(parts) != 2 or not all(p.isdigit() and int(p) > 0 for p in parts):
            raise ConfigError(f"option `{name}` must be HEIGHTxWIDTH (e.g. 128x160), got {value!r}")
        return int(parts[0]), int(parts[1])

    def check_all_known(self, env_id):
        unknown = sorted(set(self.values) - self.known)
        if unknown:
            raise ConfigError(f"unknown option(s) {', '.join(unknown)} for `{env_id}`; "
                              f"it takes: {', '.join(sorted(self.known))}")


# ---------------------------------------------------------------------------------------------
# Adapters: each exposes `action_names`, `height`, `width`, `depth` (bool), `goal` (int),
# `description`, `reset(seed) -> (rgb, depth, goal)`, `step(action) -> (obs, reward,
# terminated, truncated, success, values)` and `close()`. rgb is uint8 HxWx3, depth float32 HxW
# (metres), goal float32 (goal,).

@contextlib.contextmanager
def working_directory(path):
    """Runs a block in another working directory: simulators that write files where they start
    (ViZDoom's _vizdoom.ini and _vizdoom/) start in a private one."""
    cwd = os.getcwd()
    os.chdir(path)
    try:
        yield
    finally:
        os.chdir(cwd)


def fold_seed32(seed):
    """A 64-bit seed folded into the 32 bits ViZDoom takes (xor of the halves)."""
    return (seed ^ (seed >> 32)) & 0xFFFFFFFF


class VizdoomAdapter:
    """ViZDoom's DoomGame driven directly: headless, RGB24, buttons forward/right/left.

    Success: the episode finished neither by the timeout nor by the player's death, i.e. the
    scenario's own end (my_way_home and deadly_corridor end when the green armour is picked
    up). Terminated: finished before the timeout; truncated: the timeout (or max_steps).
    """

    # Per-scenario defaults. deadly_corridor: at skill 1 the monsters do not stop an agent that
    # walks without shooting; the scenario's own default is 5 (for agents that can shoot).
    SCENARIO_DEFAULTS = {"deadly_corridor": {"doom_skill": 1}}

    def __init__(self, scenario, opts):
        vzd = require("vizdoom", "pip install vizdoom==1.3.2")
        if scenario.endswith(".cfg"):
            cfg = os.path.abspath(scenario)
            name = os.path.splitext(os.path.basename(scenario))[0]
        else:
            cfg = os.path.join(vzd.scenarios_path, scenario + ".cfg")
            name = scenario
        if not os.path.isfile(cfg):
            shipped = sorted(f[:-4] for f in os.listdir(vzd.scenarios_path) if f.endswith(".cfg"))
            raise ConfigError(f"no ViZDoom scenario `{scenario}` ({cfg} does not exist); "
                              f"shipped: {', '.join(shipped)}")
        defaults = self.SCENARIO_DEFAULTS.get(name, {})
        self.frame_skip = opts.integer("frame_skip", 4, minimum=1)
        resolution = opts.text("resolution")
        self.want_depth = opts.boolean("depth", False)
        self.depth_scale = opts.number("depth_scale", DOOM_DEPTH_METRES)
        goal = opts.boolean("goal", False)
        self.target = opts.text("target", "GreenArmor")
        timeout = opts.integer("episode_timeout", None, minimum=1)
        skill = opts.integer("doom_skill", defaults.get("doom_skill"), minimum=1)
        self.nav_reward = nav_reward_options(opts)

        game = vzd.DoomGame()
        if not game.load_config(cfg):
            raise ConfigError(f"ViZDoom could not load {cfg}")
        game.set_window_visible(False)
        game.set_sound_enabled(False)
        game.set_mode(vzd.Mode.PLAYER)
        game.set_screen_format(vzd.ScreenFormat.RGB24)
        if resolution is not None:
            key = "RES_" + resolution.upper()
            if not hasattr(vzd.ScreenResolution, key):
                valid = [r[4:] for r in dir(vzd.ScreenResolution) if r.startswith("RES_")]
                raise ConfigError(f"option `resolution` = {resolution!r} is not a ViZDoom "
                                  f"resolution; valid: {', '.join(sorted(valid))}")
            game.set_screen_resolution(getattr(vzd.ScreenResolution, key))
        game.set_depth_buffer_enabled(self.want_depth)
        game.set_objects_info_enabled(True)
        game.set_available_buttons([vzd.Button.MOVE_FORWARD, vzd.Button.TURN_RIGHT,
                                    vzd.Button.TURN_LEFT])
        gv = vzd.GameVariable
        game.set_available_game_variables([gv.POSITION_X, gv.POSITION_Y, gv.ANGLE, gv.HEALTH])
        if timeout is not None:
            game.set_episode_timeout(timeout)
        if skill is not None:
            game.set_doom_skill(skill)
        self.workdir = tempfile.mkdtemp(prefix="sslbench-env-")
        try:
            with working_directory(self.workdir):
                game.init()
        except Exception as e:
            shutil.rmtree(self.workdir, ignore_errors=True)
            raise BridgeError(f"ViZDoom failed to start `{scenario}`: {type(e).__name__}: {e}")
        self.game = game
        self.actions = [[1, 0, 0], [0, 1, 0], [0, 0, 1]]
        self.action_names = NAV_ACTIONS
        self.height, self.width = game.get_screen_height(), game.get_screen_width()
        self.depth = self.want_depth
        self.goal = 3 if goal else 0
        self.description = (f"ViZDoom {vzd.__version__} `{name}` {self.width}x{self.height}, "
                            f"frame skip {self.frame_skip}, timeout {game.get_episode_timeout()} tics")
        self.last = None

    def _observe(self):
        state = self.game.get_state()
        rgb = state.screen_buffer
        depth = None
        if self.want_depth:
            depth = state.depth_buffer.astype(np.float32) * np.float32(self.depth_scale)
        x, y, angle, health = (float(v) for v in state.game_variables)
        values = {"x": x / DOOM_UNITS_PER_METRE, "y": y / DOOM_UNITS_PER_METRE,
                  "angle": angle, "health": health}
        goal = None
        target = [o for o in state.objects if o.name == self.target]
        if target:
            dx = (target[0].position_x - x) / DOOM_UNITS_PER_METRE
            dy = (target[0].position_y - y) / DOOM_UNITS_PER_METRE
            values["distance"] = math.hypot(dx, dy)
            if self.goal:
                rel = math.atan2(dy, dx) - math.radians(angle)
                goal = np.array([values["distance"], math.sin(rel), math.cos(rel)], np.float32)
        elif self.goal:
            raise BridgeError(f"option `goal` needs the object `{self.target}` on the map; "
                              f"seen: {sorted(set(o.name for o in state.objects))}")
        self.last = (rgb, depth, goal)
        return self.last, values

    def reset(self, seed):
        if seed is not None:
            self.game.set_seed(fold_seed32(seed))
        self.game.new_episode()
        return self._observe()[0]

    def step(self, action):
        reward = self.game.make_action(self.actions[action], self.frame_skip)
        if self.game.is_episode_finished():
            timeout = self.game.is_episode_timeout_reached()
            dead = self.game.is_player_dead()
            success = not timeout and not dead
            values = {"dead": float(dead)}
            reward = self.nav_reward(reward, success)
            return self.last, reward, not timeout, timeout, success, values
        obs, values = self._observe()
        return obs, self.nav_reward(reward, False), False, False, False, values

    def close(self):
        self.game.close()
        shutil.rmtree(self.workdir, ignore_errors=True)


def nav_reward_options(opts):
    """`reward = "scenario"` (default) keeps the simulator's reward; `reward = "nav"` replaces
    it by the Gibson task's: step_reward (-0.025) per step plus success_reward (10) on
    success."""
    kind = opts.text("reward", "scenario")
    step = opts.number("step_reward", -0.025)
    bonus = opts.number("success_reward", 10.0)
    if kind == "scenario":
        return lambda reward, success: float(reward)
    if kind == "nav":
        return lambda reward, success: step + (bonus if success else 0.0)
    raise ConfigError(f"option `reward` must be \"scenario\" or \"nav\", got {kind!r}")


class MiniworldAdapter:
    """A MiniWorld environment (gymnasium API), rendered headless through EGL.

    Actions map to MiniWorld's move_forward / turn_right / turn_left. Success: a terminated
    episode with a positive reward (MiniWorld rewards only reaching the goal).
    """

    def __init__(self, name, opts):
        pyglet = require("pyglet", "pip install miniworld==2.1.0 'pyglet<2'")
        pyglet.options["headless"] = opts.boolean("headless", True)
        gym = require("gymnasium", "pip install gymnasium==1.4.0")
        require("miniworld", "pip install miniworld==2.1.0 'pyglet<2' (headless rendering needs "
                             "EGL: apt install libegl1 libgl1-mesa-dri)")
        kwargs = {}
        size = opts.size("obs_size")
        if size is not None:
            kwargs["obs_height"], kwargs["obs_width"] = size
        steps = opts.integer("max_episode_steps", None, minimum=1)
        if steps is not None:
            kwargs["max_episode_steps"] = steps
        self.want_depth = opts.boolean("depth", False)
        forward = opts.number("forward_step")
        turn = opts.number("turn_step")
        self.nav_reward = nav_reward_options(opts)
        try:
            self.env = gym.make(name, **kwargs)
        except Exception as e:
            raise ConfigError(f"gymnasium.make({name!r}) failed: {type(e).__name__}: {e}")
        base = self.env.unwrapped
        if forward is not None or turn is not None:
            params = base.params.copy()
            if forward is not None:
                params.set("forward_step", forward, forward, forward)
            if turn is not None:
                params.set("turn_step", turn, turn, turn)
            base.params = params
        acts = base.actions
        self.actions = [acts.move_forward, acts.turn_right, acts.turn_left]
        self.action_names = NAV_ACTIONS
        space = self.env.observation_space
        self.height, self.width = int(space.shape[0]), int(space.shape[1])
        self.depth = self.want_depth
        self.goal = 0
        self.description = f"MiniWorld `{name}` {self.width}x{self.height}"

    def _obs(self, rgb):
        depth = None
        if self.want_depth:
            depth = np.asarray(self.env.unwrapped.render_depth(), np.float32)
            depth = depth.reshape(self.height, self.width)
        return np.ascontiguousarray(rgb, np.uint8), depth, None

    def reset(self, seed):
        rgb, _ = self.env.reset(seed=seed)
        return self._obs(rgb)

    def step(self, action):
        rgb, reward, terminated, truncated, info = self.env.step(self.actions[action])
        success = bool(terminated and reward > 0)
        return (self._obs(rgb), self.nav_reward(reward, success), bool(terminated),
                bool(truncated), success, numeric_values(info))

    def close(self):
        self.env.close()


# Start and target regions of the Gibson navigation scenes, from Sax et al.'s configs
# (alexsax/midlevel-reps, evkit/env/gibson/husky_visual_navigate*.yaml): x and y ranges of the
# start and of the target (metres), the target's distance from the start, the Husky's height.
GIBSON_SCENES = {
    "Beechwood": {"spawn_x": (-10.0, -4.0), "spawn_y": (1.5, 4.0), "target_x": (-9.2, -4.5),
                  "target_y": (2.0, 3.5), "target_distance": (1.0, 3.0), "z": 0.15},
    "Aloha": {"spawn_x": (-6.6, -3.0), "spawn_y": (4.5, 8.5), "target_x": (-6.4, -3.2),
              "target_y": (4.7, 8.3), "target_distance": (1.5, 3.5), "z": 0.2},
}
REGION_KEYS = ("spawn_x", "spawn_y", "target_x", "target_y", "target_distance")
# The same regions under the names Sax et al.'s YAML files use.
REGION_YAML = {"spawn_x": "x_spawn_range", "spawn_y": "y_spawn_range", "target_x": "x_target_range",
               "target_y": "y_target_range"}


class GibsonAdapter:
    """GibsonEnv's HuskyNavigateEnv on the Gibson navigation task (protocols.md section 7).

    Built from a HuskyNavigateEnv YAML config, or a scene id (Beechwood, Aloha, or any scene
    given the region options), forced to is_discrete, headless, outputs rgb_filled (+ depth).
    Each reset draws, from the seed, a start in the spawn region with a random heading and a
    target in the target region at a distance within target_distance (Sax et al.'s regions
    for Beechwood and Aloha; options spawn_x, spawn_y, target_x, target_y, target_distance as
    "lo,hi" override them; a YAML's x_spawn_range, ... too). Without regions (a YAML with only
    initial_pos / target_pos) the start and target are the config's. Actions move the Husky
    kinematically (robot.move_forward 0.1 m, turn_right / turn_left 0.24 rad), then one
    physics step with the Husky's "stay" action renders the new view. Reward: step_reward
    (-0.025) per step, success_reward (+10) within success_distance (0.5 m) of the target,
    which ends the episode (terminated); max_steps (400) truncates. Stock Gibson renders the
    scanned scene only, so the target is not drawn in the RGB frame; `goal = true` adds
    (distance, sin, cos of the bearing to the target) as a goal vector.
    """

    STAY = 4  # Husky's discrete "no motion" action (forward, backward, right, left, stay).

    def __init__(self, spec, opts):
        require("gibson", "GibsonEnv (https://github.com/StanfordVL/GibsonEnv: build it from "
                          "source or use its Docker image, then download the scene assets)")
        husky_env = require("gibson.envs.husky_env", "GibsonEnv (see its README)")
        yaml = require("yaml", "pip install pyyaml")
        self.forward = opts.number("forward_step", 0.1)
        self.turn = opts.number("turn_step", 0.24)
        self.step_reward = opts.number("step_reward", -0.025)
        self.success_reward = opts.number("success_reward", 10.0)
        self.success_distance = opts.number("success_distance", 0.5)
        self.max_steps = opts.integer("max_steps", 400, minimum=1)
        resolution = opts.integer("resolution", 256, minimum=16)
        self.want_depth = opts.boolean("depth", False)
        want_goal = opts.boolean("goal", False)
        scene = opts.text("scene")
        gpu = opts.integer("gpu", 0, minimum=0)
        if spec.endswith((".yaml", ".yml")):
            if not os.path.isfile(spec):
                raise ConfigError(f"Gibson config {spec} does not exist")
            with open(spec) as f:
                config = yaml.safe_load(f)
            regions = {k: config[name] for k, name in REGION_YAML.items() if name in config}
            if "min_target_distance" in config and "max_target_distance" in config:
                regions["target_distance"] = (config["min_target_distance"],
                                              config["max_target_distance"])
            regions["z"] = config.get("initial_pos", [0, 0, 0.15])[2]
        else:
            config = {"model_id": spec, "target_orn": [0, 0, 0], "target_pos": [0, 0, 0.4],
                      "initial_orn": [0, 0, 0], "initial_pos": [0, 0, 0.15], "fov": 1.57,
                      "use_filler": True, "display_ui": False, "show_diagnostics": False,
                      "ui_num": 1, "ui_components": ["RGB_FILLED"],
                      "random": {"random_initial_pose": False, "random_target_pose": False,
                                 "random_init_x_range": [0, 0], "random_init_y_range": [0, 0],
                                 "random_init_z_range": [0, 0], "random_init_rot_range": [0, 0]},
                      "speed": {"timestep": 0.001, "frameskip": 100}, "verbose": False}
            regions = dict(GIBSON_SCENES.get(scene or spec, {"z": 0.15}))
        if scene is not None:
            config["model_id"] = scene
        for key in REGION_KEYS:
            value = opts.text(key)
            if value is not None:
                parts = value.replace(" ", "").split(",")
                try:
                    lo, hi = (float(v) for v in parts)
                except ValueError:
                    raise ConfigError(f"option `{key}` must be \"lo,hi\" in metres, got "
                                      f"{value!r}") from None
                regions[key] = (lo, hi)
        missing = [k for k in REGION_KEYS if k not in regions]
        if spec.endswith((".yaml", ".yml")) and len(missing) == len(REGION_KEYS):
            self.regions = None  # the config's own start and target
        elif missing:
            raise ConfigError(f"no start and target regions are known for the Gibson scene "
                              f"`{config['model_id']}` (known: {', '.join(GIBSON_SCENES)}); give "
                              f"{', '.join(missing)} as \"lo,hi\" options, or a config YAML")
        else:
            self.regions = regions
        config.update({"envname": "HuskyNavigateEnv", "is_discrete": True, "mode": "headless",
                       "display_ui": False, "resolution": resolution,
                       "output": ["nonviz_sensor", "rgb_filled"] + (["depth"] if self.want_depth else [])})
        handle, self.config_path = tempfile.mkstemp(prefix="sslbench-gibson-", suffix=".yaml")
        with os.fdopen(handle, "w") as f:
            yaml.safe_dump(config, f)
        try:
            self.env = husky_env.HuskyNavigateEnv(config=self.config_path, gpu_idx=gpu)
        except Exception as e:
            os.unlink(self.config_path)
            raise BridgeError(f"HuskyNavigateEnv failed to start scene `{config['model_id']}`: "
                              f"{type(e).__name__}: {e}")
        self.rng = np.random.default_rng()
        self.action_names = NAV_ACTIONS
        self.height = self.width = resolution
        self.depth = self.want_depth
        self.goal = 3 if want_goal else 0
        self.description = (f"Gibson HuskyNavigateEnv scene `{config['model_id']}` "
                            f"{resolution}x{resolution}, {self.max_steps} steps")
        self.steps = 0

    def _obs(self, raw):
        rgb = np.asarray(raw["rgb_filled"])
        if rgb.dtype != np.uint8:
            rgb = np.clip(rgb, 0, 255).astype(np.uint8)
        depth = None
        if self.want_depth:
            depth = np.asarray(raw["depth"], np.float32).reshape(self.height, self.width)
        robot = self.env.robot
        x, y, _ = robot.get_position()
        tx, ty = robot.get_target_position()[:2]
        distance = math.hypot(tx - x, ty - y)
        goal = None
        if self.goal:
            yaw = robot.get_rpy()[2]
            rel = math.atan2(ty - y, tx - x) - yaw
            goal = np.array([distance, math.sin(rel), math.cos(rel)], np.float32)
        return (np.ascontiguousarray(rgb), depth, goal), {"x": x, "y": y, "distance": distance}

    def _place(self):
        """Draws a start, a heading and a target from the regions and moves the Husky there."""
        r, rng = self.regions, self.rng
        x, y = rng.uniform(*r["spawn_x"]), rng.uniform(*r["spawn_y"])
        lo, hi = r["target_distance"]
        for _ in range(10000):
            tx, ty = rng.uniform(*r["target_x"]), rng.uniform(*r["target_y"])
            if lo <= math.hypot(tx - x, ty - y) <= hi:
                break
            x, y = rng.uniform(*r["spawn_x"]), rng.uniform(*r["spawn_y"])
        else:
            raise BridgeError(f"no target {lo}..{hi} m from a start fits the regions {r}")
        robot = self.env.robot
        robot.set_position([x, y, r["z"]])
        robot.turn_left(rng.uniform(-math.pi, math.pi))
        robot.set_target_position([tx, ty, 0.4])

    def reset(self, seed):
        if seed is not None:
            self.rng = np.random.default_rng(seed)
            seeder = getattr(self.env, "seed", None) or getattr(self.env, "_seed")
            seeder(seed)
        self.steps = 0
        raw = self.env.reset()
        if self.regions is not None:
            self._place()
            raw, _, _, _ = self.env.step(self.STAY)
        return self._obs(raw)[0]

    def step(self, action):
        robot = self.env.robot
        if action == 0:
            robot.move_forward(self.forward)
        elif action == 1:
            robot.turn_right(self.turn)
        else:
            robot.turn_left(self.turn)
        raw, _, _, _ = self.env.step(self.STAY)
        self.steps += 1
        obs, values = self._obs(raw)
        success = values["distance"] < self.success_distance
        reward = self.step_reward + (self.success_reward if success else 0.0)
        truncated = not success and self.steps >= self.max_steps
        return obs, reward, success, truncated, success, values

    def close(self):
        close = getattr(self.env, "close", None) or getattr(self.env, "_close", None)
        if close:
            close()
        os.unlink(self.config_path)


class GymAdapter:
    """Any gymnasium environment with a discrete action space whose observation is an RGB
    image (a uint8 HxWx3 Box, or such a Box inside a Dict), or which renders rgb_array.

    `gym:module:Id` imports `module` first (gymnasium's own syntax), e.g.
    gym:vizdoom.gymnasium_wrapper:VizdoomMyWayHome-v1. Success: info["success"] or
    info["is_success"]; info's other numeric scalars become the step's values.
    """

    def __init__(self, env_id, opts):
        gym = require("gymnasium", "pip install gymnasium==1.4.0")
        self.obs_key = opts.text("obs_key")
        force_render = opts.boolean("render", False)
        steps = opts.integer("max_episode_steps", None, minimum=1)
        kwargs = {"max_episode_steps": steps} if steps else {}
        self.workdir = tempfile.mkdtemp(prefix="sslbench-env-")
        try:
            with working_directory(self.workdir):
                try:
                    self.env = gym.make(env_id, render_mode="rgb_array", **kwargs)
                except TypeError:
                    self.env = gym.make(env_id, **kwargs)
        except Exception as e:
            shutil.rmtree(self.workdir, ignore_errors=True)
            raise ConfigError(f"gymnasium.make({env_id!r}) failed: {type(e).__name__}: {e}")
        if not isinstance(self.env.action_space, gym.spaces.Discrete):
            raise ConfigError(f"`{env_id}` has the action space {self.env.action_space}; the "
                              "bridge serves discrete actions only")
        self.n = int(self.env.action_space.n)
        self.start = int(self.env.action_space.start)
        space = self.env.observation_space
        if isinstance(space, gym.spaces.Dict) and self.obs_key is None:
            images = [k for k, s in space.spaces.items() if is_image_space(gym, s)]
            self.obs_key = images[0] if images else None
        image_space = space[self.obs_key] if self.obs_key is not None else space
        self.render = force_render or not is_image_space(gym, image_space)
        if self.render:
            if self.env.render_mode != "rgb_array":
                raise ConfigError(f"`{env_id}` observes {space}, not an RGB image, and does not "
                                  "render rgb_array")
            with working_directory(self.workdir):
                self.env.reset(seed=0)
            shape = np.asarray(self.env.render()).shape
        else:
            shape = image_space.shape
        self.height, self.width = int(shape[0]), int(shape[1])
        meanings = getattr(self.env.unwrapped, "get_action_meanings", None)
        names = list(meanings()) if meanings else []
        self.action_names = names if len(names) == self.n else [f"action_{i}" for i in range(self.n)]
        self.depth = False
        self.goal = 0
        how = "rendered" if self.render else "observed"
        self.description = f"gymnasium `{env_id}` {self.width}x{self.height} ({how})"

    def _rgb(self, obs):
        if self.render:
            obs = self.env.render()
        elif self.obs_key is not None:
            obs = obs[self.obs_key]
        return np.ascontiguousarray(obs, np.uint8), None, None

    def reset(self, seed):
        with working_directory(self.workdir):  # some environments start their engine here
            obs, _ = self.env.reset(seed=seed)
        return self._rgb(obs)

    def step(self, action):
        obs, reward, terminated, truncated, info = self.env.step(self.start + action)
        success = bool(info.get("success", info.get("is_success", False)))
        return (self._rgb(obs), float(reward), bool(terminated), bool(truncated), success,
                numeric_values(info))

    def close(self):
        with working_directory(self.workdir):
            self.env.close()
        shutil.rmtree(self.workdir, ignore_errors=True)


def is_image_space(gym, space):
    return (isinstance(space, gym.spaces.Box) and space.dtype == np.uint8
            and len(space.shape) == 3 and space.shape[2] == 3)


def numeric_values(info):
    """The finite numeric scalars of a gym info dict (success flags excluded)."""
    values = {}
    for key, value in info.items():
        if key in ("success", "is_success") or isinstance(value, bool):
            continue
        if isinstance(value, (int, float, np.integer, np.floating)) and math.isfinite(value):
            values[str(key)] = float(value)
    return values


ADAPTERS = {"vizdoom": VizdoomAdapter, "miniworld": MiniworldAdapter, "gibson": GibsonAdapter,
            "gym": GymAdapter}


class Environment:
    """An adapter plus what every environment shares: the episode state, `max_steps`, the
    nearest-neighbour `resize=HxW`, and the observation checks. The server and the in-process
    tools step through this class, so both see the same frames."""

    def __init__(self, env_id, options):
        family, sep, rest = env_id.partition(":")
        if not sep or family not in ADAPTERS or not rest:
            raise ConfigError(f"environment id `{env_id}` must be <family>:<name> with family "
                              f"one of {', '.join(ADAPTERS)} (e.g. vizdoom:my_way_home)")
        opts = Options(options)
        # Gibson's adapter owns max_steps (the task's 400 by default).
        self.max_steps = None if family == "gibson" else opts.integer("max_steps", None, 1)
        resize = opts.size("resize")
        self.adapter = ADAPTERS[family](rest, opts)
        try:
            opts.check_all_known(env_id)
        except ConfigError:
            self.adapter.close()
            raise
        self.env_id = env_id
        self.options = dict(options)
        a = self.adapter
        self.rows = self.cols = None
        self.height, self.width = a.height, a.width
        if resize is not None and resize != (a.height, a.width):
            self.height, self.width = resize
            self.rows = (np.arange(self.height) * a.height // self.height).astype(np.intp)
            self.cols = (np.arange(self.width) * a.width // self.width).astype(np.intp)
        self.running = False
        self.steps = 0

    def spaces(self):
        a = self.adapter
        return {"action": {"n": len(a.action_names), "names": list(a.action_names)},
                "observation": {"height": self.height, "width": self.width,
                                "depth": bool(a.depth), "goal": int(a.goal)}}

    def observation_bytes(self):
        """The bytes of one observation's blobs."""
        a = self.adapter
        return self.height * self.width * (3 + 4 * bool(a.depth)) + 4 * int(a.goal)

    def description(self):
        text = self.adapter.description
        if self.rows is not None:
            text += f", resized to {self.width}x{self.height}"
        return text

    def _finish(self, obs):
        rgb, depth, goal = obs
        if self.rows is not None:
            rgb = rgb[self.rows[:, None], self.cols]
            if depth is not None:
                depth = depth[self.rows[:, None], self.cols]
        rgb = np.ascontiguousarray(rgb, np.uint8)
        if rgb.shape != (self.height, self.width, 3):
            raise BridgeError(f"the simulator returned a frame of shape {rgb.shape}; "
                              f"expected {(self.height, self.width, 3)}")
        a = self.adapter
        if (depth is not None) != bool(a.depth) or (goal is not None) != bool(a.goal):
            raise BridgeError(f"the simulator returned depth {depth is not None}, goal "
                              f"{goal is not None}; its spaces declare {bool(a.depth)}, {a.goal}")
        if depth is not None:
            depth = np.ascontiguousarray(depth, "<f4")
            if depth.shape != (self.height, self.width):
                raise BridgeError(f"the simulator returned depth of shape {depth.shape}; "
                                  f"expected {(self.height, self.width)}")
        if goal is not None:
            goal = np.ascontiguousarray(goal, "<f4").reshape(-1)
            if goal.shape != (a.goal,):
                raise BridgeError(f"the simulator returned a goal of {goal.size} values; "
                                  f"expected {a.goal}")
        return rgb, depth, goal

    def reset(self, seed):
        self.running = False
        obs = self._finish(self.adapter.reset(seed))
        self.running = True
        self.steps = 0
        return obs

    def step(self, action):
        if not self.running:
            raise NeedsReset("no episode is running: send RESET first (episodes end on "
                             "terminated or truncated)")
        n = len(self.adapter.action_names)
        if not isinstance(action, int) or isinstance(action, bool) or not 0 <= action < n:
            raise InvalidAction(f"action {action!r} is outside the action space (0..{n})")
        self.running = False
        obs, reward, terminated, truncated, success, values = self.adapter.step(action)
        self.steps += 1
        if self.max_steps is not None and self.steps >= self.max_steps and not terminated:
            truncated = True
        reward = float(reward)
        if not math.isfinite(reward):
            raise BridgeError(f"the simulator returned the reward {reward}")
        self.running = not (terminated or truncated)
        values = {k: float(v) for k, v in values.items() if math.isfinite(v)}
        return self._finish(obs), reward, bool(terminated), bool(truncated), bool(success), values

    def close(self):
        self.running = False
        self.adapter.close()


# ---------------------------------------------------------------------------------------------
# Framing: u32 big-endian payload length, then payload = u8 type, u32 BE header length, JSON
# header, binary blobs.

class Receiver:
    """Reads a client's frames with as few system calls as it can: one blocking recv usually
    brings a whole request; only a frame that arrives in pieces arms the FRAME_TIMEOUT."""

    def __init__(self, sock):
        self.sock = sock
        self.pending = bytearray()
        self.timed = False

    def _fill(self, timed):
        if timed != self.timed:
            self.sock.settimeout(FRAME_TIMEOUT if timed else None)
            self.timed = timed
        try:
            chunk = self.sock.recv(1 << 16)
        except socket.timeout:
            raise ProtocolError(f"frame incomplete: {len(self.pending)} bytes arrived, then "
                                f"nothing for {FRAME_TIMEOUT:.0f} s") from None
        if not chunk:
            raise ClientGone()
        self.pending += chunk

    def read_message(self):
        """Reads one frame; returns (type, header dict). Clients send no blobs."""
        while len(self.pending) < 4:
            self._fill(timed=bool(self.pending))
        (length,) = struct.unpack_from(">I", self.pending)
        if length < 5:
            raise ProtocolError(f"frame length {length} is shorter than the 5-byte message head")
        if length > MAX_FRAME:
            raise ProtocolError(f"frame length {length} exceeds the cap of {MAX_FRAME} bytes")
        while len(self.pending) < 4 + length:
            self._fill(timed=True)
        body = bytes(self.pending[4:4 + length])
        del self.pending[:4 + length]
        return parse_body(body)


def parse_body(body):
    length = len(body)
    kind = body[0]
    (hlen,) = struct.unpack_from(">I", body, 1)
    if hlen > length - 5 or hlen > MAX_HEADER:
        raise ProtocolError(f"header length {hlen} does not fit the {length}-byte frame")
    if kind not in MESSAGE_NAMES:
        raise ProtocolError(f"unknown message type {kind}")
    if length - 5 - hlen:
        raise ProtocolError(f"{MESSAGE_NAMES[kind]} carries {length - 5 - hlen} bytes of binary "
                            "data; client messages carry none")
    try:
        header = json.loads(body[5:5 + hlen].decode("utf-8"))
    except (UnicodeDecodeError, ValueError) as e:
        raise ProtocolError(f"{MESSAGE_NAMES[kind]} header is not UTF-8 JSON: {e}") from None
    if not isinstance(header, dict):
        raise ProtocolError(f"{MESSAGE_NAMES[kind]} header is not a JSON object")
    return kind, header


def send_message(sock, kind, header, blobs=()):
    """Writes one frame with scatter-gather I/O: the blobs are never copied into a buffer.
    `header` is a dict, or its JSON already encoded."""
    if not isinstance(header, bytes):
        header = json.dumps(header, separators=(",", ":"), allow_nan=False).encode()
    views = [memoryview(b).cast("B") for b in blobs]
    total = 5 + len(header) + sum(len(v) for v in views)
    parts = [struct.pack(">IBI", total, kind, len(header)) + header] + [v for v in views if len(v)]
    while parts:
        sent = sock.sendmsg(parts)
        while sent:
            if sent >= len(parts[0]):
                sent -= len(parts[0])
                parts.pop(0)
            else:
                parts[0] = memoryview(parts[0])[sent:]
                sent = 0


def send_error(sock, error):
    header = {"kind": error.kind, "message": str(error)}
    if error.kind == "version":
        header["versions"] = [PROTOCOL_VERSION]
    try:
        send_message(sock, ERROR, header)
    except OSError:
        pass


def close_gracefully(sock):
    """Ends a connection after an error reply: stops sending, then reads and drops what the
    client still sends (briefly), so TCP does not reset the connection over unread bytes and
    lose the reply."""
    try:
        sock.shutdown(socket.SHUT_WR)
        sock.settimeout(0.2)
        for _ in range(64):
            if not sock.recv(1 << 16):
                break
    except OSError:
        pass


BLOB_JSON = {}


def observation_message(obs, reward=0.0, terminated=False, truncated=False, success=False,
                        values=None, shared=None):
    """An OBS header (encoded JSON) and its inline blobs; with `shared`, the blobs go to shared
    memory and the header says where. The blob list's JSON is built once per layout."""
    blobs = [b for b in obs if b is not None]
    layout = tuple((b.shape, b.dtype.str) for b in blobs) + (shared is not None,)
    described = BLOB_JSON.get(layout)
    if described is None:
        described = [{"name": name, "dtype": "u8" if blob.dtype == np.uint8 else "f32",
                      "shape": list(blob.shape), "bytes": blob.nbytes}
                     for name, blob in zip(("rgb", "depth", "goal"), obs) if blob is not None]
        if shared is not None:
            for d, offset in zip(described, shared.layout(blobs)):
                d["shm_offset"] = offset
        described = BLOB_JSON[layout] = json.dumps(described, separators=(",", ":"))
    if shared is not None:
        shared.put(blobs)
        blobs = []
    # A finite float's repr is a JSON number.
    header = (f'{{"reward":{reward!r},"terminated":{"true" if terminated else "false"},'
              f'"truncated":{"true" if truncated else "false"},'
              f'"success":{"true" if success else "false"},'
              f'"values":{json.dumps(values or {}, separators=(",", ":"))},"blobs":{described}}}')
    return header.encode(), blobs


class SharedMemory:
    """A memfd the client maps by its /proc path: the blobs of an OBS go there instead of
    through the socket (two kernel copies fewer). Its first 16 bytes hold a random token the
    client checks, so a client that opens another file (another PID namespace) knows it."""

    START = 64

    def __init__(self, nbytes):
        self.size = self.START + nbytes + 64 * 3
        self.fd = os.memfd_create("sslbench-bridge", os.MFD_CLOEXEC)
        os.ftruncate(self.fd, self.size)
        self.map = mmap.mmap(self.fd, self.size)
        self.token = os.urandom(16)
        self.map[:16] = self.token
        self.path = f"/proc/{os.getpid()}/fd/{self.fd}"

    @staticmethod
    def available():
        return hasattr(os, "memfd_create") and os.path.isdir(f"/proc/{os.getpid()}/fd")

    def offer(self):
        return {"path": self.path, "bytes": self.size, "token": self.token.hex()}

    def layout(self, blobs):
        """The offsets of the blobs, each 64-byte aligned."""
        offsets, at = [], self.START
        for blob in blobs:
            offsets.append(at)
            at += -(-blob.nbytes // 64) * 64
        if at > self.size:
            raise BridgeError(f"an observation of {at} bytes overflows the {self.size}-byte "
                              "shared memory")
        return offsets

    def put(self, blobs):
        """Copies the blobs in at their offsets."""
        for blob, at in zip(blobs, self.layout(blobs)):
            self.map[at:at + blob.nbytes] = memoryview(blob).cast("B")

    def close(self):
        self.map.close()
        os.close(self.fd)


# ---------------------------------------------------------------------------------------------
# The server.

def log(message):
    print(f"gym_bridge: {message}", file=sys.stderr, flush=True)


def build(env_id, options):
    """An Environment; a simulator's unexpected exception becomes a BridgeError."""
    try:
        return Environment(env_id, options)
    except BridgeError:
        raise
    except Exception as e:
        raise BridgeError(f"`{env_id}` failed to start: {type(e).__name__}: {e}") from e


class Server:
    """Owns the environment; serves one connection at a time."""

    def __init__(self, env_id, options):
        self.env_id = env_id
        self.options = dict(options)
        self.env = build(env_id, self.options)

    def hello(self, header):
        if header.get("magic") != MAGIC:
            raise ProtocolError(f"HELLO must carry magic {MAGIC!r}, got {header.get('magic')!r}")
        version = header.get("version")
        if version != PROTOCOL_VERSION:
            raise VersionError(f"this server speaks protocol version {PROTOCOL_VERSION}; the "
                               f"client asked for {version!r}")
        env_id = header.get("env") or self.env_id
        if env_id != self.env_id:
            raise ConfigError(f"this server serves `{self.env_id}`, not `{env_id}`")
        options = header.get("options") or {}
        if not isinstance(options, dict):
            raise ProtocolError("HELLO options must be a JSON object")
        merged = {**self.options, **options}
        if self.env is None or merged != self.env.options:
            if self.env is not None:
                self.env.close()
                self.env = None
            log(f"building `{env_id}` with options {merged}")
            self.env = build(env_id, merged)
        return {"version": PROTOCOL_VERSION, "server": "gym_bridge.py", "pid": os.getpid(),
                "env": self.env_id, "description": self.env.description(),
                "spaces": self.env.spaces(), "options": merged}

    def serve(self, conn):
        """Serves one client until CLOSE, its disconnect, or a protocol error."""
        shared = None
        receiver = Receiver(conn)
        try:
            kind, header = receiver.read_message()
            if kind != HELLO:
                raise ProtocolError(f"the first message must be HELLO, got {MESSAGE_NAMES[kind]}")
            welcome = self.hello(header)
            if header.get("shm") is True and SharedMemory.available():
                shared = SharedMemory(self.env.observation_bytes())
                welcome["shm"] = shared.offer()
            send_message(conn, WELCOME, welcome)
            self.env.running = False
            while True:
                kind, header = receiver.read_message()
                if kind == CLOSE:
                    send_message(conn, BYE, {})
                    return
                if kind not in (RESET, STEP):
                    raise ProtocolError(f"unexpected {MESSAGE_NAMES[kind]} after the handshake")
                if header.get("shm") and shared is None:
                    raise ProtocolError(f"{MESSAGE_NAMES[kind]} asks for shared memory, which "
                                        "this connection was not offered")
                try:
                    if kind == RESET:
                        seed = header.get("seed")
                        if seed is not None and (not isinstance(seed, int) or isinstance(seed, bool)
                                                 or not 0 <= seed < 2 ** 64):
                            raise ProtocolError(f"RESET seed must be null or a u64, got {seed!r}")
                        head, blobs = observation_message(
                            self.env.reset(seed), shared=shared if header.get("shm") else None)
                    else:
                        obs, reward, terminated, truncated, success, values = \
                            self.env.step(header.get("action"))
                        head, blobs = observation_message(
                            obs, reward, terminated, truncated, success, values,
                            shared=shared if header.get("shm") else None)
                except (NeedsReset, InvalidAction) as e:
                    send_error(conn, e)
                    continue
                except (ProtocolError, ClientGone):
                    raise
                except Exception as e:  # the simulator failed: report, keep the connection
                    self.env.running = False
                    log(f"{type(e).__name__}: {e}")
                    send_error(conn, BridgeError(f"{type(e).__name__}: {e}"))
                    continue
                send_message(conn, OBS, head, blobs)
        except ClientGone:
            return
        except BridgeError as e:
            log(f"closing a connection: {e.kind}: {e}")
            send_error(conn, e)
            close_gracefully(conn)
        except OSError:  # the connection broke
            return
        finally:
            if shared is not None:
                shared.close()

    def close(self):
        if self.env is not None:
            self.env.close()
            self.env = None


def listen(address):
    """Binds `tcp:HOST:PORT` or `unix:PATH`; returns (socket, the address actually bound)."""
    scheme, sep, rest = address.partition(":")
    if scheme == "tcp" and sep:
        host, _, port = rest.rpartition(":")
        if not host or not port.isdigit():
            raise ConfigError(f"--listen {address!r}: expected tcp:HOST:PORT (port 0 picks one)")
        sock = socket.socket(socket.AF_INET6 if ":" in host else socket.AF_INET)
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.bind((host.strip("[]"), int(port)))
        sock.listen(8)
        bound = sock.getsockname()
        return sock, f"tcp:{host}:{bound[1]}"
    if scheme == "unix" and sep and rest:
        if os.path.exists(rest):
            probe = socket.socket(socket.AF_UNIX)
            try:
                probe.connect(rest)
                raise ConfigError(f"--listen {address!r}: a server already listens there")
            except (ConnectionRefusedError, FileNotFoundError):
                os.unlink(rest)  # a stale socket left by a dead server
            finally:
                probe.close()
        sock = socket.socket(socket.AF_UNIX)
        sock.bind(rest)
        sock.listen(8)
        return sock, f"unix:{rest}"
    raise ConfigError(f"--listen {address!r}: expected tcp:HOST:PORT or unix:PATH")


def watch_stdin():
    """Exits (through SIGTERM's clean path) when stdin reaches EOF: the parent has gone."""
    try:
        while sys.stdin.buffer.read(4096):
            pass
    except (OSError, ValueError):
        pass
    os.kill(os.getpid(), signal.SIGTERM)


def on_sigterm(signum, frame):
    raise SystemExit(0)


def parse_args(argv):
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--env", required=True, help="environment id, e.g. vizdoom:my_way_home")
    p.add_argument("--listen", default="tcp:127.0.0.1:0", help="tcp:HOST:PORT or unix:PATH")
    p.add_argument("--option", action="append", default=[], metavar="KEY=VALUE",
                   help="an adapter option (repeatable); values read as bool/int/float/text")
    p.add_argument("--options-json", default=None, metavar="JSON",
                   help="adapter options as one JSON object (exact types); --option wins")
    p.add_argument("--exit-on-stdin-eof", action="store_true",
                   help="exit when stdin closes (set by a parent that spawned the server)")
    return p.parse_args(argv)


def options_from_args(args):
    options = {}
    if args.options_json:
        try:
            options = json.loads(args.options_json)
        except ValueError as e:
            raise ConfigError(f"--options-json is not JSON: {e}") from None
        if not isinstance(options, dict):
            raise ConfigError("--options-json must be a JSON object")
    for item in args.option:
        key, sep, value = item.partition("=")
        if not sep or not key:
            raise ConfigError(f"--option {item!r}: expected KEY=VALUE")
        options[key.strip()] = parse_option_value(value)
    return options


def main(argv=None):
    args = parse_args(argv)
    try:
        server = Server(args.env, options_from_args(args))
        listener, address = listen(args.listen)
    except BridgeError as e:
        print("ERROR " + json.dumps({"kind": e.kind, "message": str(e)}), flush=True)
        return 2
    signal.signal(signal.SIGTERM, on_sigterm)
    print(f"READY {address}", flush=True)
    # From here on, stdout (the simulator's chatter included) goes to stderr.
    os.dup2(2, 1)
    if args.exit_on_stdin_eof:
        threading.Thread(target=watch_stdin, daemon=True).start()
    try:
        while True:
            conn, _ = listener.accept()
            try:
                if conn.family != socket.AF_UNIX:
                    conn.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
                # Room for a whole frame in flight, so sending one never waits on the reader
                # (the kernel caps this at net.core.wmem_max).
                conn.setsockopt(socket.SOL_SOCKET, socket.SO_SNDBUF, SEND_BUFFER)
                server.serve(conn)
            finally:
                conn.close()
    except KeyboardInterrupt:
        pass
    finally:
        listener.close()
        if address.startswith("unix:"):
            try:
                os.unlink(address[5:])
            except OSError:
                pass
        server.close()
    return 0


if __name__ == "__main__":
    sys.exit(main())
