#!/usr/bin/env bash
# PPO navigation training throughput with a full-width ResNet-50 tap on CPU: sslbench
# (`sslbench nav configs/nav/bench_resnet50.toml`: built-in environment at 256x256, res3,
# one environment, 64-step rollouts, 8 epochs x 8 minibatches, 3 updates) and the PyTorch
# reference on the same shapes (data-scripts/bench_ppo_torch.py), one after the other in the
# same run. Prints environment frames per second (median over the updates after the first)
# and the ratio. Needs torch and torchvision (not installed by setup.sh).
#
#   data-scripts/bench_nav.sh [--tap res3]
set -euo pipefail
cd "$(dirname "$0")/.."
tap=res3
[ "${1:-}" = "--tap" ] && tap=$2
out=$(mktemp -d)
trap 'rm -rf "$out"' EXIT
echo "load average before: $(cut -d' ' -f1-3 /proc/loadavg)"
cargo build --release -q
./target/release/sslbench nav configs/nav/bench_resnet50.toml \
    --backbone configs/backbones/resnet50_random.toml --taps "$tap" --out "$out" 2>/dev/null >/dev/null
ours=$(python3 - "$out"/bench_resnet50_resnet50_random/"$tap"/seed_0/progress.csv <<'PY'
import csv, statistics, sys
rows = list(csv.DictReader(open(sys.argv[1])))
print(f"{statistics.median(float(r['fps']) for r in rows[1:]):.3f}")
PY
)
echo "sslbench: $ours frames/s"
python3 data-scripts/bench_ppo_torch.py --tap "$tap" --json "$out/torch.json"
theirs=$(python3 -c "import json,sys; print(f\"{json.load(open(sys.argv[1]))['fps_median']:.3f}\")" "$out/torch.json")
echo "load average after: $(cut -d' ' -f1-3 /proc/loadavg)"
echo "| side | frames/s | ratio |"
echo "|---|---|---|"
echo "| sslbench | $ours | $(python3 -c "print(f'{$ours/$theirs:.2f}x')") |"
echo "| PyTorch $(python3 -c 'import torch; print(torch.__version__)') | $theirs | 1 |"
