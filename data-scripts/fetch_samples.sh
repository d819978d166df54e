#!/usr/bin/env bash
# Fetch the real sample images the tests and the demo use into data/samples/ (gitignored).
#
# Sources (package registries only, see docs/data-sources.md):
#   - PyPI labelme 6.3.1 sdist (GPL-3+): 3 PASCAL VOC 2011 photos with VOC XML boxes
#     (examples/bbox_detection/data_dataset_voc) and the same photos with COCO instance
#     annotations (examples/instance_segmentation/data_dataset_coco).
#   - PyPI scikit-image 0.26.0 wheel (BSD-3): the photos of skimage/data/.
#
# Produces:
#   data/samples/labelme-voc/     VOC layout: JPEGImages/, Annotations/, ImageSets/Main/
#   data/samples/labelme-coco/    annotations.json + JPEGImages/
#   data/samples/skimage/         every skimage/data/*.png|*.jpg, flat
#   data/samples/skimage-folder/  ImageFolder tree <class>/<image>, classes listed below
#
# Idempotent: archives are kept in data/samples/downloads/ and verified by SHA-256; the
# outputs are rebuilt from them on every run. Needs bash, python3 with pip, tar, unzip.
set -euo pipefail

cd "$(dirname "$0")/.."
OUT=data/samples
DL=$OUT/downloads
mkdir -p "$DL"

LABELME=labelme-6.3.1.tar.gz
LABELME_SHA=2947e0d8341a92faa7b3ee50cf4b672f838051c6bf24892526e95b64fd3a707e
SKIMAGE=scikit_image-0.26.0-cp311-cp311-manylinux_2_24_x86_64.manylinux_2_28_x86_64.whl
SKIMAGE_SHA=74aa5518ccea28121f57a95374581d3b979839adc25bb03f289b1bc9b99c58af

fetch() { # file sha256 pip-args...
    local file=$1 sha=$2
    shift 2
    if [[ ! -f $DL/$file ]]; then
        python3 -m pip download --quiet --no-deps --dest "$DL" "$@"
    fi
    echo "$sha  $DL/$file" | sha256sum --check --quiet || {
        echo "error: $DL/$file does not match its pinned SHA-256; delete it and run again" >&2
        exit 1
    }
}

fetch "$LABELME" "$LABELME_SHA" --no-binary :all: labelme==6.3.1
# The images are the same in every wheel of the release: pin one so the hash is stable.
fetch "$SKIMAGE" "$SKIMAGE_SHA" --only-binary :all: --python-version 3.11 --implementation cp \
    --abi cp311 --platform manylinux_2_28_x86_64 scikit-image==0.26.0

TMP=$(mktemp -d)
trap 'rm -rf "$TMP"' EXIT

# --- labelme: VOC and COCO ---------------------------------------------------------------
EX=labelme-6.3.1/examples
tar -xzf "$DL/$LABELME" -C "$TMP" \
    "$EX/bbox_detection/data_dataset_voc/JPEGImages" \
    "$EX/bbox_detection/data_dataset_voc/Annotations" \
    "$EX/instance_segmentation/data_dataset_coco/annotations.json" \
    "$EX/instance_segmentation/data_dataset_coco/JPEGImages"

VOC=$OUT/labelme-voc
rm -rf "$VOC" && mkdir -p "$VOC"
cp -r "$TMP/$EX/bbox_detection/data_dataset_voc/"{JPEGImages,Annotations} "$VOC/"

# DERIVED FIXTURE: labelme ships no ImageSets/Main. We write trainval.txt and one
# <class>_trainval.txt for each of the 20 VOC classes, by the VOC devkit's rule:
# 1 if the image has a non-difficult object of the class, 0 if only difficult ones, -1 otherwise
# (lines "%s %2d", as the devkit writes them). sslbench's voc::write_image_sets does the same.
python3 - "$VOC" <<'PY'
import os, sys
import xml.etree.ElementTree as ET

root = sys.argv[1]
ids = sorted(f[:-4] for f in os.listdir(os.path.join(root, "Annotations")) if f.endswith(".xml"))
objects = {}
for i in ids:
    tree = ET.parse(os.path.join(root, "Annotations", i + ".xml"))
    objects[i] = [(o.findtext("name").strip(), (o.findtext("difficult") or "").strip() == "1")
                  for o in tree.iter("object")]
# The photos are PASCAL VOC 2011 images: label them over the 20 VOC classes, as VOCdevkit does.
classes = ["aeroplane", "bicycle", "bird", "boat", "bottle", "bus", "car", "cat", "chair", "cow",
           "diningtable", "dog", "horse", "motorbike", "person", "pottedplant", "sheep", "sofa",
           "train", "tvmonitor"]
unknown = {name for objs in objects.values() for name, _ in objs} - set(classes)
assert not unknown, "not VOC classes: %s" % unknown
main = os.path.join(root, "ImageSets", "Main")
os.makedirs(main, exist_ok=True)
with open(os.path.join(main, "trainval.txt"), "w") as f:
    f.writelines(i + "\n" for i in ids)
for c in classes:
    with open(os.path.join(main, c + "_trainval.txt"), "w") as f:
        for i in ids:
            flags = [difficult for name, difficult in objects[i] if name == c]
            label = -1 if not flags else (0 if all(flags) else 1)
            f.write("%s %2d\n" % (i, label))
print("labelme-voc: %d images, classes %s (ImageSets/Main derived from the XML)" % (len(ids), classes))
PY

COCO=$OUT/labelme-coco
rm -rf "$COCO" && mkdir -p "$COCO"
cp -r "$TMP/$EX/instance_segmentation/data_dataset_coco/"{annotations.json,JPEGImages} "$COCO/"
echo "labelme-coco: $(ls "$COCO/JPEGImages" | wc -l) images, annotations.json"

# --- scikit-image photos -----------------------------------------------------------------
SK=$OUT/skimage
rm -rf "$SK" && mkdir -p "$SK"
unzip -q -j "$DL/$SKIMAGE" 'skimage/data/*.png' 'skimage/data/*.jpg' -d "$SK"
echo "skimage: $(ls "$SK" | wc -l) images"

# ImageFolder tree, classes by subject, chosen by hand from skimage's own descriptions
# (skimage/data/_fetchers.py): everyday photos, texture close-ups, biomedical images.
# Grey, RGB and RGBA PNGs and JPEGs are mixed on purpose.
FOLDER=$OUT/skimage-folder
rm -rf "$FOLDER"
declare -A CLASSES=(
    [photo]="astronaut.png camera.png chelsea.png coffee.png motorcycle_left.png rocket.jpg"
    [texture]="brick.png grass.png gravel.png"
    [biomedical]="cell.png ihc.png microaneurysms.png retina.jpg"
)
for class in $(printf '%s\n' "${!CLASSES[@]}" | sort); do
    mkdir -p "$FOLDER/$class"
    for image in ${CLASSES[$class]}; do
        cp "$SK/$image" "$FOLDER/$class/"
    done
    echo "skimage-folder/$class: ${CLASSES[$class]}"
done

echo "done: $(find "$OUT" -path "$DL" -prune -o -type f -print | wc -l) files under $OUT"
