#!/usr/bin/env python3
"""Pretext training throughput on CPU, sslbench against PyTorch eager, same machine, same run.

Two pretext tasks on a ResNet-50 trunk (torchvision layout, v1.5), trained from random weights
with SGD (momentum 0.9, weight decay) in float32, in train mode (BatchNorm batch statistics):

- rotation (Gidaris et al.): B images of S x S, each in its 4 rotations (0/90/180/270 degrees,
  torch.rot90) -> 4B trunk inputs -> 2048-d pool -> FC to 4 -> cross-entropy.
- jigsaw (Noroozi and Favaro, VISSL's siamese ResNet-50): B images of 9 tiles of T x T each ->
  9B trunk inputs -> 2048-d pool per tile, the 9 of an image concatenated (9 x 2048) -> FC to
  |P| permutations -> cross-entropy.

A step is zero_grad + forward + loss + backward + SGD step. Data loading is measured on
neither side: PyTorch gets random tensors built before timing (the rotated copies and the
tiles included). images/s counts source images (B per step), inputs/s trunk inputs (4B or 9B
per step); both are B (or 4B, 9B) over the median step time of the timed steps, after
--warmup untimed steps. Ratios > 1 mean sslbench is faster.

sslbench side: `sslbench pretrain configs/pretext/bench_{rotation,jigsaw}.toml --out DIR
--set train.steps=WARMUP+STEPS --set train.batch_size=B --set model.width=W` plus the task's
--set lines (ROTATION_SETS / JIGSAW_SETS below, then --rotation-set / --jigsaw-set, then
--ours-args), RAYON_NUM_THREADS=--threads. Its DIR/log.csv gives images_per_s per logged step:
the first --warmup rows are skipped and the median of the rest taken. When the binary or a
config is missing (or the run fails) only PyTorch is measured, and the table says so. The
sslbench config, with the --set lines applied, is read back and any tile / permutation /
size key whose value differs from the PyTorch settings is reported as a mismatch.

--width scales every ResNet-50 width (stem 64w, bottleneck planes 64w..512w, outputs 4x those,
pool 2048w; the SwAV/VISSL resnet50wN rule, rounded as sslbench rounds: max(1, round(64w))),
for short runs on a small machine. Width 1 is torchvision.models.resnet50(weights=None) itself.

Needs: torch, torchvision (pip), and `cargo build --release` for the sslbench side. E.g.
    python3 data-scripts/bench_pretrain.py --batch 8 --steps 10 --warmup 2 --json bench.json
    python3 data-scripts/bench_pretrain.py --batch 4 --size 64 --tile 32 --steps 3 --width 0.25
"""
import argparse
import csv
import json
import math
import os
import platform
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
import tomllib

import torch
import torch.nn as nn
import torch.nn.functional as F
import torchvision
from torchvision.models.resnet import Bottleneck, ResNet

ROOT = os.path.abspath(os.path.join(os.path.dirname(__file__), ".."))
CONFIGS = {
    "rotation": os.path.join("configs", "pretext", "bench_rotation.toml"),
    "jigsaw": os.path.join("configs", "pretext", "bench_jigsaw.toml"),
}
# The task-specific --set lines given to sslbench by default; {size}, {tile}, {perms} are
# replaced by the arguments (the keys of configs/pretext/*.toml: the Rotation input side, the
# Jigsaw patch side and |P|).
ROTATION_SETS = ["transform.size={size}"]
JIGSAW_SETS = ["jigsaw.patch={tile}", "permutations.count={perms}"]
ROTATIONS = 4
TILES = 9
OURS = "sslbench"
THEIRS = "PyTorch " + torch.__version__.split("+")[0]


class WidthResNet50(ResNet):
    """torchvision's ResNet-50 (Bottleneck, [3, 4, 6, 3]) with every width scaled by `width`:
    built directly at that width with torchvision's own `_make_layer` and initialisation."""

    def __init__(self, width, num_classes):
        nn.Module.__init__(self)
        base = max(1, round(64 * width))
        # The attributes torchvision's _make_layer reads.
        self._norm_layer, self.inplanes, self.dilation = nn.BatchNorm2d, base, 1
        self.groups, self.base_width = 1, 64
        self.conv1 = nn.Conv2d(3, base, kernel_size=7, stride=2, padding=3, bias=False)
        self.bn1 = nn.BatchNorm2d(base)
        self.relu = nn.ReLU(inplace=True)
        self.maxpool = nn.MaxPool2d(kernel_size=3, stride=2, padding=1)
        self.layer1 = self._make_layer(Bottleneck, base, 3)
        self.layer2 = self._make_layer(Bottleneck, base * 2, 4, stride=2)
        self.layer3 = self._make_layer(Bottleneck, base * 4, 6, stride=2)
        self.layer4 = self._make_layer(Bottleneck, base * 8, 3, stride=2)
        self.avgpool = nn.AdaptiveAvgPool2d((1, 1))
        self.fc = nn.Linear(base * 8 * Bottleneck.expansion, num_classes)
        for m in self.modules():  # torchvision's initialisation
            if isinstance(m, nn.Conv2d):
                nn.init.kaiming_normal_(m.weight, mode="fan_out", nonlinearity="relu")
            elif isinstance(m, nn.BatchNorm2d):
                nn.init.constant_(m.weight, 1)
                nn.init.constant_(m.bias, 0)


