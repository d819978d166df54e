#!/usr/bin/env bash
# Prepare a fresh Debian/Ubuntu machine: the C libraries the build links (HDF5), the Python
# packages the data scripts use (data-scripts/requirements.txt), then the real sample data the
# demo and the tests read. Idempotent; apt and pip run only when something is missing or
# differs (apt as root, or through sudo).
set -euo pipefail
cd "$(dirname "$0")/.."

missing=()
for pkg in libhdf5-dev pkg-config; do
    dpkg -s "$pkg" >/dev/null 2>&1 || missing+=("$pkg")
done
dpkg -s fonts-dejavu-core >/dev/null 2>&1 || missing+=(fonts-dejavu-core) # plot text (src/report/plot.rs)
# A real browser for tests/report_html.rs: it renders `sslbench report` headless.
command -v chromium >/dev/null 2>&1 || missing+=(chromium)
# Headless OpenGL through EGL for MiniWorld (make_normals_miniworld.py): the EGL loader, Mesa's
# EGL vendor library and its software (llvmpipe) drivers, and libGLU (pyglet's gluPerspective).
for pkg in libegl1 libegl-mesa0 libgl1-mesa-dri libgl1 libglu1-mesa; do
    dpkg -s "$pkg" >/dev/null 2>&1 || missing+=("$pkg")
done
if ((${#missing[@]})); then
    sudo=""
    [[ $(id -u) -eq 0 ]] || sudo="sudo"
    echo "installing ${missing[*]}" >&2
    $sudo apt-get update -qq
    DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq "${missing[@]}" >/dev/null
fi

# Python packages: install only when an installed version differs from its pin.
if ! python3 - data-scripts/requirements.txt <<'PY'; then
import sys
from importlib.metadata import PackageNotFoundError, version

for line in open(sys.argv[1]):
    name, _, pin = line.split("#")[0].strip().partition("==")
    try:
        if name and version(name) != pin:
            sys.exit(1)
    except PackageNotFoundError:
        sys.exit(1)
PY
    echo "installing data-scripts/requirements.txt" >&2
    python3 -m pip install --quiet --disable-pip-version-check -r data-scripts/requirements.txt
fi

bash data-scripts/fetch_samples.sh
bash data-scripts/fetch_fashion_mnist.sh

# The ViZDoom detection set (rendered frames, boxes from the engine's labels buffer) that
# tests/detection.rs trains Fast R-CNN on; deterministic, about 10 s. Rendered again only when
# the script changed.
DOOM=data/samples/doom-voc
stamp=$(sha256sum data-scripts/make_doom_voc.py | cut -c1-16)
if [[ ! -f $DOOM/.made-by-$stamp ]]; then
    python3 data-scripts/make_doom_voc.py --out "$DOOM" --seed 0 --train-images 150 --test-images 75
    touch "$DOOM/.made-by-$stamp"
fi

# NYUv2 reader fixtures (tests/nyuv2_readers.rs): the labelled .mat behind its MATLAB user
# block, splits.mat, all_normals.pklz and the per-image forms, from the Motorcycle depth (in
# the scikit-image wheel fetch_samples.sh keeps) and ViZDoom frames; a few seconds, 4 MB.
NYU=data/samples/nyuv2-fixture
stamp=$(sha256sum data-scripts/make_nyuv2_fixtures.py | cut -c1-16)
if [[ ! -f $NYU/.made-by-$stamp ]]; then
    python3 data-scripts/make_nyuv2_fixtures.py --out "$NYU"
    touch "$NYU/.made-by-$stamp"
fi

# The normals task's training set (tests/normals_task.rs): 96 MiniWorld frames at 160x120
# (24 indoor worlds, 4 random poses each, the last 6 worlds the test split) with the renderer's
# metric depth, in the NYUv2 labelled-.mat layout with a splits.mat; deterministic, about a
# minute, 5 MB. Rendered again only when a script it runs changed.
NFR=data/samples/normals-miniworld
stamp=$(cat data-scripts/make_normals_miniworld.py data-scripts/make_nyuv2_fixtures.py | sha256sum | cut -c1-16)
if [[ ! -f $NFR/.made-by-$stamp ]]; then
    python3 data-scripts/make_normals_miniworld.py --out "$NFR"
    touch "$NFR/.made-by-$stamp"
fi

# The normals parity fixtures (tests/normals_from_depth.rs, tests/normals_metrics.rs): NumPy
# references of the window-PCA normals on the Middlebury Motorcycle depth of the scikit-image
# wheel fetched above, and of the evaluation and codebook labels on those normals; about 30 s.
# Written again only when a script changed.
NREF=data/samples/normals-ref
NMET=data/samples/normals-metrics
stamp=$(cat data-scripts/normals_from_depth_ref.py data-scripts/normals_metrics_ref.py | sha256sum | cut -c1-16)
if [[ ! -f $NMET/.made-by-$stamp ]]; then
    rm -rf "$NREF" "$NMET"
    python3 data-scripts/normals_from_depth_ref.py --out "$NREF"
    python3 data-scripts/normals_metrics_ref.py --normals "$NREF" --out "$NMET"
    touch "$NMET/.made-by-$stamp"
fi
