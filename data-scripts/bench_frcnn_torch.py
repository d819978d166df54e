#!/usr/bin/env python3
"""Fast R-CNN RoI-head throughput in PyTorch/torchvision: the reference for BENCHMARKS.md.

One training iteration of the paper's frozen-body Fast R-CNN (ResNet-50-C4, Detectron's
`ResNet50_fast_rcnn` with FREEZE_AT 4), on cached res4 maps, at the paper's shapes:

  input   --images res4 maps of 1024 x --map (default 38 x 63: a 600 x 1000 image at 1/16,
          ceil(600/16) x ceil(1000/16)), random normal values, seed 0; these stand for the
          cached frozen trunk output, so no trunk runs
  RoIs    --rois-per-image per image (default 64; 4 x 64 = 256 a step), random boxes inside
          the image (16 px to the whole side, 0-based x1 y1 x2 y2 in image pixels)
  RoI op  torchvision.ops.roi_pool 14 x 14 at spatial scale 1/16 (Detectron's RoIPoolF
          arithmetic), or --op roi_align (--sampling-ratio, default 0 as Detectron;
          --aligned for detectron2's half-pixel offset)
  res5    torchvision resnet50's layer4: 3 bottlenecks, 1024 -> 2048, stride 2 in the first
          (on its 3x3 conv: the torchvision layout, Detectron's RESNETS.STRIDE_1X1 False, as
          the benchmark's config sets), BN frozen as an affine (torchvision's
          FrozenBatchNorm2d: fixed scale and shift, no gradient, as Detectron's AffineChannel),
          random He weights (throughput does not depend on them); the frozen statistics are
          set, layer by layer, from one untimed forward pass over CALIBRATION_ROIS of the
          training RoIs, standing in for a checkpoint's, so activations keep unit scale and
          the loss behaves as with trained weights
  pool    7 x 7 average pool -> 2048
  heads   cls_score Linear 2048 -> 21 (init N(0, 0.01)), bbox_pred Linear 2048 -> 84 (N(0, 0.001))
  loss    softmax cross-entropy (mean over RoIs) + smooth L1 (beta 1) on the foreground RoIs'
          4 targets of their class, summed and divided by the RoI count (Detectron's
          SmoothL1Loss); labels random with 25% foreground, targets random normal
  solver  zero_grad, forward, backward, SGD momentum 0.9, weight decay 5e-4 on weights, biases
          at 2x lr without decay (Detectron's), lr --lr

A training step is everything above from the RoI op on (the cached maps are built before
timing). iterations/s is 1 over the median step time of --iters timed steps after --warmup
untimed ones.

Test: the test-time head, forward only (torch.inference_mode), per image: --test-rois RoIs
(default 300: our choice, a round count of the order the RPN-era tests use; the protocol
feeds up to 2000 selective-search boxes, and the head's time grows in proportion to the RoIs,
so images/s at 2000 is about 300/2000 of it), RoI op, res5, pool, both heads, softmax over
the 21 scores. Box decoding and NMS are left out (microseconds against
the head). Test images/s is 1 over the median per-image time over --test-images timed images
after one untimed one.

Needs torch and torchvision (data-scripts/bench-requirements.txt). Prints one line per step,
then a summary; --json prints the summary as one JSON line instead. E.g.
    python3 data-scripts/bench_frcnn_torch.py --threads 2 --iters 3 --warmup 1
    python3 data-scripts/bench_frcnn_torch.py --device cuda --iters 20 --warmup 3 --json
"""
import argparse
import json
import platform
import statistics
import time

import torch
import torch.nn as nn
import torch.nn.functional as F
import torchvision
from torchvision.ops import roi_align, roi_pool
from torchvision.ops.misc import FrozenBatchNorm2d

STRIDE = 16  # res4's stride: spatial scale 1/16
POOLED = 14  # RoI output side; res5 halves it to 7
NUM_CLASSES = 21  # VOC's 20 and background
FOREGROUND = 0.25  # Detectron's TRAIN.FG_FRACTION
MIN_BOX = 16  # smallest random box side, image pixels
BIAS_LR = 2.0  # Detectron's SOLVER.BIAS_LR_FACTOR
WEIGHT_DECAY = 5e-4
MOMENTUM = 0.9
CALIBRATION_ROIS = 32


