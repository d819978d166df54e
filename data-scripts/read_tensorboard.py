#!/usr/bin/env python3
"""Reads a run folder's TensorBoard event files the way TensorBoard does and prints what it
holds as JSON:

  {"scalars": {tag: [[step, value], ...]},
   "images": {tag: [{"step", "width", "height", "decoded": [w, h]}, ...]},
   "server_steps": {tag: [step, ...]}}

`scalars` and `images` come from TensorBoard's EventAccumulator, `server_steps` (the steps of
each scalar and image tag) from the plugin EventAccumulator that `tensorboard --logdir DIR
--load_fast=false` serves from; both purge the steps a restarted run redid. `decoded` is the
size of the encoded PNG as Pillow reads it. NaN values are written as null.
Used by tests/tensorboard_events.rs: python3 data-scripts/read_tensorboard.py RUN_DIR
"""
import io
import json
import math
import os
import sys

from PIL import Image
from tensorboard.backend.event_processing import event_accumulator as ea
from tensorboard.backend.event_processing import plugin_event_accumulator as pea


def main(run_dir):
    if not os.path.isdir(run_dir):
        sys.exit(f"{run_dir} is not a folder: pass the run folder that holds the event files")
    # 0: keep every event (the default samples a reservoir of each tag).
    acc = ea.EventAccumulator(
        run_dir, size_guidance={ea.SCALARS: 0, ea.IMAGES: 0}, purge_orphaned_data=True
    )
    acc.Reload()
    tags = acc.Tags()
    scalars = {
        t: [[e.step, None if math.isnan(e.value) else e.value] for e in acc.Scalars(t)]
        for t in tags["scalars"]
    }
    images = {}
    for t in tags["images"]:
        images[t] = []
        for e in acc.Images(t):
            png = Image.open(io.BytesIO(e.encoded_image_string))
            png.load()
            images[t].append(
                {"step": e.step, "width": e.width, "height": e.height, "decoded": list(png.size)}
            )
    # The server's loader keeps scalars and images as tensors, every one with 0.
    served = pea.EventAccumulator(run_dir, size_guidance={pea.TENSORS: 0})
    served.Reload()
    server_steps = {t: [e.step for e in served.Tensors(t)] for t in served.Tags()["tensors"]}
    json.dump(
        {"scalars": scalars, "images": images, "server_steps": server_steps}, sys.stdout
    )


if __name__ == "__main__":
    if len(sys.argv) != 2:
        sys.exit("usage: read_tensorboard.py RUN_DIR")
    main(sys.argv[1])
