#!/usr/bin/env bash
# Runs saksi's benchmarks in one go and prints a markdown table with the paired figures and ratios:
# national ingest vs the signature floor and vs a naive PostgreSQL load; HTTP submissions; region
# queries; verification; peak memory. Not a test: it asserts nothing.
# Usage: bench/run.sh [TPS]   (default: the national 823,220). Needs about 3 GB of disk.
set -euo pipefail
cd "$(dirname "$0")/.."
tps="${1:-823220}"
work="${SAKSI_BENCH_DIR:-data/bench}"
cargo build --release -q
saksi=target/release/saksi
rm -rf "$work" && mkdir -p "$work"
seconds() { python3 -c "import sys; print(f'{float(sys.argv[2]) - float(sys.argv[1]):.2f}')" "$1" "$2"; }
now() { date +%s.%N; }

t0=$(now); $saksi gen --out "$work/election" --tps "$tps" > /dev/null; t1=$(now); gen=$(seconds "$t0" "$t1")
$saksi bench signatures --forms "$work/election/forms.ndjson" > "$work/floor.txt"
floor=$(sed -n 's/^signature floor (batch.* in \([0-9.]*\)s .*/\1/p' "$work/floor.txt")
prepared_floor=$(sed -n 's/^signature floor, keys decompressed beforehand.* in \([0-9.]*\)s .*/\1/p' "$work/floor.txt")
points_fill=$(sed -n 's/^signers. points filled.* in \([0-9.]*\)s$/\1/p' "$work/floor.txt")
decode_floor=$(sed -n 's/^decode + verify.* in \([0-9.]*\)s .*/\1/p' "$work/floor.txt")
independent=$(sed -n 's/^independent floor.* in \([0-9.]*\)s .*/\1/p' "$work/floor.txt")
$saksi init --data "$work/data" --gen "$work/election" > /dev/null
# Exit 1: the generated election holds faults, which are rejected (as they must be).
/usr/bin/time -v -o "$work/time.txt" $saksi import --data "$work/data" "$work/election/forms.ndjson" > "$work/import.txt" || true
ingest=$(sed -n 's/^imported in .*s opening the log, \([0-9.]*\)s ingesting)/\1/p' "$work/import.txt")
opening=$(sed -n 's/^imported in .* (\([0-9.]*\)s opening the log.*/\1/p' "$work/import.txt")
import_whole=$(sed -n 's/^imported in \([0-9.]*\)s (.*/\1/p' "$work/import.txt")
rss_kb=$(sed -n 's/.*Maximum resident set size (kbytes): //p' "$work/time.txt")
# Verification of what was just ingested (the forms), then again after the copies.
t0=$(now); $saksi verify --dir "$work/data/log" --vkey "$work/data/log.vkey" > /dev/null; t1=$(now); verify_forms=$(seconds "$t0" "$t1")
# The poll witnesses' copies (issue 14), after the forms they are compared with.
$saksi import --data "$work/data" "$work/election/copies.ndjson" > "$work/import-copies.txt" || true
copies_lines=$(sed -n 's/^\([0-9]*\) lines: .*/\1/p' "$work/import-copies.txt")
copies_ingest=$(sed -n 's/^imported in .*s opening the log, \([0-9.]*\)s ingesting)/\1/p' "$work/import-copies.txt")
pg=$(bash bench/postgres-baseline.sh "$work/election/forms.ndjson" | sed -n 's/.*total \([0-9.]*\)s;.*/\1/p')
t0=$(now); $saksi verify --dir "$work/data/log" --vkey "$work/data/log.vkey" > /dev/null; t1=$(now); verify=$(seconds "$t0" "$t1")
ingest_all=$(python3 -c "import sys; print(f'{float(sys.argv[1]) + float(sys.argv[2]):.1f}')" "$ingest" "$copies_ingest")
# Verification that keeps up (issue 18): a log short of its last 10,000 forms is verified with
# --state; after they are logged, a one-shot run continues from the saved state, and a follower
# (--follow, state in memory) checks the same growth as one round.
incremental_forms=10000
lines=$(wc -l < "$work/election/forms.ndjson")
head -n $((lines - incremental_forms)) "$work/election/forms.ndjson" > "$work/forms-head.ndjson"
tail -n $incremental_forms "$work/election/forms.ndjson" > "$work/forms-tail.ndjson"
$saksi init --data "$work/grow" --gen "$work/election" > /dev/null
$saksi import --data "$work/grow" "$work/forms-head.ndjson" > /dev/null || true
$saksi verify --dir "$work/grow/log" --vkey "$work/grow/log.vkey" --state "$work/vstate" > /dev/null
cp -a "$work/vstate" "$work/vstate-oneshot"
$saksi verify --follow --dir "$work/grow/log" --vkey "$work/grow/log.vkey" --state "$work/vstate" > "$work/follow.txt" 2>&1 &
follower=$!
until grep -q "saksi verify: OK" "$work/follow.txt"; do sleep 0.2; done
$saksi import --data "$work/grow" "$work/forms-tail.ndjson" > /dev/null || true
until [ "$(grep -c "saksi verify: OK" "$work/follow.txt")" -ge 2 ]; do sleep 0.2; done
kill $follower
follow_round=$(grep "saksi verify: OK" "$work/follow.txt" | tail -1 | sed -n 's/.*; \([0-9.]*\)s$/\1/p')
new_entries=$(grep "saksi verify: OK" "$work/follow.txt" | tail -1 | sed -n 's/.*; entries \([0-9]*\) to \([0-9]*\) checked.*/\2 \1/p' | awk '{print $1 - $2 + 1}')
t0=$(now); $saksi verify --dir "$work/grow/log" --vkey "$work/grow/log.vkey" --state "$work/vstate-oneshot" > /dev/null; t1=$(now); oneshot=$(seconds "$t0" "$t1")
state_mb=$(du -m "$work"/vstate-oneshot/*.verified | cut -f1)
rm -rf "$work/grow" "$work/vstate" "$work/vstate-oneshot"

# Forensics over every accepted TPS of the national log (issue 16): the model, every TPS test and
# every region test; reading the log's state is reported apart.
forensics=$($saksi audit forensics --data "$work/data" --show 0 | tail -1)

# The results site's budgets on the national log just ingested (issue 13).
$saksi serve --data "$work/data" --addr 127.0.0.1:18556 --rate-limit 0 > "$work/serve-site.txt" 2>&1 &
site_server=$!
trap 'kill $site_server 2>/dev/null || true' EXIT
until grep -q "serving on" "$work/serve-site.txt"; do sleep 0.5; done
site=$($saksi bench site --host 127.0.0.1:18556 --registry "$work/election/registry" --requests 100000 --concurrency 64)
kill $site_server

# HTTP on a fresh log with the same registry (every form is new to it).
$saksi init --data "$work/http" --gen "$work/election" > /dev/null
# One load generator address opens up to 256 connections: lift the per-address limits.
$saksi serve --data "$work/http" --addr 127.0.0.1:18555 --rate-limit 0 --photo-rate 0 --max-connections-per-address 1024 > "$work/serve.txt" 2>&1 &
server=$!
trap 'kill $server 2>/dev/null || true' EXIT
until grep -q "serving on" "$work/serve.txt"; do sleep 0.5; done
restart=$(sed -n 's/state rebuilt from the log in \([0-9.]*\)s/\1/p' "$work/serve.txt")
# Each run posts forms the log has not seen (--skip), so every 201 is a new durable entry.
submit8=$($saksi bench submit --host 127.0.0.1:18555 --forms "$work/election/forms.ndjson" --skip 0 --requests 20000 --concurrency 8 | tail -1)
submit=$($saksi bench submit --host 127.0.0.1:18555 --forms "$work/election/forms.ndjson" --skip 20000 --requests 50000 --concurrency 64 | tail -1)
submit256=$($saksi bench submit --host 127.0.0.1:18555 --forms "$work/election/forms.ndjson" --skip 70000 --requests 50000 --concurrency 256 | tail -1)
copies64=$($saksi bench submit --host 127.0.0.1:18555 --forms "$work/election/copies.ndjson" --skip 0 --requests 50000 --concurrency 64 | tail -1)
reports64=$($saksi bench reports --host 127.0.0.1:18555 --registry "$work/election/registry" --count 20000 --concurrency 64 | sed -n 2p)
reports_photo=$($saksi bench reports --host 127.0.0.1:18555 --registry "$work/election/registry" --count 500 --photo-bytes 1048576 --concurrency 64 | sed -n 2p)
regions=$($saksi bench regions --host 127.0.0.1:18555 --registry "$work/election/registry" --requests 200000 --concurrency 32 | tail -1)
kill $server

ratio() { python3 -c "import sys; print(f'{float(sys.argv[1]) / float(sys.argv[2]):.2f}x')" "$1" "$2"; }
cat <<TABLE
| measure ($tps TPS) | saksi | paired with | ratio |
|---|---|---|---|
| generation | ${gen} s | | |
| opening the initialised log before ingest (genesis and registry replayed, signers' points filled; not counted below) | ${opening} s | | |
| the signers' points filled alone (part of that opening; a server fills them on a thread while it answers) | ${points_fill} s | | |
| signature floor, keys decompressed beforehand (as saksi verify has them) | ${prepared_floor} s | independent floor (ed25519-dalek verify_batch, 256 per batch, keys parsed beforehand) ${independent} s | $(ratio "$prepared_floor" "$independent") |
| signature floor (saksi's ZIP-215 batch verification alone) | ${floor} s | independent floor (ed25519-dalek verify_batch, 256 per batch, keys parsed beforehand) ${independent} s | $(ratio "$floor" "$independent") |
| national ingest (signatures, rulebook, durable log, tallies) | ${ingest} s | independent floor ${independent} s | $(ratio "$ingest" "$independent") (goal 1.30x) |
| national ingest (signatures, rulebook, durable log, tallies) | ${ingest} s | signature floor (batch verification alone) ${floor} s | $(ratio "$ingest" "$floor") |
| national ingest | ${ingest} s | decode + verify, the import's first stage alone ${decode_floor} s | $(ratio "$ingest" "$decode_floor") |
| national ingest | ${ingest} s | PostgreSQL COPY + CHECK + GROUP BY ${pg} s (no signatures, no proofs) | $(ratio "$ingest" "$pg") |
| peak memory during ingest | $((rss_kb / 1024)) MiB | target 1536 MiB | |
| independent verification of the forms (saksi verify --dir) | ${verify_forms} s | ingest of the forms ${ingest} s | $(ratio "$verify_forms" "$ingest") (goal 1.00x) |
| independent verification of the forms, whole command (it replays the registry too) | ${verify_forms} s | the import command whole (opening the log included) ${import_whole} s | $(ratio "$verify_forms" "$import_whole") |
| independent verification of forms and copies | ${verify} s | ingest of forms and copies ${ingest_all} s | $(ratio "$verify" "$ingest_all") (goal 1.00x) |
| incremental verification, following (--follow, state in memory), ${new_entries} new entries | ${follow_round} s | goal 1 s | |
| incremental verification, one run (--state: ${state_mb} MB of state read and written) | ${oneshot} s | goal 1 s | |
| restart of an initialised log | ${restart} s | | |
| forensics, every TPS and region scored | ${forensics} | | |
| HTTP submissions, 8 clients, durable | ${submit8} | | |
| HTTP submissions, 64 clients, durable | ${submit} | target 10,000/s, p99 < 50 ms | |
| HTTP submissions, 256 clients, durable | ${submit256} | | |
| poll witnesses' copies, import (${copies_lines} copies, comparison included) | ${copies_ingest} s | | |
| poll witnesses' copies over HTTP, 64 clients, durable | ${copies64} | forms, 64 clients: above | |
| citizens' reports over HTTP, 64 clients, durable, each by a new key | ${reports64} | | |
| citizens' reports with a 1 MiB photo each, 64 clients | ${reports_photo} | | |
| region queries, 32 clients | ${regions} | target 50,000/s | |
TABLE
echo
echo "$site"
