#!/usr/bin/env bash
# Prepare a fresh Debian/Ubuntu machine: the C libraries the build links (HDF5), then the
# real sample data the demo and the tests read. Idempotent; apt runs only when something
# is missing (as root, or through sudo).
set -euo pipefail
cd "$(dirname "$0")/.."

missing=()
for pkg in libhdf5-dev pkg-config; do
    dpkg -s "$pkg" >/dev/null 2>&1 || missing+=("$pkg")
done
if ((${#missing[@]})); then
    sudo=""
    [[ $(id -u) -eq 0 ]] || sudo="sudo"
    echo "installing ${missing[*]}" >&2
    $sudo apt-get update -qq
    DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq "${missing[@]}" >/dev/null
fi

bash data-scripts/fetch_samples.sh
