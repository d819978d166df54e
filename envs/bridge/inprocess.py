#!/usr/bin/env python3
"""Drives a gym_bridge environment in-process (no socket), for the bridge's tests and benchmark.

    inprocess.py record --env vizdoom:my_way_home --seed 7 --actions 0,1,2,0 --out frames.bin
        Resets with the seed, takes the actions, writes every observation (the reset's first)
        to --out as raw bytes: RGB u8 HxWx3, then depth f32 LE HxW and goal f32 LE when the
        space has them; and one JSON line per step (reward, terminated, truncated, success)
        to --out + ".json". Stops early when the episode ends.
    inprocess.py bench --env vizdoom:my_way_home --seed 1 --actions-file actions.txt
        Steps through the actions, resetting with seed, seed+1, ... at episode ends; prints
        {"steps", "seconds", "steps_per_s", "episodes"} as JSON.

Both go through gym_bridge.Environment, the class the server steps, so the frames are the
server's frames up to the socket.
"""

import argparse
import json
import os
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import gym_bridge  # noqa: E402


def read_actions(args):
    text = args.actions if args.actions is not None else open(args.actions_file).read()
    return [int(a) for a in text.replace(",", " ").split()]


def record(env, args):
    actions = read_actions(args)
    steps = []
    with open(args.out, "wb") as out:
        def write(obs):
            for blob in obs:
                if blob is not None:
                    out.write(memoryview(blob).cast("B"))
        write(env.reset(args.seed))
        for action in actions:
            obs, reward, terminated, truncated, success, values = env.step(action)
            write(obs)
            steps.append({"reward": reward, "terminated": terminated, "truncated": truncated,
                          "success": success, "values": values})
            if terminated or truncated:
                break
    with open(args.out + ".json", "w") as f:
        for s in steps:
            f.write(json.dumps(s) + "\n")


def bench(env, args):
    actions = read_actions(args)
    episodes = 0
    start = time.perf_counter()
    env.reset(args.seed)
    for action in actions:
        _, _, terminated, truncated, _, _ = env.step(action)
        if terminated or truncated:
            episodes += 1
            env.reset(args.seed + episodes)
    seconds = time.perf_counter() - start
    print(json.dumps({"steps": len(actions), "seconds": seconds,
                      "steps_per_s": len(actions) / seconds, "episodes": episodes}))


def main():
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("mode", choices=["record", "bench"])
    p.add_argument("--env", required=True)
    p.add_argument("--option", action="append", default=[], metavar="KEY=VALUE")
    p.add_argument("--options-json", default=None)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--actions", default=None, help="comma-separated actions")
    p.add_argument("--actions-file", default=None, help="a file of whitespace-separated actions")
    p.add_argument("--out", default=None, help="record: the frames file")
    args = p.parse_args()
    if (args.actions is None) == (args.actions_file is None):
        p.error("give exactly one of --actions and --actions-file")
    if args.mode == "record" and not args.out:
        p.error("record needs --out")
    try:
        env = gym_bridge.build(args.env, gym_bridge.options_from_args(args))
    except gym_bridge.BridgeError as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    try:
        (record if args.mode == "record" else bench)(env, args)
    finally:
        env.close()
    return 0


if __name__ == "__main__":
    sys.exit(main())
