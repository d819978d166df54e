#!/usr/bin/env python3
"""The PASCAL VOC detection AP, computed from devkit results files: sslbench's own port of the
devkit's `voc_eval` (the Python one Detectron and py-faster-rcnn run, with the MATLAB
`VOCevaldet` threshold test as an option), written from its description in
docs/research/detection.md section 3. tests/detection_eval.rs checks that the Rust
evaluation (src/tasks/detection/voc_eval.rs) agrees with it on our results files.

Differences from the devkit, on purpose:
  - the XML is read tolerantly: an empty or missing <difficult> is 0, coordinates may be
    floats ("91.0", as labelme writes them); the devkit's int() crashes on both;
  - detections are sorted with a stable sort (kind='mergesort'), so tied scores keep the
    file's line order; the devkit's np.argsort(-confidence) is a quicksort, whose order among
    ties is unspecified;
  - an empty results file gives AP 0 (the devkit's indexing fails on it); a class without
    non-difficult ground truth gives AP null (the devkit divides by zero);
  - nothing is cached (the devkit's annots.pkl cache, keyed by image-set name, goes stale).

Usage:
  voc_eval.py --annotations DIR --image-set FILE --results DIR [--classes a,b,...]
              [--iou 0.5] [--overlap-test strict|inclusive] [--use-07-metric] [--out FILE]

DIR/<id>.xml for each id of the image set (one id a line); the results folder holds
comp4_det_test_<class>.txt, lines "<id> <score> <x1> <y1> <x2> <y2>" (1-based box). Prints (or
writes to --out) JSON: {"classes": {class: {"ap", "npos", "detections", "tp", "fp",
"ignored"}}, "map"}. Needs numpy only.
"""

import argparse
import json
import os
import sys
import xml.etree.ElementTree as ET

import numpy as np

VOC_CLASSES = [
    "aeroplane", "bicycle", "bird", "boat", "bottle", "bus", "car", "cat", "chair", "cow",
    "diningtable", "dog", "horse", "motorbike", "person", "pottedplant", "sheep", "sofa",
    "train", "tvmonitor",
]


def flag(obj, tag):
    """A 0/1 child element; missing or empty is 0."""
    node = obj.find(tag)
    text = (node.text or "").strip() if node is not None else ""
    if text in ("", "0"):
        return False
    if text == "1":
        return True
    raise ValueError("<%s> is '%s', expected 0 or 1" % (tag, text))


def parse_annotation(path):
    """The objects of one VOC XML file: [(name, [xmin, ymin, xmax, ymax], difficult)]."""
    objects = []
    for obj in ET.parse(path).getroot().findall("object"):
        box = obj.find("bndbox")
        bbox = [float(box.find(t).text) for t in ("xmin", "ymin", "xmax", "ymax")]
        objects.append((obj.find("name").text.strip(), bbox, flag(obj, "difficult")))
    return objects


def read_results(path):
    """Image ids, scores and 1-based boxes of a results file, in line order."""
    ids, scores, boxes = [], [], []
    with open(path) as f:
        for number, line in enumerate(f, 1):
            fields = line.split()
            if not fields:
                continue
            if len(fields) != 6:
                raise ValueError("%s:%d: expected 6 fields, found '%s'" % (path, number, line))
            ids.append(fields[0])
            scores.append(float(fields[1]))
            boxes.append([float(v) for v in fields[2:]])
    return ids, np.array(scores, dtype=np.float64), np.array(boxes, dtype=np.float64).reshape(-1, 4)


def average_precision(rec, prec, use_07_metric):
    """VOC07 11-point AP, or the VOC2010+ area under the precision envelope."""
    if use_07_metric:
        ap = 0.0
        for t in np.arange(0.0, 1.1, 0.1):
            reached = rec >= t
            p = np.max(prec[reached]) if np.any(reached) else 0.0
            ap = ap + p / 11.0
        return float(ap)
    mrec = np.concatenate(([0.0], rec, [1.0]))
    mpre = np.concatenate(([0.0], prec, [0.0]))
    for i in range(mpre.size - 1, 0, -1):
        mpre[i - 1] = max(mpre[i - 1], mpre[i])
    change = np.where(mrec[1:] != mrec[:-1])[0]
    return float(np.sum((mrec[change + 1] - mrec[change]) * mpre[change + 1]))


