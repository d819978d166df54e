#!/usr/bin/env python3
"""Surface-normals training step in PyTorch/torchvision: the reference for BENCHMARKS.md beside
`cargo run --release --example normals_bench` (ours, the same step).

One iteration of the paper's normals model (NRM `resnet50dilated` + `ppm`, trunk frozen up to
res4, whose maps are cached), at the paper's shapes:

  input   --batch res4 maps of 1024 x --map (default 57 x 75: a 480 x 640 frame at short side
          450, 450 x 600 padded to 456 x 600, at output stride 8), random normal values after a
          ReLU, seed 0; they stand for the cached frozen trunk output, so no trunk runs
  res5    torchvision resnet50's layer4 built with replace_stride_with_dilation [.., True,
          True]: stride 1, the first block's 3x3 at dilation 2, the others at 4 (NRM's
          `_nostride_dilate`), 1024 -> 2048; its BN frozen as an affine (FrozenBatchNorm2d),
          as ours is (the paper trains these BNs: a stated difference of both)
  decoder PSPNet pyramid, bins 1, 2, 3, 6: adaptive average pool, 1x1 conv 2048 -> 512 without
          bias, BN (training mode, batch statistics), ReLU, bilinear resize back
          (align_corners False); concatenated with res5 (4096 channels); 3x3 conv -> 512
          without bias, BN, ReLU, Dropout2d(0.1), 1x1 conv -> 40 with bias
  loss    cross-entropy over the 40 clusters on --batch x h x w random labels, ignore index 255
          on a tenth of them
  solver  zero_grad, forward, backward, SGD momentum 0.9, weight decay 1e-4 on conv weights
          only, lr 0.02

iterations/s is 1 over the median step time of --iters timed steps after --warmup untimed
ones. Needs torch and torchvision (data-scripts/bench-requirements.txt). E.g.
    python3 data-scripts/bench_normals_torch.py --threads 2 --iters 2 --warmup 1 --json
    python3 data-scripts/bench_normals_torch.py --device cuda --iters 10 --warmup 3 --json
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
from torchvision.ops.misc import FrozenBatchNorm2d

from bench_frcnn_torch import parse_map, sync

CLASSES = 40
IGNORE = 255
BINS = (1, 2, 3, 6)
PPM_DIM = 512
LAST_DIM = 512
DROPOUT = 0.1
MOMENTUM = 0.9
WEIGHT_DECAY = 1e-4


def conv_bn_relu(cin, cout, k):
    return nn.Sequential(nn.Conv2d(cin, cout, k, padding=k // 2, bias=False),
                         nn.BatchNorm2d(cout), nn.ReLU(inplace=True))


class NormalsHead(nn.Module):
    """res5 at output stride 8 and the PSPNet decoder."""

    def __init__(self):
        super().__init__()
        trunk = torchvision.models.resnet50(weights=None, norm_layer=FrozenBatchNorm2d,
                                            replace_stride_with_dilation=[False, True, True])
        self.res5 = trunk.layer4
        self.ppm = nn.ModuleList([nn.Sequential(nn.AdaptiveAvgPool2d(b),
                                                conv_bn_relu(2048, PPM_DIM, 1)) for b in BINS])
        self.last = conv_bn_relu(2048 + PPM_DIM * len(BINS), LAST_DIM, 3)
        self.dropout = nn.Dropout2d(DROPOUT)
        self.cls = nn.Conv2d(LAST_DIM, CLASSES, 1)

    def forward(self, res4):
        x = self.res5(res4)
        size = x.shape[2:]
        parts = [x] + [F.interpolate(m(x), size, mode="bilinear", align_corners=False)
                       for m in self.ppm]
        return self.cls(self.dropout(self.last(torch.cat(parts, 1))))


def optimizer(model, lr):
    """SGD with decay on conv weights only (NRM's group_weight)."""
    decay = [m.weight for m in model.modules()
             if isinstance(m, nn.Conv2d) and m.weight.requires_grad]
    ids = {id(p) for p in decay}
    rest = [p for p in model.parameters() if p.requires_grad and id(p) not in ids]
    return torch.optim.SGD([{"params": decay, "weight_decay": WEIGHT_DECAY},
                            {"params": rest, "weight_decay": 0.0}], lr=lr, momentum=MOMENTUM)


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--threads", type=int, default=2, help="torch.set_num_threads (CPU)")
    ap.add_argument("--iters", type=int, default=2, help="timed training steps")
    ap.add_argument("--warmup", type=int, default=1, help="untimed training steps first")
    ap.add_argument("--batch", type=int, default=16, help="images per step (the paper's 16)")
    ap.add_argument("--map", type=parse_map, default=(57, 75), metavar="HxW",
                    help="res4 map size (456x600 at 1/8 is 57x75)")
    ap.add_argument("--lr", type=float, default=0.02)
    ap.add_argument("--device", default="cpu", help="cpu or cuda[:N]")
    ap.add_argument("--json", action="store_true", help="print the summary as one JSON line")
    args = ap.parse_args()
    if min(args.iters, args.batch) < 1 or args.warmup < 0:
        ap.error("--iters and --batch must be positive, --warmup at least 0")
    torch.set_num_threads(args.threads)
    torch.manual_seed(0)
    device = torch.device(args.device)
    model = NormalsHead().to(device).train()
    opt = optimizer(model, args.lr)
    g = torch.Generator().manual_seed(0)
    h, w = args.map
    maps = torch.randn(args.batch, 1024, h, w, generator=g).relu().to(device)
    labels = torch.randint(0, CLASSES, (args.batch, h, w), generator=g)
    labels[torch.rand(args.batch, h, w, generator=g) < 0.1] = IGNORE
    labels = labels.to(device)
    times, losses = [], []
    for i in range(args.warmup + args.iters):
        sync(device)
        start = time.perf_counter()
        opt.zero_grad(set_to_none=True)
        loss = F.cross_entropy(model(maps), labels, ignore_index=IGNORE)
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
    step = statistics.median(times)
    summary = {
        "bench": "normals_step",
        "framework": "PyTorch " + torch.__version__.split("+")[0],
        "torchvision": torchvision.__version__.split("+")[0],
        "device": str(device) if device.type != "cuda" else torch.cuda.get_device_name(device),
        "cpu": platform.processor() or platform.machine(),
        "threads": args.threads,
        "batch": args.batch,
        "map": f"{h}x{w}",
        "train_iter_per_s": 1.0 / step,
        "train_s_per_iter": step,
        "losses": losses,
    }
    if device.type == "cuda":
        summary["peak_gib"] = torch.cuda.max_memory_allocated(device) / 2**30
    print(json.dumps(summary) if args.json else "\n".join(f"{k}: {v}" for k, v in summary.items()))


if __name__ == "__main__":
    main()
