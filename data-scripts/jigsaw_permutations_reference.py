#!/usr/bin/env python3
"""Reference Jigsaw permutation sets for tests/jigsaw_permutations.rs.

Noroozi & Favaro (2016), Algorithm 1, as run by FAIR's
extra_scripts/generate_jigsaw_permutations.py: start from one uniformly drawn permutation of
the 9 tiles, then repeatedly add the not-yet-chosen permutation (of all 9! in lexicographic
order) whose Hamming distance to the chosen set is largest, by mean ("mean", FAIR's max_avg)
or by minimum ("min", FAIR's max_min); ties go to the first in lexicographic order, as
numpy's argmax does. Per-candidate distance sums (or minima) are updated as each permutation
is added instead of recomputing the full distance matrix, which selects the same sequence.

Greedy selection only appends, so the set of size n is the first n rows of any larger set:
one run serves every requested size. Prints one JSON object per size:
{"size", "criterion", "mean_hamming", "min_hamming"}, distances in tiles (0..9) over all
pairs of distinct chosen permutations.

    python3 jigsaw_permutations_reference.py --sizes 100 1000 --criterion mean --seed 0
    [--first INDEX]  # lexicographic index of the starting permutation instead of a draw
    [--save FILE]    # the largest set as an int32 .npy of shape (size, 9)
"""

import argparse
import itertools
import json

import numpy as np

TILES = 9


def select(size, criterion, first):
    """The greedy set of `size` permutations starting from lexicographic index `first`."""
    columns = np.array(list(itertools.permutations(range(TILES))), dtype=np.uint8).T
    total = columns.shape[1]
    start = 0 if criterion == "mean" else TILES
    score = np.full(total, start, dtype=np.int32)
    dist = np.empty(total, dtype=np.uint8)
    chosen = [first]
    while True:
        j = chosen[-1]
        np.not_equal(columns[0], columns[0, j], out=dist)
        for row in columns[1:]:
            dist += row != row[j]
        if criterion == "mean":
            score += dist
        else:
            np.minimum(score, dist, out=score)
        # Chosen permutations drop out of the candidates, as np.delete does in FAIR's script.
        score[j] = -1 << 30
        if len(chosen) == size:
            break
        chosen.append(int(score.argmax()))
    return columns[:, chosen].T.astype(np.int32)


def stats(perms):
    """Mean and minimum Hamming distance over pairs of distinct rows, in tiles."""
    d = (perms[:, None, :] != perms[None, :, :]).sum(axis=2)
    off = d[~np.eye(len(perms), dtype=bool)]
    return float(off.mean()), float(off.min())


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", type=int, nargs="+", required=True)
    parser.add_argument("--criterion", choices=["mean", "min"], default="mean")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--first", type=int, default=None)
    parser.add_argument("--save", default=None)
    args = parser.parse_args()
    total = 362880
    first = np.random.RandomState(args.seed).randint(total) if args.first is None else args.first
    perms = select(max(args.sizes), args.criterion, int(first))
    for size in args.sizes:
        mean, least = stats(perms[:size])
        print(json.dumps({"size": size, "criterion": args.criterion,
                          "mean_hamming": mean, "min_hamming": least}))
    if args.save:
        np.save(args.save, perms)


if __name__ == "__main__":
    main()