def evaluate_class(gt, cls, ids, scores, boxes, iou, inclusive, use_07_metric):
    """AP and counts of one class. gt: {image id: objects of parse_annotation}."""
    recs = {}
    npos = 0
    for image, objects in gt.items():
        mine = [o for o in objects if o[0] == cls]
        npos += sum(1 for o in mine if not o[2])
        recs[image] = {
            "bbox": np.array([o[1] for o in mine], dtype=np.float64).reshape(-1, 4),
            "difficult": np.array([o[2] for o in mine], dtype=bool),
            "taken": np.zeros(len(mine), dtype=bool),
        }
    order = np.argsort(-scores, kind="mergesort")
    nd = len(order)
    tp = np.zeros(nd)
    fp = np.zeros(nd)
    ignored = 0
    for d, k in enumerate(order):
        if ids[k] not in recs:
            raise KeyError("detection in image %s, which the image set lacks" % ids[k])
        rec = recs[ids[k]]
        bb = boxes[k]
        g = rec["bbox"]
        ovmax = -np.inf
        jmax = -1
        if g.shape[0] > 0:
            iw = np.minimum(g[:, 2], bb[2]) - np.maximum(g[:, 0], bb[0]) + 1.0
            ih = np.minimum(g[:, 3], bb[3]) - np.maximum(g[:, 1], bb[1]) + 1.0
            inters = np.maximum(iw, 0.0) * np.maximum(ih, 0.0)
            uni = (bb[2] - bb[0] + 1.0) * (bb[3] - bb[1] + 1.0) + (g[:, 2] - g[:, 0] + 1.0) * (
                g[:, 3] - g[:, 1] + 1.0
            ) - inters
            overlaps = inters / uni
            if inclusive:
                # MATLAB's VOCevaldet only scores pairs that overlap.
                overlaps = np.where((iw > 0) & (ih > 0), overlaps, -np.inf)
            jmax = int(np.argmax(overlaps))
            ovmax = overlaps[jmax]
        passes = ovmax >= iou if inclusive else ovmax > iou
        if passes:
            if rec["difficult"][jmax]:
                ignored += 1
            elif not rec["taken"][jmax]:
                tp[d] = 1.0
                rec["taken"][jmax] = True
            else:
                fp[d] = 1.0
        else:
            fp[d] = 1.0
    ctp = np.cumsum(tp)
    cfp = np.cumsum(fp)
    result = {
        "npos": npos,
        "detections": nd,
        "tp": int(tp.sum()),
        "fp": int(fp.sum()),
        "ignored": ignored,
    }
    if npos == 0:
        result["ap"] = None
        return result
    rec = ctp / float(npos)
    prec = ctp / np.maximum(ctp + cfp, np.finfo(np.float64).eps)
    result["ap"] = average_precision(rec, prec, use_07_metric)
    return result


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--annotations", required=True, help="folder of <id>.xml")
    ap.add_argument("--image-set", required=True, help="file of image ids, one a line")
    ap.add_argument("--results", required=True, help="folder of comp4_det_test_<class>.txt")
    ap.add_argument("--classes", default=",".join(VOC_CLASSES), help="comma-separated")
    ap.add_argument("--iou", type=float, default=0.5)
    ap.add_argument("--overlap-test", choices=["strict", "inclusive"], default="strict")
    ap.add_argument("--use-07-metric", action="store_true")
    ap.add_argument("--out", help="JSON file (default: stdout)")
    args = ap.parse_args()

    with open(args.image_set) as f:
        image_ids = [line.strip() for line in f if line.strip()]
    gt = {}
    for image in image_ids:
        if image in gt:
            sys.exit("image %s is listed twice in %s" % (image, args.image_set))
        gt[image] = parse_annotation(os.path.join(args.annotations, image + ".xml"))
    classes = [c for c in args.classes.split(",") if c]
    per_class = {}
    for cls in classes:
        ids, scores, boxes = read_results(
            os.path.join(args.results, "comp4_det_test_%s.txt" % cls)
        )
        per_class[cls] = evaluate_class(
            gt, cls, ids, scores, boxes, args.iou, args.overlap_test == "inclusive",
            args.use_07_metric,
        )
    aps = [r["ap"] for r in per_class.values() if r["ap"] is not None]
    out = {"classes": per_class, "map": float(np.mean(aps)) if aps else None}
    text = json.dumps(out, indent=1)
    if args.out:
        with open(args.out, "w") as f:
            f.write(text + "\n")
    else:
        print(text)


if __name__ == "__main__":
    main()
