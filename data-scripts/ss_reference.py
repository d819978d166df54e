#!/usr/bin/env python3
"""OpenCV's selective search on real photos: the reference of tests/selective_search.rs.

Runs cv2.ximgproc.segmentation's selective search (opencv-contrib-python-headless) per image in
two configurations:
  paper_fast   the paper's fast mode (Uijlings et al. 2013, Table 3) assembled from OpenCV's
               parts: HSV and Lab images, graph segmentations k = 50 and 100 with min_size = k,
               sigma 0.8, strategies colour+texture+size+fill and texture+size+fill;
  paper_fast_min20  the same boxes less those under 20 pixels wide or high, as the authors'
               demo and R-CNN's selective_search_boxes.m do (minBoxWidth = 20);
  opencv_fast  OpenCV's own switchToSelectiveSearchFast() (k = 150, 300, 450, min_size 100).
Per image it records the box count, how many ground-truth boxes some box covers at IoU >= 0.5
and >= 0.7 (VOC's +1-pixel IoU on 0-based inclusive boxes) and the seconds of process().

Images come from VOC-layout folders (--voc ROOT: JPEGImages/, Annotations/,
ImageSets/Main/<split>.txt; annotation coordinates are 1-based, may be floats) and from plain
folders (--images DIR --names ...), whose boxes, if any, come from --hand-boxes (a JSON file of
hand-drawn boxes, labelled as such in the output). Writes one JSON fixture (--out).

  /tmp/tv/bin/python data-scripts/ss_reference.py \
      --voc data/samples/labelme-voc:trainval --voc data/samples/doom-voc:test --max-images 20 \
      --images data/samples/skimage --names astronaut.png coffee.png chelsea.png ... \
      --hand-boxes tests/fixtures/selective_search/hand_boxes.json \
      --out tests/fixtures/selective_search/opencv_reference.json
"""
import argparse
import json
import os
import time
import xml.etree.ElementTree as ET

import cv2
import numpy as np

SEG = cv2.ximgproc.segmentation
# The authors' code (and R-CNN's) drops boxes narrower or shorter than 20 pixels.
MIN_BOX_SIZE = 20
CONFIGS = ("paper_fast", "paper_fast_min20", "opencv_fast")


def paper_fast(ss, bgr):
    ss.clearImages()
    ss.clearGraphSegmentations()
    ss.clearStrategies()
    ss.addImage(cv2.cvtColor(bgr, cv2.COLOR_BGR2HSV))
    ss.addImage(cv2.cvtColor(bgr, cv2.COLOR_BGR2Lab))
    for k in (50, 100):
        ss.addGraphSegmentation(SEG.createGraphSegmentation(sigma=0.8, k=float(k), min_size=k))
    ctsf = SEG.createSelectiveSearchSegmentationStrategyMultiple()
    for s in (SEG.createSelectiveSearchSegmentationStrategyColor(),
              SEG.createSelectiveSearchSegmentationStrategyTexture(),
              SEG.createSelectiveSearchSegmentationStrategySize(),
              SEG.createSelectiveSearchSegmentationStrategyFill()):
        ctsf.addStrategy(s, 1.0)
    tsf = SEG.createSelectiveSearchSegmentationStrategyMultiple()
    for s in (SEG.createSelectiveSearchSegmentationStrategyTexture(),
              SEG.createSelectiveSearchSegmentationStrategySize(),
              SEG.createSelectiveSearchSegmentationStrategyFill()):
        tsf.addStrategy(s, 1.0)
    ss.addStrategy(ctsf)
    ss.addStrategy(tsf)


def opencv_fast(ss, bgr):
    ss.switchToSelectiveSearchFast()


def iou(box, boxes):
    """VOC IoU of one 0-based inclusive box with many (+1 on widths and heights)."""
    ix1 = np.maximum(box[0], boxes[:, 0])
    iy1 = np.maximum(box[1], boxes[:, 1])
    ix2 = np.minimum(box[2], boxes[:, 2])
    iy2 = np.minimum(box[3], boxes[:, 3])
    iw = np.maximum(ix2 - ix1 + 1, 0)
    ih = np.maximum(iy2 - iy1 + 1, 0)
    inter = iw * ih
    a = (box[2] - box[0] + 1) * (box[3] - box[1] + 1)
    b = (boxes[:, 2] - boxes[:, 0] + 1) * (boxes[:, 3] - boxes[:, 1] + 1)
    return inter / (a + b - inter)


def run(bgr, configure):
    """OpenCV's boxes (0-based inclusive x1, y1, x2, y2) and the seconds of process()."""
    ss = SEG.createSelectiveSearchSegmentation()
    ss.setBaseImage(bgr)
    configure(ss, bgr)
    start = time.perf_counter()
    rects = ss.process()
    seconds = time.perf_counter() - start
    rects = np.asarray(rects, dtype=np.float64).reshape(-1, 4)
    boxes = np.stack([rects[:, 0], rects[:, 1], rects[:, 0] + rects[:, 2] - 1,
                      rects[:, 1] + rects[:, 3] - 1], axis=1)
    return boxes, seconds


