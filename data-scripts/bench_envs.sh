#!/usr/bin/env bash
# Steps per second of a simulator through the gym bridge (Rust client, Unix socket and TCP)
# against the same adapter driven in-process from Python (envs/bridge/inprocess.py), with the
# same seeded random actions, interleaved in the same run; prints the medians and the bridge's
# overhead. The bridge runs twice per transport: pixels through shared memory (the default on
# one host) and through the socket; and once with the client polling for 1 ms before it sleeps
# (BridgeConfig::spin_us, off by default). Server start-up is not timed on either side.
#
#   data-scripts/bench_envs.sh [--env vizdoom:my_way_home] [--steps 5000] [--rounds 5]
#                              [--option KEY=VALUE ...] [--python python3]
set -euo pipefail
cd "$(dirname "$0")/.."

env_id=vizdoom:my_way_home
steps=5000
rounds=5
python=python3
options=()
while [ $# -gt 0 ]; do
    case "$1" in
        --env) env_id=$2; shift 2 ;;
        --steps) steps=$2; shift 2 ;;
        --rounds) rounds=$2; shift 2 ;;
        --python) python=$2; shift 2 ;;
        --option) options+=(--option "$2"); shift 2 ;;
        *) echo "unknown argument $1 (see the header of $0)" >&2; exit 2 ;;
    esac
done

cargo build --release --quiet -p sslbench-envs --example bench_bridge
bench=target/release/examples/bench_bridge
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
"$python" -c "import random; r = random.Random(0); print(' '.join(str(r.randrange(3)) for _ in range($steps)))" \
    >"$tmp/actions.txt"

echo "$env_id ${options[*]:-}: $steps random steps, $rounds interleaved rounds, $(nproc) cores," \
    "load average before: $(cut -d' ' -f1-3 /proc/loadavg)" >&2
for round in $(seq "$rounds"); do
    "$python" envs/bridge/inprocess.py bench --env "$env_id" --seed 1 --actions-file "$tmp/actions.txt" \
        ${options[@]+"${options[@]}"} 2>/dev/null |
        sed 's/^{/{"mode": "in-process", /' >>"$tmp/results.jsonl"
    for mode in "unix true 0" "tcp true 0" "unix false 0" "tcp false 0" "unix true 1000"; do
        set -- $mode
        label="bridge $1"
        [ "$2" = false ] && label="$label, pixels through the socket"
        [ "$3" != 0 ] && label="$label, client polls $3 us"
        "$bench" --env "$env_id" --transport "$1" --shared-memory "$2" --spin-us "$3" --seed 1 \
            --actions-file "$tmp/actions.txt" ${options[@]+"${options[@]}"} |
            sed "s/^{/{\"mode\": \"$label\", /" >>"$tmp/results.jsonl"
    done
    echo "round $round done" >&2
done

echo "load average after: $(cut -d' ' -f1-3 /proc/loadavg)" >&2
"$python" - "$tmp/results.jsonl" <<'EOF'
import json, statistics, sys
runs = [json.loads(line) for line in open(sys.argv[1])]
modes = {}
for r in runs:
    modes.setdefault(r["mode"], []).append(r["steps_per_s"])
base = statistics.median(modes["in-process"])
print("| mode | steps/s (median) | runs | steps/s vs in-process | time per step |")
print("|---|---|---|---|---|")
for mode, values in modes.items():
    med = statistics.median(values)
    runs_text = ", ".join(f"{v:.0f}" for v in values)
    extra = 1e6 / med - 1e6 / base
    ratio = "" if mode == "in-process" else f"{med / base:.3f}"
    per_step = f"{1e6 / med:.0f} us"
    if mode != "in-process":
        per_step += f" (+{extra:.0f} us, +{extra / (1e6 / base) * 100:.1f}%)"
    print(f"| {mode} | {med:.0f} | {runs_text} | {ratio} | {per_step} |")
EOF
