#!/usr/bin/env python3
"""Write Fashion-MNIST images as a small VOC-layout dataset and as Places205-style list files.

Reads the four gzip IDX files that Debian's `dataset-fashion-mnist` package ships
(`{train,t10k}-{images-idx3,labels-idx1}-ubyte.gz`) and writes, deterministically:

  JPEGImages/<id>.jpg          28x28 RGB JPEG (quality 95); ids train_NNNNN / test_NNNNN, the
                               image's index in its IDX file
  Annotations/<id>.xml         VOC XML: the size and one object, the whole image, of its class
  ImageSets/Main/<split>.txt   and <class>_<split>.txt (devkit lines "<id>  1" / "<id> -1") for
                               trainval (first 100 per class of train), test (first 100 per
                               class of t10k), trainval_small / test_small (first 20 per class)
  lists/<name>.txt             "JPEGImages/<id>.jpg <label>" for train (first 300 per class of
                               train), val (first 100 per class of t10k), train_small (30),
                               val_small (10), and pretrain (images 300 to 799 of each class of
                               train: 5000 images no other split uses, for pretext training)
  classes.txt                  the 10 class names, one a line, in label order

"First n per class" keeps the images' order in the IDX file. Every image a split or list uses
gets a JPEG and an annotation. Usage: make_fashion_voc.py SOURCE_DIR OUT_DIR
"""

import gzip
import os
import sys

import numpy as np
from PIL import Image

# Fashion-MNIST's labels 0..9, with file-safe names ("T-shirt/top" -> tshirt).
CLASSES = [
    "tshirt",
    "trouser",
    "pullover",
    "dress",
    "coat",
    "sandal",
    "shirt",
    "sneaker",
    "bag",
    "ankleboot",
]

# (IDX file prefix, id prefix, {VOC split: per class}, {list name: per class})
SOURCES = [
    (
        "train",
        "train",
        {"trainval": 100, "trainval_small": 20},
        {"train": 300, "train_small": 30, "pretrain": (300, 800)},
    ),
    ("t10k", "test", {"test": 100, "test_small": 20}, {"val": 100, "val_small": 10}),
]

IDX_MAGIC = {3: 2051, 1: 2049}  # number of dimensions -> IDX magic (unsigned bytes)
JPEG_QUALITY = 95


def read_idx(path, ndim):
    """The array of a gzip IDX file of unsigned bytes with `ndim` dimensions."""
    with gzip.open(path, "rb") as f:
        data = f.read()
    header = np.frombuffer(data, dtype=">u4", count=1 + ndim)
    if header[0] != IDX_MAGIC[ndim]:
        sys.exit(
            "error: %s is not an IDX file of %d dimension(s): reinstall the .deb" % (path, ndim)
        )
    shape = tuple(int(n) for n in header[1:])
    return np.frombuffer(data, dtype=np.uint8, offset=4 * (1 + ndim)).reshape(shape)


def first_per_class(labels, n):
    """Indices of the first `n` images of every class (or of images `start` to `stop - 1` of
    every class when `n` is a pair), in file order."""
    start, stop = n if isinstance(n, tuple) else (0, n)
    picked = [np.flatnonzero(labels == c)[start:stop] for c in range(len(CLASSES))]
    if any(len(p) < stop - start for p in picked):
        sys.exit("error: fewer than %d images in some class" % stop)
    return np.sort(np.concatenate(picked))


def annotation(image_id, label, size):
    """VOC XML for a `size` x `size` image holding one object, the whole image."""
    return (
        "<annotation>\n"
        "  <folder>fashion-mnist</folder>\n"
        "  <filename>%s.jpg</filename>\n"
        "  <source><database>Fashion-MNIST</database></source>\n"
        "  <size><width>%d</width><height>%d</height><depth>3</depth></size>\n"
        "  <segmented>0</segmented>\n"
        "  <object>\n"
        "    <name>%s</name>\n"
        "    <pose>Unspecified</pose>\n"
        "    <truncated>0</truncated>\n"
        "    <difficult>0</difficult>\n"
        "    <bndbox><xmin>1</xmin><ymin>1</ymin><xmax>%d</xmax><ymax>%d</ymax></bndbox>\n"
        "  </object>\n"
        "</annotation>\n" % (image_id, size, size, CLASSES[label], size, size)
    )


def write_lines(path, lines):
    """Write `lines`, each ended by a newline."""
    with open(path, "w") as f:
        f.writelines(line + "\n" for line in lines)


def image_id(prefix, index):
    """The id of image `index` of an IDX file: train_00042, test_00007."""
    return "%s_%05d" % (prefix, index)


def write_source(source, out, idx_prefix, id_prefix, splits, lists):
    """Images, annotations, VOC splits and lists drawn from one pair of IDX files."""
    images = read_idx(os.path.join(source, idx_prefix + "-images-idx3-ubyte.gz"), 3)
    labels = read_idx(os.path.join(source, idx_prefix + "-labels-idx1-ubyte.gz"), 1)
    if len(images) != len(labels):
        sys.exit("error: %s: %d images but %d labels" % (idx_prefix, len(images), len(labels)))
    picks = {name: first_per_class(labels, n) for name, n in {**splits, **lists}.items()}

    for i in np.unique(np.concatenate(list(picks.values()))):
        name = image_id(id_prefix, i)
        Image.fromarray(images[i]).convert("RGB").save(
            os.path.join(out, "JPEGImages", name + ".jpg"), quality=JPEG_QUALITY
        )
        with open(os.path.join(out, "Annotations", name + ".xml"), "w") as f:
            f.write(annotation(name, labels[i], images.shape[1]))

    main_dir = os.path.join(out, "ImageSets", "Main")
    for split in splits:
        indices = picks[split]
        write_lines(
            os.path.join(main_dir, split + ".txt"), [image_id(id_prefix, i) for i in indices]
        )
        for c, name in enumerate(CLASSES):
            write_lines(
                os.path.join(main_dir, "%s_%s.txt" % (name, split)),
                ["%s %2d" % (image_id(id_prefix, i), 1 if labels[i] == c else -1) for i in indices],
            )
    for name in lists:
        write_lines(
            os.path.join(out, "lists", name + ".txt"),
            ["JPEGImages/%s.jpg %d" % (image_id(id_prefix, i), labels[i]) for i in picks[name]],
        )
    counts = ", ".join("%s %d" % (name, len(p)) for name, p in picks.items())
    print("fashion-mnist %s: %s" % (idx_prefix, counts))


def main():
    if len(sys.argv) != 3:
        sys.exit(__doc__)
    source, out = sys.argv[1:]
    for sub in ("JPEGImages", "Annotations", os.path.join("ImageSets", "Main"), "lists"):
        os.makedirs(os.path.join(out, sub), exist_ok=True)
    write_lines(os.path.join(out, "classes.txt"), CLASSES)
    for idx_prefix, id_prefix, splits, lists in SOURCES:
        write_source(source, out, idx_prefix, id_prefix, splits, lists)


if __name__ == "__main__":
    main()