def evaluate(boxes, seconds, gt):
    best = [float(iou(np.asarray(g, dtype=np.float64), boxes).max()) if len(boxes) else 0.0
            for g in gt]
    return {
        "boxes": int(len(boxes)),
        "best_iou": [round(b, 4) for b in best],
        "hits_05": int(sum(b >= 0.5 for b in best)),
        "hits_07": int(sum(b >= 0.7 for b in best)),
        "seconds": round(seconds, 3),
    }


def voc_objects(path):
    """Ground-truth boxes of one VOC annotation, 0-based inclusive (VOC is 1-based)."""
    root = ET.parse(path).getroot()
    out = []
    for obj in root.iter("object"):
        bb = obj.find("bndbox")
        x1, y1, x2, y2 = (float(bb.find(t).text) - 1 for t in ("xmin", "ymin", "xmax", "ymax"))
        out.append([x1, y1, x2, y2])
    return out


def main():
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--voc", action="append", default=[],
                   help="a VOC-layout root, ROOT or ROOT:SPLIT (repeatable; SPLIT defaults to --split)")
    p.add_argument("--split", default="trainval", help="ImageSets/Main/<split>.txt of --voc")
    p.add_argument("--max-images", type=int, default=0, help="first N ids per --voc (0: all)")
    p.add_argument("--images", help="a plain folder of photos")
    p.add_argument("--names", nargs="*", default=[], help="file names in --images")
    p.add_argument("--hand-boxes", help="JSON of hand-drawn boxes for --images")
    p.add_argument("--repo-root", default=".", help="paths in the output are relative to it")
    p.add_argument("--out", required=True)
    args = p.parse_args()

    items = []  # (id, path, gt, gt_source)
    for spec in args.voc:
        root, split = spec, args.split
        head, _, tail = spec.rpartition(":")
        if head and tail and "/" not in tail:
            root, split = head, tail
        ids = [line.split()[0] for line in open(os.path.join(root, "ImageSets", "Main",
                                                             split + ".txt"))
               if line.strip()]
        if args.max_images:
            ids = ids[: args.max_images]
        for i in ids:
            items.append((i, os.path.join(root, "JPEGImages", i + ".jpg"),
                          voc_objects(os.path.join(root, "Annotations", i + ".xml")),
                          "voc-annotation"))
    hand = {}
    if args.hand_boxes:
        hand = json.load(open(args.hand_boxes))["boxes"]
    for name in args.names:
        boxes = list(hand.get(name, {}).values())
        items.append((os.path.splitext(name)[0], os.path.join(args.images, name), boxes,
                      "hand-drawn" if boxes else "none"))

    images = []
    for ident, path, gt, source in items:
        bgr = cv2.imread(path, cv2.IMREAD_COLOR)
        if bgr is None:
            raise SystemExit(f"cannot read image {path}")
        h, w = bgr.shape[:2]
        entry = {"id": ident, "path": os.path.relpath(path, args.repo_root), "width": w,
                 "height": h, "gt_source": source, "gt": gt}
        for name, configure in (("paper_fast", paper_fast), ("opencv_fast", opencv_fast)):
            boxes, seconds = run(bgr, configure)
            entry[name] = evaluate(boxes, seconds, gt)
            if name == "paper_fast":
                side = np.minimum(boxes[:, 2] - boxes[:, 0], boxes[:, 3] - boxes[:, 1]) + 1
                entry[name + "_min20"] = evaluate(boxes[side >= MIN_BOX_SIZE], seconds, gt)
        images.append(entry)
        print(ident, w, h, {k: entry[k]["boxes"] for k in CONFIGS}, flush=True)

    pooled = {}
    for name in CONFIGS:
        n = sum(len(e["gt"]) for e in images)
        pooled[name] = {
            "gt_boxes": n,
            "recall_05": sum(e[name]["hits_05"] for e in images) / max(n, 1),
            "recall_07": sum(e[name]["hits_07"] for e in images) / max(n, 1),
            "mean_boxes": float(np.mean([e[name]["boxes"] for e in images])),
            "mean_seconds": float(np.mean([e[name]["seconds"] for e in images])),
        }
    out = {
        "generator": "data-scripts/ss_reference.py",
        "opencv": cv2.__version__,
        "note": "seconds measured on a shared machine: indicative only",
        "pooled": pooled,
        "images": images,
    }
    with open(args.out, "w") as f:
        json.dump(out, f, indent=1)
        f.write("\n")
    print(json.dumps(pooled, indent=1))


if __name__ == "__main__":
    main()
