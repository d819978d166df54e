#!/usr/bin/env python3
"""Reference VOC07 linear-SVM protocol (docs/protocols.md section 2) with scikit-learn.

Does what FAIR's tools/svm/train_svm_kfold.py + test_svm.py do, in one pass:
  - features read as float64, every row divided by (its L2 norm + 1e-5), train and test;
  - per class and per cost (in the order given): 3-fold cross-validated average precision of
    LinearSVC(C=cost, class_weight={1: 2, -1: 1}, squared hinge, L2, dual, tol 1e-4,
    max_iter 2000, intercept_scaling 1); folds as cross_val_score(cv=3) makes them for a
    classifier (stratified, not shuffled); training labels: 1 positive, -1 and 0 (difficult)
    negative, as FAIR trains;
  - the chosen cost is the first of the highest mean CV APs in list order (np.argmax, as FAIR's
    test_svm.py does); refit on all training images with it;
  - test AP: VOC all-points AP of decision_function scores, difficult (0) images left out.

Targets use the devkit's values: 1 present, -1 absent, 0 difficult only (N x C integers).
Differences from FAIR, none of which changes a number: costs are taken as given (FAIR always
appends 0.5^k, k = 4..19, to the list; the default here is that full list of 26); only the
chosen cost is refitted on all data (FAIR refits every cost and keeps them on disk); LinearSVC
gets random_state=--seed (FAIR leaves it unset, so its liblinear runs are not repeatable).
"""

import argparse
import json
import time
import warnings

import joblib
import numpy as np
import sklearn
from sklearn.exceptions import ConvergenceWarning
from sklearn.model_selection import cross_val_score
from sklearn.svm import LinearSVC

# FAIR's grid: its default list in GETTING_STARTED.md plus the 0.5^k that parse_cost_list adds.
FAIR_COSTS = [1e-7, 1e-6, 1e-5, 1e-4, 1e-3, 1e-2, 0.1, 1.0, 10.0, 100.0] + [
    0.5**k for k in range(4, 20)
]
NORM_EPS = 1e-5
POSITIVE_WEIGHT = 2
CV_FOLDS = 3


def l2_normalise(features):
    """Rows divided by (their L2 norm + 1e-5), in float64."""
    features = np.asarray(features, dtype=np.float64)
    return features / (np.linalg.norm(features, axis=1) + NORM_EPS)[:, None]


def voc_average_precision(scores, positive):
    """VOC all-points AP: precision at each rank made non-increasing from the right (the
    envelope), averaged over the ranks of the positives; equal to sum(dR * P) with the recall
    padded by 0 and 1. Equal scores keep their input order."""
    order = np.argsort(-scores, kind="stable")
    hits = positive[order]
    if not hits.any():
        raise ValueError("no positive image: AP is undefined")
    precision = np.cumsum(hits) / np.arange(1, len(hits) + 1)
    envelope = np.maximum.accumulate(precision[::-1])[::-1]
    return float(envelope[hits].mean())


def make_svm(cost, seed):
    """FAIR's LinearSVC for one cost."""
    return LinearSVC(
        C=cost,
        class_weight={1: POSITIVE_WEIGHT, -1: 1},
        penalty="l2",
        loss="squared_hinge",
        dual=True,
        tol=1e-4,
        max_iter=2000,
        intercept_scaling=1.0,
        random_state=seed,
    )


def cv_average_precision(x, y, cost, seed):
    """Mean AP over the 3 folds cross_val_score makes for a classifier (stratified, in order)."""
    scores = cross_val_score(
        make_svm(cost, seed), x, y, cv=CV_FOLDS, scoring="average_precision", error_score="raise"
    )
    return float(scores.mean())


