#!/usr/bin/env python3
"""Time `sslbench svm` against the scikit-learn reference (svm_reference.py) on the same
synthetic VOC07-shaped features, in one run on one machine, and compare their results.

Features: seeded, float32, non-negative like post-ReLU pooled features. Each of the 20 classes
has a random direction; an image's pre-activation is the sum of the directions of the classes
it holds (scaled by a per-class strength, halved for difficult-only objects), plus a shared
image-content component and Gaussian noise, then ReLU. Targets follow the devkit (1 / -1 / 0)
with VOC07 trainval's per-class image rates (person ~40%, the others 2-14%). Written into
--data-dir as {train,test}_{features,targets}.npy with meta.json; regenerated when the
parameters change.

The reference is slow at full shape (FAIR's 26 costs x 3 folds per class: 1.5 to 4 minutes a
class on one core here, so 30 to 75 minutes for 20): --sklearn-classes K runs K classes spread
evenly over the class list and extrapolates its wall time linearly to all classes (the report
says so). Both sides get the same files; ours gets a fresh resume cache. Usage, e.g.:
  bench_svm.py --sklearn-classes 2 --sklearn-jobs 1,2
  bench_svm.py --skip-ours --n-train 600 --n-test 600 --dim 512 --sklearn-classes 20
"""

import argparse
import json
import os
import resource
import shlex
import subprocess
import sys
import tempfile
import time

import numpy as np

# VOC07 class names and trainval images per class (the devkit's Table 1), in class order.
# fmt: off
VOC07_CLASSES = ["aeroplane", "bicycle", "bird", "boat", "bottle", "bus", "car", "cat", "chair",
                 "cow", "diningtable", "dog", "horse", "motorbike", "person", "pottedplant",
                 "sheep", "sofa", "train", "tvmonitor"]
VOC07_TRAINVAL_IMAGES = [238, 243, 330, 181, 244, 186, 713, 337, 445, 141,
                         200, 421, 287, 245, 2008, 245, 96, 229, 261, 256]
# fmt: on
VOC07_TRAINVAL_SIZE = 5011
DIFFICULT_SHARE = 0.1  # difficult-only images per positive image of a class
ZERO_FRACTION = 0.3  # share of feature values the ReLU zeroes
GENERATOR_VERSION = 2  # bump when the generator changes: cached data is then rebuilt
OURS = "sslbench svm"  # the name of our run in the table
REFERENCE = os.path.join(os.path.dirname(os.path.abspath(__file__)), "svm_reference.py")


def targets(rng, n):
    """N x 20 devkit targets: 1 present, 0 difficult only, -1 absent."""
    rates = np.array(VOC07_TRAINVAL_IMAGES) / VOC07_TRAINVAL_SIZE
    draw = rng.random((n, len(rates)))
    t = np.full((n, len(rates)), -1, dtype=np.int32)
    t[draw < rates * (1 + DIFFICULT_SHARE)] = 0
    t[draw < rates] = 1
    return t


def pre_activation(rng, t, directions, strength, content):
    """Float32 pre-activations for targets `t` (see the module doc)."""
    weight = (np.where(t == 1, 1.0, np.where(t == 0, 0.5, 0.0)) * strength).astype(np.float32)
    pre = weight @ directions
    pre += rng.standard_normal((len(t), content.shape[0]), dtype=np.float32) @ content
    pre += rng.standard_normal(pre.shape, dtype=np.float32)
    return pre


def generate(folder, n_train, n_test, dim, seed, signal):
    """Write the four .npy files and meta.json into `folder` unless they match already."""
    meta = {
        "generator": GENERATOR_VERSION,
        "n_train": n_train,
        "n_test": n_test,
        "dim": dim,
        "seed": seed,
        "signal": signal,
        "classes": VOC07_CLASSES,
    }
    meta_path = os.path.join(folder, "meta.json")
    if os.path.exists(meta_path) and json.load(open(meta_path)) == meta:
        return
    os.makedirs(folder, exist_ok=True)
    rng = np.random.default_rng(seed)
    c = len(VOC07_CLASSES)
    directions = rng.standard_normal((c, dim), dtype=np.float32)
    # Per-class strength: spread so the classes range from hard to easy.
    strength = signal * rng.uniform(0.5, 1.5, size=c)
    content = rng.standard_normal((32, dim), dtype=np.float32) * np.float32(0.3)
    threshold = None  # the ReLU's bias: set on the training set, kept for the test set
    for split, n in (("train", n_train), ("test", n_test)):
        t = targets(rng, n)
        pre = pre_activation(rng, t, directions, strength, content)
        if threshold is None:
            threshold = np.quantile(pre[:256], ZERO_FRACTION)
        np.save(os.path.join(folder, split + "_targets.npy"), t)
        np.save(
            os.path.join(folder, split + "_features.npy"), np.maximum(pre - threshold, 0, out=pre)
        )
    with open(meta_path, "w") as f:
        json.dump(meta, f, indent=1)


