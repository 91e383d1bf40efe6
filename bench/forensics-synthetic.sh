#!/usr/bin/env bash
# Recall of `saksi audit forensics` on a synthetic election with known forensic faults (issue 16): the
# generator switches, stuffs or copies the figures of a share of the unwatched regular TPS (forms that
# pass every rule), and the flags are compared with truth.json per kind.
# Usage: bench/forensics-synthetic.sh [TPS] [RATE]   (defaults 823220 and 0.01). Asserts nothing.
set -euo pipefail
cd "$(dirname "$0")/.."
tps="${1:-823220}"
rate="${2:-0.01}"
work="${SAKSI_BENCH_DIR:-data/bench-forensics-synthetic}"
cargo build --release -q
saksi=target/release/saksi
rm -rf "$work" && mkdir -p "$work"
$saksi gen --out "$work/election" --tps "$tps" --fault-rate 0 --forensic-rate "$rate" > /dev/null
$saksi init --data "$work/data" --gen "$work/election" > /dev/null
$saksi import --data "$work/data" "$work/election/forms.ndjson" | tail -1
started=$(date +%s.%N)
$saksi audit forensics --data "$work/data" --json > "$work/flags.json"
echo "audit forensics: $(python3 -c "import sys; print(f'{float(sys.argv[2]) - float(sys.argv[1]):.1f}')" "$started" "$(date +%s.%N)") s"
python3 - "$work" <<'PY'
import collections, json, sys
work = sys.argv[1]
faults = json.load(open(f"{work}/election/truth.json"))["forensic_faults"]
flagged = {t["tps"] for t in json.load(open(f"{work}/flags.json"))["tps"]}
found = collections.defaultdict(lambda: [0, 0])
for f in faults:
    found[f["kind"]][0] += 1
    found[f["kind"]][1] += f["tps"] in flagged
sources = {f["from"] for f in faults if f["kind"] == "copied"}
for kind, (injected, hit) in sorted(found.items()):
    print(f"{kind}: {hit} of {injected} flagged ({100 * hit / injected:.1f}%)")
print(f"sources of copies flagged: {len(sources & flagged)} of {len(sources)}")
touched = {f["tps"] for f in faults} | sources
with open(f"{work}/election/registry/tps.csv") as registry:
    total = sum(1 for _ in registry) - 1
others = len(flagged - touched)
print(f"other TPS flagged: {others} of {total - len(touched)} ({100 * others / (total - len(touched)):.3f}%)")
PY
