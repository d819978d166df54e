#!/usr/bin/env bash
# CUDA compiles, without a GPU: installs nvcc from PyPI (data-scripts/cuda-requirements.txt,
# into target/cuda-toolkit; pip's cache keeps the 122 MB of wheels between runs), then checks
# the whole workspace with --features cuda: every kernel of candle's and ours is compiled to
# PTX by nvcc, and every line of Rust behind the feature type-checks. It links nothing and
# runs nothing (linking the binary needs libcuda and cuBLAS, which only a GPU machine has;
# data-scripts/gpu_check.sh runs there). Shares the release target folder with the tests.
set -euo pipefail
cd "$(dirname "$0")/.."

toolkit=target/cuda-toolkit
if [[ ! -x $toolkit/bin/python ]]; then
    python3 -m venv "$toolkit"
fi
if ! cmp -s data-scripts/cuda-requirements.txt "$toolkit/installed.txt"; then
    echo "installing data-scripts/cuda-requirements.txt into $toolkit" >&2
    "$toolkit/bin/pip" install --quiet --disable-pip-version-check -r data-scripts/cuda-requirements.txt
    cp data-scripts/cuda-requirements.txt "$toolkit/installed.txt"
fi
cu="$("$toolkit/bin/python" -c 'import sysconfig; print(sysconfig.get_paths()["purelib"])')/nvidia/cu13"
[[ -x $cu/bin/nvcc ]] || { echo "nvcc not found under $cu" >&2; exit 1; }
export PATH="$cu/bin:$PATH" CUDA_ROOT="$cu" CUDA_PATH="$cu" CUDA_COMPUTE_CAP="${CUDA_COMPUTE_CAP:-90}"
nvcc --version | tail -1 >&2
cargo check --release --workspace --lib --tests --features cuda --locked