class RoIHead(nn.Module):
    """RoI op, res5, 7x7 average pool, cls_score and bbox_pred: Detectron's C4 RoI head."""

    def __init__(self, op, sampling_ratio, aligned):
        super().__init__()
        trunk = torchvision.models.resnet50(weights=None, norm_layer=FrozenBatchNorm2d)
        self.res5 = trunk.layer4
        self.cls_score = nn.Linear(2048, NUM_CLASSES)
        self.bbox_pred = nn.Linear(2048, 4 * NUM_CLASSES)
        nn.init.normal_(self.cls_score.weight, std=0.01)
        nn.init.normal_(self.bbox_pred.weight, std=0.001)
        nn.init.zeros_(self.cls_score.bias)
        nn.init.zeros_(self.bbox_pred.bias)
        self.op, self.sampling_ratio, self.aligned = op, sampling_ratio, aligned

    def forward(self, maps, rois):
        if self.op == "roi_pool":
            x = roi_pool(maps, rois, POOLED, 1.0 / STRIDE)
        else:
            x = roi_align(maps, rois, POOLED, 1.0 / STRIDE, self.sampling_ratio, self.aligned)
        x = F.avg_pool2d(self.res5(x), 7).flatten(1)
        return self.cls_score(x), self.bbox_pred(x)


def random_rois(g, images, per_image, height, width):
    """(images * per_image, 5) RoIs: image index, then x1 y1 x2 y2 inside a height x width
    image (sides MIN_BOX to the whole image)."""
    n = images * per_image
    sides = torch.tensor([width, height], dtype=torch.float32)
    size = MIN_BOX + torch.rand(n, 2, generator=g) * (sides - MIN_BOX)
    low = torch.rand(n, 2, generator=g) * (sides - size)
    index = torch.arange(images, dtype=torch.float32).repeat_interleave(per_image)[:, None]
    return torch.cat([index, low, low + size - 1], 1)


def training_targets(g, n):
    """Random labels (FOREGROUND of them 1..20, the rest 0) and box targets with their weights
    (1 on the 4 columns of a foreground RoI's class)."""
    labels = torch.zeros(n, dtype=torch.long)
    fg = int(round(FOREGROUND * n))
    labels[:fg] = torch.randint(1, NUM_CLASSES, (fg,), generator=g)
    labels = labels[torch.randperm(n, generator=g)]
    targets = torch.randn(n, 4 * NUM_CLASSES, generator=g)
    weights = torch.zeros(n, 4 * NUM_CLASSES)
    for i in torch.nonzero(labels).flatten().tolist():
        weights[i, 4 * labels[i]:4 * labels[i] + 4] = 1.0
    return labels, targets, weights


def calibrate(model, maps, rois):
    """Set every FrozenBatchNorm2d's statistics to those of its input on `rois`, in forward
    order (each layer sees the already calibrated layers before it)."""

    def take_statistics(module, inputs):
        x = inputs[0]
        module.running_mean.copy_(x.mean((0, 2, 3)))
        module.running_var.copy_(x.var((0, 2, 3)))

    hooks = [m.register_forward_pre_hook(take_statistics) for m in model.modules()
             if isinstance(m, FrozenBatchNorm2d)]
    with torch.no_grad():
        model(maps, rois)
    for h in hooks:
        h.remove()


def optimizer(model, lr):
    """Detectron's SGD: weights with decay, biases at BIAS_LR x lr without it."""
    weights = [p for n, p in model.named_parameters() if p.requires_grad and n.endswith("weight")]
    biases = [p for n, p in model.named_parameters() if p.requires_grad and n.endswith("bias")]
    return torch.optim.SGD([{"params": weights, "weight_decay": WEIGHT_DECAY},
                            {"params": biases, "lr": lr * BIAS_LR, "weight_decay": 0.0}],
                           lr=lr, momentum=MOMENTUM)


def sync(device):
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def run_train(model, args, device):
    """Time the training steps; returns step seconds (timed ones) and every step's loss."""
    g = torch.Generator().manual_seed(0)
    h, w = args.map
    maps = torch.randn(args.images, 1024, h, w, generator=g).to(device)
    rois = random_rois(g, args.images, args.rois_per_image, h * STRIDE, w * STRIDE).to(device)
    labels, targets, weights = (t.to(device) for t in
                                training_targets(g, args.images * args.rois_per_image))
    calibrate(model, maps, rois[:CALIBRATION_ROIS])
    opt = optimizer(model, args.lr)
    model.train()
    times, losses = [], []
    for i in range(args.warmup + args.iters):
        sync(device)
        start = time.perf_counter()
        opt.zero_grad(set_to_none=True)
        scores, deltas = model(maps, rois)
        loss = F.cross_entropy(scores, labels) + F.smooth_l1_loss(
            deltas * weights, targets * weights, reduction="sum", beta=1.0) / len(rois)
        loss.backward()
        opt.step()
        sync(device)
        elapsed = time.perf_counter() - start
        losses.append(loss.item())
        if i >= args.warmup:
            times.append(elapsed)
        if not args.json:
            print(f"  train step {i}{' (warm-up)' if i < args.warmup else ''}: "
                  f"{elapsed:.3f} s, loss {losses[-1]:.4f}", flush=True)
    return times, losses