def resnet50(width, num_classes):
    """ResNet-50 at `width` with an FC to `num_classes` on its pool."""
    if width == 1:
        return torchvision.models.resnet50(weights=None, num_classes=num_classes)
    return WidthResNet50(width, num_classes)


class SiameseJigsaw(nn.Module):
    """One trunk on each of the 9 tiles of an image, pools concatenated, FC to |P|."""

    def __init__(self, width, perms):
        super().__init__()
        self.trunk = resnet50(width, 1)
        pool = self.trunk.fc.in_features
        self.trunk.fc = nn.Identity()
        self.head = nn.Linear(TILES * pool, perms)

    def forward(self, tiles):  # (9B, 3, T, T), image-major: the 9 tiles of image 0 first
        pooled = self.trunk(tiles)
        return self.head(pooled.reshape(-1, TILES * pooled.shape[1]))


def torch_task(task, args):
    """The model, its inputs and its labels for `task` (random data, seeded)."""
    g = torch.Generator().manual_seed(0)
    b = args.batch
    if task == "rotation":
        model = resnet50(args.width, ROTATIONS)
        images = torch.randn(b, 3, args.size, args.size, generator=g)
        inputs = torch.cat([torch.rot90(images, k, dims=(2, 3)) for k in range(ROTATIONS)])
        labels = torch.arange(ROTATIONS).repeat_interleave(b)
    else:
        model = SiameseJigsaw(args.width, args.perms)
        inputs = torch.randn(b * TILES, 3, args.tile, args.tile, generator=g)
        labels = torch.randint(args.perms, (b,), generator=g)
    return model, inputs, labels


def run_torch(task, args):
    """Time `args.steps` PyTorch training steps after `args.warmup` untimed ones."""
    torch.manual_seed(0)
    model, inputs, labels = torch_task(task, args)
    device = torch.device(args.device)
    model, inputs, labels = model.to(device), inputs.to(device), labels.to(device)
    model.train()
    opt = torch.optim.SGD(model.parameters(), lr=args.lr, momentum=0.9,
                          weight_decay=args.weight_decay)
    times, losses = [], []
    for i in range(args.warmup + args.steps):
        start = time.perf_counter()
        opt.zero_grad(set_to_none=True)
        loss = F.cross_entropy(model(inputs), labels)
        loss.backward()
        opt.step()
        elapsed = time.perf_counter() - start
        losses.append(loss.item())
        if i >= args.warmup:
            times.append(elapsed)
        print(f"  torch {task} step {i}{' (warm-up)' if i < args.warmup else ''}: "
              f"{elapsed:.3f} s, loss {losses[-1]:.4f}", flush=True)
    return {"step_seconds": times, "losses": losses}


def apply_set(doc, assignment):
    """Apply a dotted `key=value` (TOML value, else a string) to a parsed TOML document."""
    key, _, value = assignment.partition("=")
    try:
        value = tomllib.loads("v = " + value)["v"]
    except tomllib.TOMLDecodeError:
        pass
    *parents, last = key.strip().split(".")
    for p in parents:
        doc = doc.setdefault(p, {})
    doc[last] = value


def leaves(doc, prefix=""):
    """(dotted key, value) of every non-table value of a TOML document."""
    for k, v in doc.items():
        if isinstance(v, dict):
            yield from leaves(v, prefix + k + ".")
        else:
            yield prefix + k, v


def mismatches(task, config, sets, args):
    """Keys of the sslbench config (with `sets` applied) that look like this benchmark's
    size / tile / permutation count and disagree with the PyTorch settings."""
    doc = tomllib.load(open(config, "rb"))
    for s in sets:
        apply_set(doc, s)
    size = ("size", "image_size", "crop", "crop_size")
    tile = ("tile", "tile_size", "patch", "patch_size")
    perms = ("perms", "num_perms", "permutations", "num_permutations", "num_classes")
    want = {"rotation": [(size, args.size)], "jigsaw": [(tile, args.tile), (perms, args.perms)]}
    found = []
    for key, value in leaves(doc):
        name = key.rsplit(".", 1)[-1].lower()
        for names, expected in want[task]:
            if name in names and isinstance(value, int) and not isinstance(value, bool) \
                    and value != expected:
                found.append(f"{key} = {value} (PyTorch: {expected})")
    return doc, found