def timed(command):
    """Run `command` (output passed through): its (wall, CPU) seconds, the CPU ones summed
    over its processes (user + system). Exits when it fails."""
    print("$ " + " ".join(command), flush=True)
    cpu = resource.getrusage(resource.RUSAGE_CHILDREN)
    start = time.perf_counter()
    done = subprocess.run(command)
    wall = time.perf_counter() - start
    if done.returncode != 0:
        sys.exit("error: exit status %d from: %s" % (done.returncode, " ".join(command)))
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    return wall, after.ru_utime + after.ru_stime - cpu.ru_utime - cpu.ru_stime


def spread(k, n):
    """`k` class indices spread evenly over 0..n-1."""
    if not 1 <= k <= n:
        sys.exit("error: --sklearn-classes must lie in 1..%d" % n)
    return sorted({int(round(i)) for i in np.linspace(0, n - 1, k)})


def agreement(ours, ref):
    """Ours against the reference on the classes both ran."""
    mine = {e["index"]: e for e in ours["classes"]}
    common = [e for e in ref["classes"] if e["index"] in mine]
    pairs = [(mine[e["index"]], e) for e in common]
    return {
        "classes": [e["index"] for e in common],
        "map_ours": float(np.mean([a["test_ap"] for a, _ in pairs])),
        "map_sklearn": float(np.mean([b["test_ap"] for _, b in pairs])),
        "max_abs_dap": max(abs(a["test_ap"] - b["test_ap"]) for a, b in pairs),
        # CV APs pair up cost by cost only when both ran the same cost list.
        "max_abs_dcv_ap": (
            max(abs(x - y) for a, b in pairs for x, y in zip(a["cv_ap"], b["cv_ap"]))
            if len(ours["costs"]) == len(ref["costs"])
            and np.allclose(ours["costs"], ref["costs"], rtol=1e-12, atol=0)
            else None
        ),
        "costs_agree": sum(
            bool(np.isclose(a["cost"], b["cost"], rtol=1e-9, atol=0)) for a, b in pairs
        ),
        "per_class": [
            {
                "index": b["index"],
                "name": b["name"],
                "test_ap_ours": a["test_ap"],
                "test_ap_sklearn": b["test_ap"],
                "cost_ours": a["cost"],
                "cost_sklearn": b["cost"],
            }
            for a, b in pairs
        ],
    }


def table(rows, num_classes):
    """The Markdown table: timings, and each reference run against ours on their classes."""
    ours = rows[0] if rows and rows[0]["run"] == OURS else None
    lines = [
        "| run | classes run | wall s | CPU s | all %d classes s | x ours | mAP "
        "| mAP ours, same classes | max abs dAP | costs agree |" % num_classes,
        "|---|---|---|---|---|---|---|---|---|---|",
    ]
    for r in rows:
        ratio = "%.1f" % (r["all_classes_seconds"] / ours["all_classes_seconds"]) if ours else "-"
        linear = "" if r["classes_run"] == num_classes else " (linear est.)"
        a = r.get("agreement")
        versus = (
            "%.4f | %.2e | %d/%d"
            % (a["map_ours"], a["max_abs_dap"], a["costs_agree"], len(a["classes"]))
            if a
            else "- | - | -"
        )
        lines.append(
            "| %s | %d | %.1f | %.1f | %.1f%s | %s | %.4f | %s |"
            % (
                r["run"],
                r["classes_run"],
                r["seconds"],
                r["cpu_seconds"],
                r["all_classes_seconds"],
                linear,
                ratio,
                r["mAP"],
                versus,
            )
        )
    return "\n".join(lines)


