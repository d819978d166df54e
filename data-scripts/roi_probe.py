#!/usr/bin/env python3
"""Is the class in a trunk's frozen res4 maps at all? A linear probe at box level, independent of
sslbench's sampling and heads: RoI-pool (torchvision roi_pool 14x14 at 1/16) the non-difficult
ground-truth boxes and three random background boxes per object (10-60 px, IoU < 0.3 with every
object) from the dense cache entries `sslbench run` wrote, take each channel's mean and max,
fit a logistic regression (scikit-learn, standardised features) on the trainval images and
score it on the test images. The same probe on colour statistics of the box's pixels (mean, max,
std of RGB, width, height) is printed first as a floor any useful trunk should beat.

  python3 data-scripts/roi_probe.py VOC_ROOT TRAIN_MAPS.h5 TEST_MAPS.h5
Needs torch, torchvision, h5py, scikit-learn, Pillow. Frames of 320 x 240 (the doom set).
"""
import sys, os, xml.etree.ElementTree as ET
import h5py, numpy as np, torch
from torchvision.ops import roi_pool, box_iou
from sklearn.linear_model import LogisticRegression
from sklearn.preprocessing import StandardScaler
from sklearn.metrics import balanced_accuracy_score
from PIL import Image
root, train_h5, test_h5 = sys.argv[1:4]
classes = open(f"{root}/classes.txt").read().split()
rng = np.random.default_rng(0)
def load(h5):
    f = h5py.File(h5, "r")
    feats, offs, shapes = f["features"], f["offsets"][:], f["shapes"][:]
    for i, n in enumerate(f["names"][:]):
        n = n.decode()
        if ":flip" in n: continue
        m = np.asarray(feats[offs[i]:offs[i+1]], np.float32).reshape(shapes[i])
        yield n.split("@")[0], m, int(n.split("@")[1]) / 240
def boxes(img_id):
    t = ET.parse(f"{root}/Annotations/{img_id}.xml").getroot()
    out = []
    for o in t.iter("object"):
        if int(o.find("difficult").text or 0): continue
        b = o.find("bndbox"); out.append(([float(b.find(k).text) - 1 for k in ("xmin","ymin","xmax","ymax")], classes.index(o.find("name").text) + 1))
    return out
def samples(h5, kind):
    X, y = [], []
    for img_id, m, sc in load(h5):
        gt = boxes(img_id)
        if not gt: continue
        bx = [b for b, _ in gt]; lab = [c for _, c in gt]
        # background: random boxes of GT-like sizes with IoU < 0.3 to every GT box
        g = torch.tensor(bx)
        for _ in range(len(gt) * 3):
            for _t in range(50):
                w, h = rng.uniform(10, 60, 2); x, yy = rng.uniform(0, 320 - w), rng.uniform(0, 240 - h)
                cand = torch.tensor([[x, yy, x + w, yy + h]], dtype=torch.float32)
                if box_iou(cand, g).max() < 0.3: bx.append(cand[0].tolist()); lab.append(0); break
        r = torch.tensor(bx, dtype=torch.float32)
        if kind == "res4":
            p = roi_pool(torch.from_numpy(m)[None], [r * sc], (14, 14), 1 / 16).flatten(2)
            f = torch.cat([p.mean(2), p.amax(2)], 1).numpy()
        else:  # pixels: mean and max colour inside the box, and the box size
            im = np.asarray(Image.open(f"{root}/JPEGImages/{img_id}.jpg").convert("RGB"), np.float32)
            f = []
            for x1, y1, x2, y2 in r.tolist():
                c = im[int(y1):int(y2) + 1, int(x1):int(x2) + 1].reshape(-1, 3)
                f.append(np.r_[c.mean(0), c.max(0), c.std(0), x2 - x1, y2 - y1])
            f = np.array(f)
        X.append(f); y += lab
    return np.concatenate(X), np.array(y)
for kind in ("pixels", "res4"):
    Xtr, ytr = samples(train_h5, kind); Xte, yte = samples(test_h5, kind)
    s = StandardScaler().fit(Xtr)
    clf = LogisticRegression(max_iter=3000, C=1.0).fit(s.transform(Xtr), ytr)
    pr = clf.predict(s.transform(Xte))
    fg = yte > 0
    print(f"{kind}: {Xtr.shape[1]}-d, train {len(ytr)} test {len(yte)}; test accuracy {np.mean(pr == yte):.3f} "
          f"(majority {np.mean(yte == np.bincount(ytr).argmax()):.3f}), balanced {balanced_accuracy_score(yte, pr):.3f} "
          f"(chance {1/len(np.unique(yte)):.3f}); on GT boxes class right {np.mean(pr[fg] == yte[fg]):.3f}")
