#!/usr/bin/env bash
# On a GPU machine: build with --features cuda, run the torchvision parity tests (forward at
# every tap, plain and dilated, the training-step gradients, RoIPool and RoIAlign) on cuda:0, then
# time ResNet-50 extraction, one Rotation training step, one Fast R-CNN RoI-head step and one
# normals (res5 + PSPNet decoder) step against PyTorch CUDA. Budget: 10 minutes, build
# included. Prints a Markdown block to paste into BENCHMARKS.md, and writes it to
# target/gpu_check.md.
#
# Needs on that machine: an NVIDIA driver (nvidia-smi), nvcc (PATH or CUDA_ROOT), cargo with
# the crates fetched (or a network), and for the timings Python with
# data-scripts/bench-requirements.txt (PyTorch CUDA). What is missing is named, and the steps
# that can run still run.
#     bash data-scripts/gpu_check.sh [--cudnn]
set -uo pipefail
cd "$(dirname "$0")/.."
features=cuda
[[ ${1:-} == --cudnn ]] && features=cudnn
report=target/gpu_check.md
mkdir -p target
: > "$report"
say() { echo "$*" | tee -a "$report"; }
fail=0

command -v nvidia-smi >/dev/null || { echo "gpu_check: no nvidia-smi: not a GPU machine" >&2; exit 2; }
if [[ -n ${CUDA_ROOT:-} ]]; then export PATH="$CUDA_ROOT/bin:$PATH"; fi
command -v nvcc >/dev/null || { echo "gpu_check: nvcc not on PATH: set CUDA_ROOT to the CUDA toolkit" >&2; exit 2; }
cap=$(nvidia-smi --query-gpu=compute_cap --format=csv,noheader | head -1 | tr -d .)
export CUDA_COMPUTE_CAP=${CUDA_COMPUTE_CAP:-$cap}
say "### GPU check, $(date -u +%F), $(nvidia-smi --query-gpu=name --format=csv,noheader | head -1), compute $cap, features $features"
say ""

start=$(date +%s)
if ! cargo build --release --features "$features" --locked 2>&1 | tail -3; then
    say "- build with --features $features: FAILED"
    exit 1
fi
say "- build with --features $features: $(( $(date +%s) - start )) s"

if SSLBENCH_TEST_DEVICE=cuda:0 cargo test --release --features "$features" --locked \
    --test backbone_parity --test gradient_parity 2>&1 | tee target/gpu_parity.log | grep -E "^test |test result"; then
    say "- parity on cuda:0 (forward at every tap 1e-4, training-step gradients 1e-3): $(grep -c '\.\.\. ok' target/gpu_parity.log) passed, $(grep -c 'FAILED' target/gpu_parity.log) failed"
else
    say "- parity on cuda:0: FAILED (target/gpu_parity.log)"
    fail=1
fi

if SSLBENCH_TEST_DEVICE=cuda:0 cargo test --release -p sslbench-ops --features "$features" --locked \
    --test roi_parity 2>&1 | tee target/gpu_roi.log | grep -E "^test |test result"; then
    say "- RoIPool / RoIAlign parity on cuda:0 (torchvision fixtures, 1e-5): $(grep -c '\.\.\. ok' target/gpu_roi.log) passed, $(grep -c 'FAILED' target/gpu_roi.log) failed"
else
    say "- RoI parity on cuda:0: FAILED (target/gpu_roi.log)"
    fail=1
fi

if SSLBENCH_TEST_DEVICE=cuda:0 cargo test --release -p sslbench-ops --features "$features" --locked \
    --test normals_ops_parity 2>&1 | tee target/gpu_normals_ops.log | grep -E "^test |test result"; then
    say "- adaptive pooling / bilinear resize parity on cuda:0 (PyTorch fixtures, 1e-5): $(grep -c '\.\.\. ok' target/gpu_normals_ops.log) passed, $(grep -c 'FAILED' target/gpu_normals_ops.log) failed"
else
    say "- adaptive pooling / bilinear resize parity on cuda:0: FAILED (target/gpu_normals_ops.log)"
    fail=1
fi
say ""
say "Fast R-CNN RoI-head step, 4 images x 64 RoIs on 1024x38x63 res4 maps (sslbench):"
cargo run --release --features "$features" --locked --example frcnn_bench -- --device cuda:0 \
    --iters 10 2>/dev/null | tee -a "$report"
say ""
say "Normals step, 16 res4 maps of 1024x57x75 (456x600 frames at output stride 8), res5 + PSPNet decoder, and the dilated trunk per frame (sslbench):"
cargo run --release --features "$features" --locked --example normals_bench -- --device cuda:0 \
    --iters 10 --warmup 3 --trunk-images 8 2>/dev/null | tee -a "$report"

python=${PYTHON:-python3}
if $python -c 'import torch, sys; sys.exit(0 if torch.cuda.is_available() else 1)' 2>/dev/null; then
    say ""
    say "ResNet-50 and Jigsaw AlexNet extraction, 48 images, batch 16:"
    $python data-scripts/bench_extract.py --device cuda:0 --repeats 2 | tee -a "$report"
    say ""
    say "Rotation training step, batch 8, 224 px:"
    $python data-scripts/bench_pretrain.py --device cuda:0 --tasks rotation --batch 8 --steps 5 \
        --warmup 2 | grep "^|" | tee -a "$report"
    say ""
    say "Fast R-CNN RoI-head step, PyTorch/torchvision:"
    $python data-scripts/bench_frcnn_torch.py --device cuda --iters 10 --warmup 3 --json | tee -a "$report"
    say ""
    say "Normals step, PyTorch/torchvision:"
    $python data-scripts/bench_normals_torch.py --device cuda --iters 10 --warmup 3 --json | tee -a "$report"
else
    say "- timings skipped: no PyTorch with CUDA for $python (pip install -r data-scripts/bench-requirements.txt)"
fi
say ""
say "total $(( $(date +%s) - start )) s"
exit $fail
