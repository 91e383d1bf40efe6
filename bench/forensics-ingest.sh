#!/usr/bin/env bash
# The cost of the server's background forensic rescoring to ingest (issue 16): the same durable HTTP
# submissions to two fresh logs of one election, with `--forensics-duty 0` (off) and the default 2%.
# Usage: bench/forensics-ingest.sh [TPS] [REQUESTS]   (defaults 200000 and 100000). Asserts nothing.
set -euo pipefail
cd "$(dirname "$0")/.."
tps="${1:-200000}"
requests="${2:-100000}"
work="${SAKSI_BENCH_DIR:-data/bench-forensics}"
cargo build --release -q
saksi=target/release/saksi
rm -rf "$work" && mkdir -p "$work"
$saksi gen --out "$work/election" --tps "$tps" > /dev/null
for duty in ${DUTIES:-0 2 0 2 0 2}; do
    rm -rf "$work/data"
    $saksi init --data "$work/data" --gen "$work/election" > /dev/null
    $saksi serve --data "$work/data" --addr 127.0.0.1:18557 --rate-limit 0 --photo-rate 0 \
        --max-connections-per-address 1024 --forensics-duty "$duty" > "$work/serve.txt" 2>&1 &
    server=$!
    until grep -q "serving on" "$work/serve.txt"; do sleep 0.5; done
    result=$($saksi bench submit --host 127.0.0.1:18557 --forms "$work/election/forms.ndjson" \
        --requests "$requests" --concurrency 64 | tail -1)
    # What the last rescoring covered when the submissions ended (503 if none had finished yet).
    flags=$(curl -s http://127.0.0.1:18557/api/v1/flags | python3 -c '
import json, sys
d = json.load(sys.stdin)
if "log_size" in d:
    print("flags at log size %s, last rescoring %.2fs" % (d["log_size"], d["computed_seconds"]))
else:
    print("no flags: %s" % d.get("code"))')
    kill $server; wait $server 2>/dev/null || true
    echo "| forensics duty ${duty}% | ${result} | ${flags} |"
done