def run_test(model, args, device):
    """Time the test-time head on one image's --test-rois RoIs at a time."""
    g = torch.Generator().manual_seed(1)
    h, w = args.map
    model.eval()
    times = []
    with torch.inference_mode():
        for i in range(1 + args.test_images):
            maps = torch.randn(1, 1024, h, w, generator=g).to(device)
            rois = random_rois(g, 1, args.test_rois, h * STRIDE, w * STRIDE).to(device)
            sync(device)
            start = time.perf_counter()
            scores, deltas = model(maps, rois)
            F.softmax(scores, 1)
            sync(device)
            elapsed = time.perf_counter() - start
            if i > 0:
                times.append(elapsed)
            if not args.json:
                print(f"  test image {i}{' (warm-up)' if i == 0 else ''}: {elapsed:.3f} s",
                      flush=True)
    return times


def parse_map(text):
    """'38x63' -> (38, 63)."""
    try:
        h, w = (int(v) for v in text.lower().split("x"))
    except ValueError:
        raise argparse.ArgumentTypeError(f"--map {text!r}: expected HxW, e.g. 38x63")
    if h < 1 or w < 1:
        raise argparse.ArgumentTypeError(f"--map {text!r}: sides must be positive")
    return h, w


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--threads", type=int, default=2, help="torch.set_num_threads (CPU)")
    ap.add_argument("--iters", type=int, default=3, help="timed training steps")
    ap.add_argument("--warmup", type=int, default=1, help="untimed training steps first")
    ap.add_argument("--images", type=int, default=4, help="images per step (the paper's 2x2)")
    ap.add_argument("--rois-per-image", type=int, default=64)
    ap.add_argument("--map", type=parse_map, default=(38, 63), metavar="HxW",
                    help="res4 map size (600x1000 at 1/16 is 38x63)")
    ap.add_argument("--op", choices=["roi_pool", "roi_align"], default="roi_pool")
    ap.add_argument("--sampling-ratio", type=int, default=0, help="roi_align only")
    ap.add_argument("--aligned", action="store_true", help="roi_align only: detectron2's offset")
    ap.add_argument("--lr", type=float, default=0.002, help="the benchmark's BASE_LR")
    ap.add_argument("--test-rois", type=int, default=300, help="RoIs per test image")
    ap.add_argument("--test-images", type=int, default=2, help="timed test images (0: none)")
    ap.add_argument("--device", default="cpu", help="cpu or cuda[:N]")
    ap.add_argument("--json", action="store_true", help="print the summary as one JSON line")
    args = ap.parse_args()
    if min(args.iters, args.images, args.rois_per_image, args.test_rois) < 1 or \
            min(args.warmup, args.test_images) < 0:
        ap.error("--iters, --images, --rois-per-image, --test-rois must be positive; "
                 "--warmup, --test-images at least 0")
    torch.set_num_threads(args.threads)
    torch.manual_seed(0)
    device = torch.device(args.device)
    model = RoIHead(args.op, args.sampling_ratio, args.aligned).to(device)

    train_times, losses = run_train(model, args, device)
    test_times = run_test(model, args, device) if args.test_images else []
    step = statistics.median(train_times)
    summary = {
        "bench": "frcnn_roi_head",
        "framework": "PyTorch " + torch.__version__.split("+")[0],
        "torchvision": torchvision.__version__.split("+")[0],
        "device": str(device) if device.type != "cuda" else torch.cuda.get_device_name(device),
        "cpu": platform.processor() or platform.machine(),
        "threads": args.threads,
        "op": args.op,
        "sampling_ratio": args.sampling_ratio if args.op == "roi_align" else None,
        "aligned": args.aligned if args.op == "roi_align" else None,
        "images": args.images,
        "rois_per_image": args.rois_per_image,
        "map": list(args.map),
        "warmup": args.warmup,
        "train_step_seconds": train_times,
        "train_iters_per_s": 1.0 / step,
        "train_rois_per_s": args.images * args.rois_per_image / step,
        "losses": losses,
        "test_rois_per_image": args.test_rois,
        "test_image_seconds": test_times,
        "test_images_per_s": 1.0 / statistics.median(test_times) if test_times else None,
    }
    if args.json:
        print(json.dumps(summary))
        return
    print(f"{summary['framework']} (torchvision {summary['torchvision']}), {summary['device']}, "
          f"{args.threads} thread(s), {args.op}: {args.images} images x {args.rois_per_image} "
          f"RoIs on {args.map[0]}x{args.map[1]} res4 maps")
    print(f"  train: {summary['train_iters_per_s']:.4f} iterations/s "
          f"({step:.3f} s/iteration, {summary['train_rois_per_s']:.1f} RoIs/s), median of "
          f"{len(train_times)} after {args.warmup} warm-up")
    if test_times:
        print(f"  test: {summary['test_images_per_s']:.4f} images/s at {args.test_rois} RoIs "
              f"per image, median of {len(test_times)}")


if __name__ == "__main__":
    main()