def ours_sets(task, args):
    """The --set lines of the sslbench run of `task`."""
    fill = dict(size=args.size, tile=args.tile, perms=args.perms)
    task_sets = ROTATION_SETS + args.rotation_set if task == "rotation" \
        else JIGSAW_SETS + args.jigsaw_set
    return [f"train.steps={args.warmup + args.steps}", f"train.batch_size={args.batch}",
            f"model.width={args.width}"] + [s.format(**fill) for s in task_sets]


def run_ours(task, args, workdir):
    """Run `sslbench pretrain` for `task`: its per-step times from log.csv, or why not."""
    binary = args.sslbench if os.path.isabs(args.sslbench) else os.path.join(ROOT, args.sslbench)
    config = os.path.join(ROOT, CONFIGS[task])
    for path, what in ((binary, "binary"), (config, "config")):
        if not os.path.exists(path):
            shown = os.path.relpath(path, ROOT) if path.startswith(ROOT + os.sep) else path
            return {"skipped": f"no sslbench {what} at {shown}"}
    sets = ours_sets(task, args)
    out = os.path.join(workdir, task)
    command = [binary, "pretrain", config, "--out", out]
    for s in sets:
        command += ["--set", s]
    command += args.ours_args.split() + ["--device", args.device]
    result = {"command": " ".join(command)}
    try:
        result["config"], result["mismatches"] = mismatches(task, config, sets, args)
    except (OSError, tomllib.TOMLDecodeError) as e:
        result["mismatches"] = [f"config not read back: {e}"]
    print("$ " + result["command"], flush=True)
    env = dict(os.environ, RAYON_NUM_THREADS=str(args.threads))
    start = time.perf_counter()
    done = subprocess.run(command, cwd=ROOT, env=env, capture_output=True, text=True)
    result["process_seconds"] = time.perf_counter() - start
    if done.returncode != 0:
        tail = (done.stderr or done.stdout).strip().splitlines()[-5:]
        print("\n".join("  " + line for line in tail), file=sys.stderr, flush=True)
        result["skipped"] = f"sslbench exited with status {done.returncode}"
        return result
    log = os.path.join(out, "log.csv")
    try:
        rows = list(csv.DictReader(open(log)))
        rates = [float(r["images_per_s"]) for r in rows]
    except (OSError, KeyError, ValueError) as e:
        result["skipped"] = f"no usable {log}: {e}"
        return result
    result["losses"] = [float(r["loss"]) for r in rows if r.get("loss")]
    timed = [r for r in rates[args.warmup:] if r > 0]
    if not timed:
        result["skipped"] = (f"log.csv has {len(rows)} rows, none after {args.warmup} "
                             "warm-up with images_per_s > 0")
        return result
    result["step_seconds"] = [args.batch / r for r in timed]
    return result


def row(task, side, args, run):
    """A table row from a run's timed step seconds."""
    per_image = ROTATIONS if task == "rotation" else TILES
    size = args.size if task == "rotation" else args.tile
    r = {"task": task, "side": side, "batch": args.batch, "size": size, "width": args.width}
    if "step_seconds" not in run:
        r["note"] = run.get("skipped", "not run")
        return r
    median = statistics.median(run["step_seconds"])
    r.update(steps_timed=len(run["step_seconds"]), median_step_seconds=median,
             mean_step_seconds=statistics.fmean(run["step_seconds"]),
             images_per_s=args.batch / median, inputs_per_s=args.batch * per_image / median)
    return r


def table(rows):
    """The Markdown table; ratio = sslbench images/s over PyTorch images/s of the same task."""
    lines = ["| task | side | batch | size | images/s | inputs/s | median step s "
             "| ratio sslbench/PyTorch |", "|---|---|---|---|---|---|---|---|"]
    for r in rows:
        size = f"{r['size']}x{r['size']}" + (" tiles" if r["task"] == "jigsaw" else "")
        if "images_per_s" not in r:
            lines.append(f"| {r['task']} | {r['side']} | {r['batch']} | {size} "
                         f"| - | - | - | ({r['note']}) |")
            continue
        ours = [o for o in rows if o["task"] == r["task"] and o["side"] == OURS]
        ratio = "-"
        if r["side"] != OURS and ours and "images_per_s" in ours[0]:
            ratio = f"{ours[0]['images_per_s'] / r['images_per_s']:.2f}x"
        elif r["side"] == OURS:
            ratio = "1"
        lines.append(f"| {r['task']} | {r['side']} | {r['batch']} | {size} "
                     f"| {r['images_per_s']:.2f} | {r['inputs_per_s']:.2f} "
                     f"| {r['median_step_seconds']:.3f} | {ratio} |")
    return "\n".join(lines)


