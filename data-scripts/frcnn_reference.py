#!/usr/bin/env python3
"""An independent Fast R-CNN C4 head in PyTorch/torchvision, trained on the frozen res4 maps that
`sslbench run` cached, so a result of ours can be set beside a second implementation on the
very same inputs (the maps, the proposals, the res5 weights of the checkpoint).

It is written from the protocol (docs/research/detection.md), not from our Rust code: its own
roidb (ground truth + proposals, flipped copies), sampling (64 RoIs, 25% foreground at IoU >=
0.5, background below 0.5), box coding (weights 10, 10, 5, 5, +1 widths), torchvision's
roi_pool 14x14 at 1/16, res5 from the checkpoint with BN frozen (FrozenBatchNorm2d), 7x7 average
pool, cls_score N(0, 0.01) and bbox_pred N(0, 0.001), softmax CE + smooth L1 (beta 1) over the
RoI count, SGD momentum 0.9, wd 5e-4 on weights, biases at 2x without decay, linear warm-up
over 20 iterations from 1/3, x0.1 at 75% of the iterations; at test every proposal (up to
2000), score > 0.05, NMS 0.3, 100 per image, scored by voc_eval.py (11-point).

Frames are assumed 320 x 240 at blob scale 1 (the doom set at `input.scale = 240`). It does not
reproduce our draws, so the comparison is of outcomes (mAP), not bit for bit.
With RANDOM=1 it skips training and scores every proposal at random: the chance level.

  LR=0.01 ITERS=600 python3 data-scripts/frcnn_reference.py VOC_ROOT TRUNK.safetensors \
      TRAIN_MAPS.h5 TEST_MAPS.h5 TRAIN_PROPOSALS.pkl TEST_PROPOSALS.pkl OUT_DIR
(the .h5 files are the dense cache entries the run printed). Needs torch, torchvision, h5py,
safetensors.
"""
import sys, os, pickle, subprocess, json, xml.etree.ElementTree as ET
import h5py, numpy as np, torch, torch.nn as nn, torch.nn.functional as F
from torchvision.ops import roi_pool, box_iou, nms
from torchvision.ops.misc import FrozenBatchNorm2d
from torchvision.models.resnet import Bottleneck
from safetensors.numpy import load_file
root, trunk, train_h5, test_h5, trainp, testp, out = sys.argv[1:8]
lr0 = float(os.environ.get("LR", 0.01)); iters = int(os.environ.get("ITERS", 600)); random_scores = os.environ.get("RANDOM") == "1"
torch.manual_seed(0); rng = np.random.default_rng(0)
classes = open(f"{root}/classes.txt").read().split(); K = len(classes) + 1
def gt(img_id, flip, W):
    b, c = [], []
    for o in ET.parse(f"{root}/Annotations/{img_id}.xml").getroot().iter("object"):
        if int(o.find("difficult").text or 0): continue
        bb = o.find("bndbox"); x1, y1, x2, y2 = [float(bb.find(k).text) - 1 for k in ("xmin", "ymin", "xmax", "ymax")]
        if flip: x1, x2 = W - 1 - x2, W - 1 - x1
        b.append([x1, y1, x2, y2]); c.append(classes.index(o.find("name").text) + 1)
    return np.array(b, np.float32).reshape(-1, 4), np.array(c, np.int64)
def maps(h5):
    f = h5py.File(h5, "r"); o, s = f["offsets"][:], f["shapes"][:]; feats = f["features"][:]
    return {n.decode(): torch.from_numpy(feats[o[i]:o[i + 1]].astype(np.float32).reshape(s[i])) for i, n in enumerate(f["names"][:])}
def props(p):
    d = pickle.load(open(p, "rb"), encoding="latin1"); return dict(zip(d["indexes"], d["boxes"]))
def encode(ex, gtb):
    w = ex[:, 2] - ex[:, 0] + 1; h = ex[:, 3] - ex[:, 1] + 1; cx = ex[:, 0] + .5 * w; cy = ex[:, 1] + .5 * h
    gw = gtb[:, 2] - gtb[:, 0] + 1; gh = gtb[:, 3] - gtb[:, 1] + 1; gx = gtb[:, 0] + .5 * gw; gy = gtb[:, 1] + .5 * gh
    return torch.stack([10 * (gx - cx) / w, 10 * (gy - cy) / h, 5 * torch.log(gw / w), 5 * torch.log(gh / h)], 1)
