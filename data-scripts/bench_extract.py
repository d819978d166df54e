#!/usr/bin/env python3
"""Extraction throughput, sslbench against PyTorch eager, same machine, same run.

Both sides run the whole SVM-protocol pipeline on the same real photos (copies of the
scikit-image samples fetched by fetch_samples.sh): decode, resize shorter side to 256, squash
to 224 (227 for the Jigsaw AlexNet), normalise, forward, pool every tap per protocols.md
section 1. Random weights (throughput does not depend on them), 2 threads, batch 16.
sslbench runs from an empty cache each time, so every forward pass is counted.

Needs data-scripts/bench-requirements.txt (pip install -r) and `cargo build --release`.
Prints a Markdown table.
    python3 data-scripts/bench_extract.py [--images 48] [--repeats 2] [--bin PATH] [--set K=V]
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


def torch_pipeline(paths, size, model, taps_fn, table, batch=16, channels_last=False,
                   device="cpu"):
    tf = torchvision.transforms.Compose([
        torchvision.transforms.Resize(256), torchvision.transforms.Resize((size, size)),
        torchvision.transforms.ToTensor(),
        torchvision.transforms.Normalize([0.485, 0.456, 0.406], [0.229, 0.224, 0.225])])
    with torch.no_grad():
        for i in range(0, len(paths), batch):
            x = torch.stack([tf(Image.open(p).convert("RGB")) for p in paths[i:i + batch]])
            x = x.to(device)
            if channels_last:
                x = x.contiguous(memory_format=torch.channels_last)
            for tap, m in taps_fn(x).items():
                if tap in table:
                    k, s, p = table[tap]
                    F.avg_pool2d(m, k, s, p, count_include_pad=True).flatten(1).cpu()


def sslbench(binary, folder, backbone, taps, extra):
    cache = tempfile.mkdtemp()
    env = dict(os.environ, SSLBENCH_CACHE=cache, RAYON_NUM_THREADS="2")
    subprocess.run([binary, "extract", *extra,
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
    ap.add_argument("--bin", default=os.path.join(ROOT, "target", "release", "sslbench"),
                    help="the sslbench binary to time (default: the release build)")
    ap.add_argument("--device", default="cpu", help="cpu or cuda:N, for both sides")
    ap.add_argument("--set", action="append", default=[], metavar="KEY=VALUE",
                    help="extra --set for sslbench, e.g. compute.precision=bf16")
    args = ap.parse_args()
    extra = [a for kv in args.set for a in ("--set", kv)] + ["--device", args.device]
    device = "cpu" if args.device == "cpu" else args.device
    torch.set_num_threads(2)
    folder = tempfile.mkdtemp()
    paths = photo_folder(folder, args.images)
    cfg = os.path.join(ROOT, "configs", "backbones")

    resnet = WidthResNet50(1.0).eval().to(device)
    jig = jigsaw_alexnet([96, 256, 384, 384, 256]).eval().to(device)
    rows = [
        ("ResNet-50, taps conv1..res5 + pool5", "resnet50_random.toml", "conv1,res2,res3,res4,res5,pool5",
         lambda cl: torch_pipeline(paths, 224, resnet, resnet.taps, RESNET_POOL, channels_last=cl,
                                   device=device)),
        ("Jigsaw AlexNet (227), taps conv1..conv5 + pool5", "alexnet_jigsaw_random.toml",
         "conv1,conv2,conv3,conv4,conv5,pool5",
         lambda cl: torch_pipeline(paths, 227, jig, lambda x: jigsaw_taps(jig, x), JIGSAW_POOL,
                                   channels_last=cl, device=device)),
    ]
    # The reference is the faster of PyTorch's NCHW and channels-last layouts.
    print(f"| backbone | images | sslbench img/s | PyTorch {torch.__version__} NCHW img/s "
          "| channels-last img/s | ratio to the faster |")
    print("|---|---|---|---|---|---|")
    for name, toml, taps, reference in rows:
        ours = best(lambda: sslbench(args.bin, folder, os.path.join(cfg, toml), taps, extra),
                    args.repeats)
        nchw = best(lambda: reference(False), args.repeats)
        nhwc = best(lambda: reference(True), args.repeats)
        n = args.images
        print(f"| {name} | {n} | {n / ours:.2f} | {n / nchw:.2f} | {n / nhwc:.2f} "
              f"| {min(nchw, nhwc) / ours:.2f}x |", flush=True)
    shutil.rmtree(folder)


if __name__ == "__main__":
    main()