def parse_args():
    p = argparse.ArgumentParser(description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--tasks", default="rotation,jigsaw", help="comma list: rotation,jigsaw")
    p.add_argument("--batch", type=int, default=8, help="source images per step (B)")
    p.add_argument("--size", type=int, default=224, help="rotation image side (S)")
    p.add_argument("--tile", type=int, default=64, help="jigsaw tile side (T)")
    p.add_argument("--perms", type=int, default=1000, help="jigsaw permutation classes |P|")
    p.add_argument("--steps", type=int, default=10, help="timed steps")
    p.add_argument("--warmup", type=int, default=2, help="untimed steps first")
    p.add_argument("--width", type=float, default=1.0, help="ResNet-50 width multiplier")
    p.add_argument("--lr", type=float, default=0.001, help="SGD learning rate (0.01 diverges "
                   "on the tiny settings; throughput does not depend on it while finite)")
    p.add_argument("--weight-decay", type=float, default=1e-4)
    p.add_argument("--threads", type=int, default=os.cpu_count(),
                   help="torch.set_num_threads and RAYON_NUM_THREADS (default: all cores)")
    p.add_argument("--sslbench", default="target/release/sslbench",
                   help="the sslbench binary (a relative path is taken from the repository root)")
    p.add_argument("--rotation-set", action="append", default=[], metavar="KEY=VALUE",
                   help="another sslbench --set for rotation ({size} {tile} {perms} filled)")
    p.add_argument("--jigsaw-set", action="append", default=[], metavar="KEY=VALUE",
                   help="another sslbench --set for jigsaw, e.g. 'data.tile={tile}'")
    p.add_argument("--ours-args", default="", help="more sslbench pretrain arguments")
    p.add_argument("--device", default="cpu", help="cpu or cuda:N, for both sides")
    p.add_argument("--skip-ours", action="store_true", help="measure PyTorch only")
    p.add_argument("--skip-torch", action="store_true", help="measure sslbench only")
    p.add_argument("--keep", help="keep the sslbench --out folders under this folder")
    p.add_argument("--json", help="write the report here")
    args = p.parse_args()
    args.tasks = [t.strip() for t in args.tasks.split(",") if t.strip()]
    for t in args.tasks:
        if t not in CONFIGS:
            p.error(f"unknown task {t!r} (rotation, jigsaw)")
    if min(args.batch, args.size, args.tile, args.perms, args.steps, args.threads) < 1 \
            or args.warmup < 0 or args.width <= 0:
        p.error("--batch, --size, --tile, --perms, --steps, --threads must be >= 1, "
                "--warmup >= 0, --width > 0")
    return args


def main():
    args = parse_args()
    torch.set_num_threads(args.threads)
    print(f"{THEIRS}, torchvision {torchvision.__version__}, {args.threads} threads, "
          f"{os.cpu_count()} cores, {platform.processor() or platform.machine()}", flush=True)
    workdir = args.keep or tempfile.mkdtemp(prefix="bench_pretrain.")
    rows, runs, notes = [], {}, []
    for task in args.tasks:
        if not args.skip_ours:
            ours = run_ours(task, args, workdir)
            runs[f"{task}/{OURS}"] = ours
            rows.append(row(task, OURS, args, ours))
            if "skipped" in ours:
                notes.append(f"{task}: sslbench not measured: {ours['skipped']}")
            for m in ours.get("mismatches", []):
                notes.append(f"{task}: sslbench config differs from the PyTorch side: {m}")
        if not args.skip_torch:
            theirs = run_torch(task, args)
            runs[f"{task}/{THEIRS}"] = theirs
            rows.append(row(task, THEIRS, args, theirs))
        for side in (OURS, THEIRS):
            losses = runs.get(f"{task}/{side}", {}).get("losses", [])
            if not all(math.isfinite(v) for v in losses):
                notes.append(f"{task}: {side} loss went non-finite: timings may be off")
    report = {
        "settings": {k: v for k, v in vars(args).items() if k not in ("keep", "json")},
        "machine": {"cores": os.cpu_count(), "platform": platform.platform(),
                    "python": platform.python_version(), "torch": torch.__version__,
                    "torchvision": torchvision.__version__},
        "definitions": "images/s = B / median step s (source images); inputs/s = trunk "
                       "inputs (4B rotation, 9B jigsaw tiles) / median step s; ratio = "
                       "sslbench images/s / PyTorch images/s",
        "rows": rows, "runs": runs, "notes": notes, "table": table(rows),
    }
    print("\n" + report["table"])
    for n in notes:
        print("- " + n)
    if args.json:
        with open(args.json, "w") as f:
            json.dump(report, f, indent=1, default=str)
        print("report: " + args.json)
    if not args.keep:
        shutil.rmtree(workdir, ignore_errors=True)


if __name__ == "__main__":
    main()