def decode(b, d):
    w = b[:, 2] - b[:, 0] + 1; h = b[:, 3] - b[:, 1] + 1; cx = b[:, 0] + .5 * w; cy = b[:, 1] + .5 * h
    d = d.view(len(b), -1, 4); dx, dy = d[..., 0] / 10, d[..., 1] / 10; dw, dh = (d[..., 2] / 5).clamp(max=4.135), (d[..., 3] / 5).clamp(max=4.135)
    px = dx * w[:, None] + cx[:, None]; py = dy * h[:, None] + cy[:, None]; pw = torch.exp(dw) * w[:, None]; ph = torch.exp(dh) * h[:, None]
    return torch.stack([px - .5 * pw, py - .5 * ph, px + .5 * pw - 1, py + .5 * ph - 1], -1)
# model: res5 from the checkpoint, BN frozen
sd = load_file(trunk)
def frozen(prefix, n):
    bn = FrozenBatchNorm2d(n); bn.weight.copy_(torch.from_numpy(sd[prefix + ".weight"])); bn.bias.copy_(torch.from_numpy(sd[prefix + ".bias"]))
    bn.running_mean.copy_(torch.from_numpy(sd[prefix + ".running_mean"])); bn.running_var.copy_(torch.from_numpy(sd[prefix + ".running_var"])); return bn
cin = sd["layer4.0.conv1.weight"].shape[1]; planes = sd["layer4.0.conv1.weight"].shape[0]
blocks = []
for i in range(3):
    p = f"layer4.{i}"
    ds = None
    if i == 0: ds = nn.Sequential(nn.Conv2d(cin, planes * 4, 1, 2, bias=False), FrozenBatchNorm2d(planes * 4))
    blk = Bottleneck(cin if i == 0 else planes * 4, planes, 2 if i == 0 else 1, ds, norm_layer=FrozenBatchNorm2d)
    for c in ("conv1", "conv2", "conv3"): getattr(blk, c).weight.data.copy_(torch.from_numpy(sd[f"{p}.{c}.weight"]))
    for b, c in (("bn1", planes), ("bn2", planes), ("bn3", planes * 4)): setattr(blk, b, frozen(f"{p}.{b}", c))
    if ds is not None: ds[0].weight.data.copy_(torch.from_numpy(sd[f"{p}.downsample.0.weight"])); ds[1] = frozen(f"{p}.downsample.1", planes * 4)
    blocks.append(blk)
res5 = nn.Sequential(*blocks); D = planes * 4
cls = nn.Linear(D, K); box = nn.Linear(D, 4 * K)
nn.init.normal_(cls.weight, std=.01); nn.init.zeros_(cls.bias); nn.init.normal_(box.weight, std=.001); nn.init.zeros_(box.bias)
def head(m, rois):
    x = roi_pool(m, rois, (14, 14), 1 / 16); x = res5(x); x = F.avg_pool2d(x, 7).flatten(1); return cls(x), box(x)
params = [p for p in list(res5.parameters()) + list(cls.parameters()) + list(box.parameters()) if p.requires_grad]
groups = [{"params": [p for p in params if p.ndim > 1], "weight_decay": 5e-4, "lr_mult": 1}, {"params": [p for p in params if p.ndim == 1], "weight_decay": 0, "lr_mult": 2}]
opt = torch.optim.SGD(groups, lr=lr0, momentum=.9)
# roidb
trm = maps(train_h5); tp = props(trainp)
roidb = []
for name in sorted(trm):
    img = name.split("@")[0]; flip = name.endswith(":flip"); W = 320
    g, c = gt(img, flip, W)
    if not len(g): continue
    p = tp[img].astype(np.float32).copy()
    if flip: p[:, [0, 2]] = W - 1 - p[:, [2, 0]]
    b = torch.from_numpy(np.concatenate([g, p])); ov = box_iou(b + torch.tensor([0, 0, 1, 1.]), torch.from_numpy(g) + torch.tensor([0, 0, 1, 1.]))
    mo, am = ov.max(1); roidb.append((name, b, mo, torch.from_numpy(c)[am], torch.from_numpy(g)[am]))
