#!/usr/bin/env bash
# Read throughput of region queries (`saksi bench regions`, 64 keep-alive clients, one generator
# thread) against the writer alone, then spread over 1, 2 and 3 read replicas (`saksi serve
# --read-only`), all serving from one directory that `saksi mirror --follow` keeps current. Every
# process shares this machine's cores: see docs/benchmarks.md for what bounds the figures.
# Prints each run's line. Asserts nothing.
# Usage: bench/replicas.sh [TPS] [REQUESTS]   (defaults 200000 and 200000)
set -euo pipefail
cd "$(dirname "$0")/.."
tps="${1:-200000}"
requests="${2:-200000}"
cargo build --release -q
saksi=$PWD/target/release/saksi
work="$(mktemp -d)"
pids=()
stop() {
    for pid in "${pids[@]}"; do kill "$pid" 2>/dev/null || true; done
    wait 2>/dev/null || true
    rm -rf "$work"
}
trap stop EXIT
$saksi gen --out "$work/election" --tps "$tps" > /dev/null
$saksi init --data "$work/data" --gen "$work/election" > /dev/null
$saksi import --data "$work/data" "$work/election/forms.ndjson" > /dev/null || true
vkey=$(cat "$work/data/log.vkey")
$saksi serve --data "$work/data" --addr 127.0.0.1:18560 --rate-limit 0 --max-connections-per-address 1024 > "$work/writer.txt" 2>&1 &
pids+=($!)
until curl -sf http://127.0.0.1:18560/readyz >/dev/null; do sleep 0.2; done
$saksi mirror --follow --url http://127.0.0.1:18560 --dir "$work/mirror" --vkey "$vkey" > "$work/mirror.txt" 2>&1 &
pids+=($!)
until [ -f "$work/mirror/checkpoint" ]; do sleep 0.2; done
bench() { # hosts...
    local hosts=()
    for h in "$@"; do hosts+=(--host "$h"); done
    $saksi bench regions "${hosts[@]}" --registry "$work/election/registry" \
        --requests "$requests" --concurrency 64 | tail -1
}
echo "writer alone: $(bench 127.0.0.1:18560)"
replicas=()
for n in 1 2 3; do
    port=$((18560 + n))
    $saksi serve --read-only --log "$work/mirror" --vkey "$vkey" --addr "127.0.0.1:$port" \
        --rate-limit 0 --max-connections-per-address 1024 > "$work/replica-$n.txt" 2>&1 &
    pids+=($!)
    until curl -sf "http://127.0.0.1:$port/readyz" >/dev/null; do sleep 0.2; done
    replicas+=("127.0.0.1:$port")
    echo "$n replica(s): $(bench "${replicas[@]}")"
done
