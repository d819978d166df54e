#!/usr/bin/env python3
"""Extraction throughput, sslbench against PyTorch eager, same machine, same run.

Both sides run the whole SVM-protocol pipeline on the same real photos (copies of the
scikit-image samples fetched by fetch_samples.sh): decode, resize shorter side to 256, squash
to 224 (227 for the Jigsaw AlexNet), normalise, forward, pool every tap per protocols.md
section 1. Random weights (throughput does not depend on them), 2 threads, batch 16.
sslbench runs from an empty cache each time, so every forward pass is counted.

Needs: torch, torchvision, pillow (pip) and `cargo build --release`. Prints a Markdown table.
    python3 data-scripts/bench_extract.py [--images 48] [--repeats 2]
"""
import argparse, os, shutil, subprocess, sys, tempfile, time

import torch
import torch.nn.functional as F
import torchvision
from PIL import Image

ROOT = os.path.abspath(os.path.join(os.path.dirname(__file__), ".."))
sys.path.insert(0, os.path.dirname(__file__))
from make_parity_fixtures import (WidthResNet50, jigsaw_alexnet, jigsaw_taps,  # noqa: E402
                                  RESNET_POOL, JIGSAW_POOL)

PHOTOS = ["astronaut.png", "chelsea.png", "coffee.png", "rocket.jpg", "motorcycle_left.png"]


def photo_folder(dst, n):
    src = os.path.join(ROOT, "data", "samples", "skimage")
    os.makedirs(os.path.join(dst, "photos"))
    for i in range(n):
        name = PHOTOS[i % len(PHOTOS)]
        shutil.copy(os.path.join(src, name), os.path.join(dst, "photos", f"{i:04d}_{name}"))
    return sorted(os.path.join(dst, "photos", f) for f in os.listdir(os.path.join(dst, "photos")))


def torch_pipeline(paths, size, model, taps_fn, table, batch=16):
    tf = torchvision.transforms.Compose([
        torchvision.transforms.Resize(256), torchvision.transforms.Resize((size, size)),
        torchvision.transforms.ToTensor(),
        torchvision.transforms.Normalize([0.485, 0.456, 0.406], [0.229, 0.224, 0.225])])
    with torch.no_grad():
        for i in range(0, len(paths), batch):
            x = torch.stack([tf(Image.open(p).convert("RGB")) for p in paths[i:i + batch]])
            for tap, m in taps_fn(x).items():
                if tap in table:
                    k, s, p = table[tap]
                    F.avg_pool2d(m, k, s, p, count_include_pad=True).flatten(1)


def sslbench(folder, backbone, taps):
    cache = tempfile.mkdtemp()
    env = dict(os.environ, SSLBENCH_CACHE=cache, RAYON_NUM_THREADS="2")
    subprocess.run([os.path.join(ROOT, "target", "release", "sslbench"), "extract",
                    "--backbone", backbone, "--dataset", f"imagefolder:{folder}", "--taps", taps,
                    "--set", "extract.batch_size=16"], check=True, env=env,
                   stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    shutil.rmtree(cache)


def best(fn, repeats):
    times = []
    for _ in range(repeats):
        t = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t)
    return min(times)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--images", type=int, default=48)
    ap.add_argument("--repeats", type=int, default=2)
    args = ap.parse_args()
    torch.set_num_threads(2)
    folder = tempfile.mkdtemp()
    paths = photo_folder(folder, args.images)
    cfg = os.path.join(ROOT, "configs", "backbones")

    resnet = WidthResNet50(1.0).eval()
    jig = jigsaw_alexnet([96, 256, 384, 384, 256]).eval()
    rows = [
        ("ResNet-50, taps conv1..res5 + pool5", "resnet50_random.toml", "conv1,res2,res3,res4,res5,pool5",
         lambda: torch_pipeline(paths, 224, resnet, resnet.taps, RESNET_POOL)),
        ("Jigsaw AlexNet (227), taps conv1..conv5 + pool5", "alexnet_jigsaw_random.toml",
         "conv1,conv2,conv3,conv4,conv5,pool5",
         lambda: torch_pipeline(paths, 227, jig, lambda x: jigsaw_taps(jig, x), JIGSAW_POOL)),
    ]
    print(f"| backbone | images | sslbench img/s | PyTorch {torch.__version__} img/s | ratio |")
    print("|---|---|---|---|---|")
    for name, toml, taps, reference in rows:
        ours = best(lambda: sslbench(folder, os.path.join(cfg, toml), taps), args.repeats)
        theirs = best(reference, args.repeats)
        n = args.images
        print(f"| {name} | {n} | {n / ours:.2f} | {n / theirs:.2f} | {theirs / ours:.2f}x |", flush=True)
    shutil.rmtree(folder)


if __name__ == "__main__":
    main()