def run_class(index, name, train_x, train_t, test_x, test_t, costs, seed):
    """Cross-validate every cost, refit the best, test it: the class's JSON entry."""
    start = time.perf_counter()
    train_y = np.where(train_t[:, index] == 1, 1, -1)  # difficult (0) trains as negative
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always", ConvergenceWarning)
        cv_ap = [cv_average_precision(train_x, train_y, cost, seed) for cost in costs]
        best = int(np.argmax(cv_ap))  # the first of equal maxima, in list order
        svm = make_svm(costs[best], seed).fit(train_x, train_y)
    counted = 0
    for w in caught:
        if issubclass(w.category, ConvergenceWarning):
            counted += 1
        else:
            warnings.warn_explicit(w.message, w.category, w.filename, w.lineno)
    scored = test_t[:, index] != 0
    try:
        test_ap = voc_average_precision(
            svm.decision_function(test_x[scored]), test_t[scored, index] == 1
        )
    except ValueError as err:
        raise SystemExit("error: class %d (%s): %s in the test targets" % (index, name, err))
    return {
        "index": index,
        "name": name,
        "cost": costs[best],
        "cv_ap": cv_ap,
        "test_ap": test_ap,
        "fit_seconds": time.perf_counter() - start,
        "convergence_warnings": counted,
    }


def load(features_path, targets_path):
    """L2-normalised float64 features and int32 targets, checked."""
    features, targets = np.load(features_path), np.load(targets_path)
    if features.ndim != 2 or targets.ndim != 2 or len(features) != len(targets):
        raise SystemExit(
            "error: %s is %s and %s is %s: need N x D features and N x C targets"
            % (features_path, features.shape, targets_path, targets.shape)
        )
    if not np.isin(targets, (-1, 0, 1)).all():
        raise SystemExit("error: %s holds values other than 1, -1, 0" % targets_path)
    return l2_normalise(features), targets.astype(np.int32)


def parse_args():
    p = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    p.add_argument("--train-features", required=True, help="N x D .npy")
    p.add_argument("--train-targets", required=True, help="N x C .npy of 1 / -1 / 0")
    p.add_argument("--test-features", required=True)
    p.add_argument("--test-targets", required=True)
    p.add_argument(
        "--costs",
        default=",".join(repr(c) for c in FAIR_COSTS),
        help="comma list, in the order ties are broken (default: FAIR's 26)",
    )
    p.add_argument("--classes", help="comma list of class names (default: the indices)")
    p.add_argument("--only-classes", help="comma list of class indices to run (default: all)")
    p.add_argument("--jobs", type=int, default=1, help="classes run in parallel (FAIR: 1)")
    p.add_argument("--seed", type=int, default=0, help="LinearSVC random_state")
    p.add_argument("--out", required=True, help="result JSON")
    return p.parse_args()


def main():
    args = parse_args()
    start = time.perf_counter()
    train_x, train_t = load(args.train_features, args.train_targets)
    test_x, test_t = load(args.test_features, args.test_targets)
    if train_x.shape[1] != test_x.shape[1] or train_t.shape[1] != test_t.shape[1]:
        raise SystemExit("error: train and test differ in feature size or class count")
    num_classes = train_t.shape[1]
    names = args.classes.split(",") if args.classes else [str(c) for c in range(num_classes)]
    if len(names) != num_classes:
        raise SystemExit("error: %d names for %d classes" % (len(names), num_classes))
    indices = (
        [int(c) for c in args.only_classes.split(",")] if args.only_classes else range(num_classes)
    )
    if any(not 0 <= c < num_classes for c in indices):
        raise SystemExit("error: --only-classes must lie in 0..%d" % (num_classes - 1))
    costs = [float(c) for c in args.costs.split(",")]

    entries = joblib.Parallel(n_jobs=args.jobs)(
        joblib.delayed(run_class)(c, names[c], train_x, train_t, test_x, test_t, costs, args.seed)
        for c in indices
    )
    for e in entries:
        print(
            "class %2d %-12s cost %-12g cv AP %.4f test AP %.4f %8.1f s  %d convergence warnings"
            % (
                e["index"],
                e["name"],
                e["cost"],
                max(e["cv_ap"]),
                e["test_ap"],
                e["fit_seconds"],
                e["convergence_warnings"],
            )
        )
    result = {
        "protocol": "fair_voc07_svm",
        "sklearn": sklearn.__version__,
        "costs": costs,
        "classes": entries,
        "mAP": float(np.mean([e["test_ap"] for e in entries])),
        "seconds": time.perf_counter() - start,
    }
    with open(args.out, "w") as f:
        json.dump(result, f, indent=1)
    print(
        "mAP %.4f over %d classes, %.1f s -> %s"
        % (result["mAP"], len(entries), result["seconds"], args.out)
    )


if __name__ == "__main__":
    main()