print(len(roidb), "training entries")
def sample(e):
    name, b, mo, lab, gb = e
    fg = torch.nonzero(mo >= .5).flatten(); bg = torch.nonzero(mo < .5).flatten()
    fg = fg[torch.randperm(len(fg))[:16]]; bg = bg[torch.randperm(len(bg))[:64 - len(fg)]]
    keep = torch.cat([fg, bg]); l = lab[keep].clone(); l[len(fg):] = 0
    return b[keep], l, encode(b[keep], gb[keep])
if not random_scores:
  for it in range(1, iters + 1):
    lr = lr0 * ((1 / 3) * (1 - it / 20) + it / 20 if it < 20 else 1) * (.1 if it > int(.75 * iters) else 1)
    for g_ in opt.param_groups: g_["lr"] = lr * g_["lr_mult"]
    idx = rng.choice(len(roidb), 2, replace=False); loss_c = loss_b = 0; R = 0; ms, rs, ls, ts = [], [], [], []
    for j, i in enumerate(idx):
        r, l, t = sample(roidb[i]); ms.append(trm[roidb[i][0]]); rs.append(torch.cat([torch.full((len(r), 1), float(j)), r], 1)); ls.append(l); ts.append(t)
    m = torch.stack(ms); rois = torch.cat(rs); l = torch.cat(ls); t = torch.cat(ts)
    sc, bp = head(m, rois); lc = F.cross_entropy(sc, l)
    fgm = l > 0; bp = bp.view(len(l), K, 4)[torch.arange(len(l)), l]
    lb = F.smooth_l1_loss(bp[fgm], t[fgm], reduction="sum", beta=1.0) / len(l)
    opt.zero_grad(); (lc + lb).backward(); opt.step()
    if it % 50 == 0: print(it, f"lr {lr:.4g} loss_cls {lc.item():.4f} loss_bbox {lb.item():.4f} acc {(sc.argmax(1) == l).float().mean():.3f}", flush=True)
# test
tem = maps(test_h5); tsp = props(testp); dets = {c: [] for c in classes}
with torch.no_grad():
    for name in sorted(tem):
        img = name.split("@")[0]; b = torch.from_numpy(tsp[img].astype(np.float32))[:2000]
        if random_scores: s = torch.rand(len(b), K).softmax(1); bx = b[:, None, :].expand(-1, K, -1)
        else:
            sc, bp = head(tem[name][None], [b]); s = sc.softmax(1); bx = decode(b, bp)
        bx = torch.stack([bx[..., 0].clamp(0, 319), bx[..., 1].clamp(0, 239), bx[..., 2].clamp(0, 319), bx[..., 3].clamp(0, 239)], -1)
        allc = []
        for c in range(1, K):
            k = torch.nonzero(s[:, c] > .05).flatten(); cb = bx[k, c]; cs = s[k, c]
            keep = nms(cb + torch.tensor([0, 0, 1, 1.]), cs, .3); allc += [(c, cs[i].item(), cb[i].tolist()) for i in keep]
        allc = sorted(allc, key=lambda x: -x[1])[:100]
        for c, sco, bb in allc: dets[classes[c - 1]].append(f"{img} {sco:.6f} {bb[0]+1:.1f} {bb[1]+1:.1f} {bb[2]+1:.1f} {bb[3]+1:.1f}")
os.makedirs(out, exist_ok=True)
for c in classes: open(f"{out}/comp4_det_test_{c}.txt", "w").write("\n".join(dets[c]) + ("\n" if dets[c] else ""))
r = json.loads(subprocess.check_output([sys.executable, os.path.join(os.path.dirname(os.path.abspath(__file__)), "voc_eval.py"), "--annotations", f"{root}/Annotations", "--image-set", f"{root}/ImageSets/Main/test.txt", "--results", out, "--classes", ",".join(classes), "--use-07-metric"]))
print("mAP", r["map"], {c: round(v["ap"], 4) for c, v in r["classes"].items()})