def run_ours(args, files, folder):
    """Time `sslbench svm` on all classes: (wall seconds, CPU seconds, its result)."""
    out = os.path.join(folder, "ours.json")
    command = [args.sslbench, "svm"] + files + ["--classes", ",".join(VOC07_CLASSES)]
    # A fresh resume cache, or a second run would only read back the first one's work.
    with tempfile.TemporaryDirectory(dir=folder) as cache:
        command += ["--cache", cache, "--out", out] + shlex.split(args.ours_args)
        seconds = timed(command)
    return seconds + (json.load(open(out)),)


def run_reference(files, folder, classes, jobs):
    """Time svm_reference.py on `classes` with `jobs` workers: (wall s, CPU s, its result)."""
    out = os.path.join(folder, "sklearn_jobs%d.json" % jobs)
    command = [sys.executable, REFERENCE] + files + ["--classes", ",".join(VOC07_CLASSES)]
    command += ["--only-classes", ",".join(map(str, classes)), "--jobs", str(jobs), "--out", out]
    seconds = timed(command)
    return seconds + (json.load(open(out)),)


def parse_args():
    p = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    p.add_argument("--data-dir", default="data/bench-svm", help="features, targets and results")
    p.add_argument("--n-train", type=int, default=5011)
    p.add_argument("--n-test", type=int, default=4952)
    p.add_argument("--dim", type=int, default=9216)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument(
        "--signal",
        type=float,
        default=0.05,
        help="class signal strength (0.05: mAP ~0.5 at the full shape; raise it for a small --dim)",
    )
    p.add_argument("--sslbench", default="target/release/sslbench", help="the sslbench binary")
    p.add_argument("--ours-args", default="", help="more sslbench svm arguments, e.g. '--set ...'")
    p.add_argument("--skip-ours", action="store_true", help="time the reference only")
    p.add_argument(
        "--sklearn-classes",
        type=int,
        default=2,
        help="classes the reference runs (spread evenly; 0 = skip it)",
    )
    p.add_argument(
        "--sklearn-jobs", default="1", help="comma list of --jobs values to time, e.g. 1,2"
    )
    p.add_argument("--report", help="JSON report (default DATA_DIR/bench.json)")
    return p.parse_args()


def main():
    args = parse_args()
    d = args.data_dir
    start = time.perf_counter()
    generate(d, args.n_train, args.n_test, args.dim, args.seed, args.signal)
    print("data: %s (%.1f s)" % (d, time.perf_counter() - start))
    files = []
    for split, kind in [(s, k) for s in ("train", "test") for k in ("features", "targets")]:
        files += ["--%s-%s" % (split, kind), os.path.join(d, "%s_%s.npy" % (split, kind))]
    n = len(VOC07_CLASSES)

    runs = []  # (name, wall seconds, CPU seconds, result)
    if not args.skip_ours:
        runs.append((OURS,) + run_ours(args, files, d))
    if args.sklearn_classes:
        chosen = spread(args.sklearn_classes, n)
        for jobs in [int(j) for j in args.sklearn_jobs.split(",")]:
            name = "sklearn jobs=%d%s" % (jobs, " (FAIR)" if jobs == 1 else "")
            runs.append((name,) + run_reference(files, d, chosen, jobs))
    rows = []
    for name, seconds, cpu_seconds, result in runs:
        row = {"run": name, "classes_run": len(result["classes"]), "seconds": seconds}
        row["cpu_seconds"] = cpu_seconds
        row["all_classes_seconds"] = seconds * n / row["classes_run"]
        row["mAP"] = result["mAP"]
        if name != OURS and runs[0][0] == OURS:
            row["agreement"] = agreement(runs[0][3], result)
        rows.append(row)

    report = {
        "data": {
            "n_train": args.n_train,
            "n_test": args.n_test,
            "dim": args.dim,
            "seed": args.seed,
            "signal": args.signal,
        },
        "extrapolation": "a run of fewer than %d classes: its wall seconds x %d / classes run"
        % (n, n),
        "rows": rows,
        "table": table(rows, n),
    }
    print("\n" + report["table"])
    path = args.report or os.path.join(d, "bench.json")
    with open(path, "w") as f:
        json.dump(report, f, indent=1)
    print("report: " + path)


if __name__ == "__main__":
    main()
