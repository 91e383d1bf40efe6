#!/usr/bin/env bash
# Durable HTTP submissions with the log in PostgreSQL 15 (Debian's; a primary and a synchronous
# streaming standby on loopback, started here) beside the directory store: the same signed forms, the
# same client (`saksi bench submit`, 64 keep-alive clients). Prints each run's line. Asserts nothing.
# Usage: bench/postgres-store.sh [TPS] [REQUESTS]   (defaults 200000 and 100000)
set -euo pipefail
cd "$(dirname "$0")/.."
tps="${1:-200000}"
requests="${2:-100000}"
bin=$(ls -d /usr/lib/postgresql/*/bin 2>/dev/null | sort -V | tail -1)
[ -x "$bin/initdb" ] || { echo "no PostgreSQL server under /usr/lib/postgresql (apt-get install postgresql)"; exit 1; }
cargo build --release -q
saksi=$PWD/target/release/saksi
work="$(mktemp -d)"
chown postgres "$work"
as_pg() { runuser -u postgres -- "$@"; }
stop() {
    pkill -f "saksi serve --data $work" 2>/dev/null || true
    for db in primary standby; do as_pg "$bin/pg_ctl" -D "$work/$db" -m immediate stop >/dev/null 2>&1 || true; done
    rm -rf "$work"
}
trap stop EXIT
as_pg "$bin/initdb" -A trust -U postgres -D "$work/primary" >/dev/null
as_pg "$bin/pg_ctl" -D "$work/primary" -l "$work/primary.log" -w -o "-p 25432 -k $work -c listen_addresses=127.0.0.1" start >/dev/null
as_pg "$bin/pg_basebackup" -h 127.0.0.1 -p 25432 -U postgres -R -X stream --checkpoint=fast -D "$work/standby"
as_pg "$bin/pg_ctl" -D "$work/standby" -l "$work/standby.log" -w -o "-p 25433 -k $work -c listen_addresses=127.0.0.1" start >/dev/null
psql -qh 127.0.0.1 -p 25432 -U postgres -c "ALTER SYSTEM SET synchronous_standby_names = '*'"
psql -qh 127.0.0.1 -p 25432 -U postgres -c "SELECT pg_reload_conf()" >/dev/null
sleep 1
echo "standby: $(psql -Atqh 127.0.0.1 -p 25432 -U postgres -c "SELECT sync_state FROM pg_stat_replication")"
$saksi gen --out "$work/election" --tps "$tps" > /dev/null
run() { # name, store flags...
    local name=$1; shift
    rm -rf "$work/data-$name"
    $saksi init --data "$work/data-$name" --gen "$work/election" "$@" > /dev/null
    $saksi serve --data "$work/data-$name" --addr 127.0.0.1:18559 --rate-limit 0 --photo-rate 0 \
        --max-connections-per-address 1024 "$@" > "$work/serve-$name.txt" 2>&1 &
    until curl -sf http://127.0.0.1:18559/readyz >/dev/null; do sleep 0.2; done
    echo "$name: $($saksi bench submit --host 127.0.0.1:18559 --forms "$work/election/forms.ndjson" \
        --requests "$requests" --concurrency 64 | tail -1)"
    pkill -f "saksi serve --data $work/data-$name"
    sleep 1
}
for round in 1 2 3; do
    run directory
    psql -qh 127.0.0.1 -p 25432 -U postgres -c "DROP DATABASE IF EXISTS saksi" -c "CREATE DATABASE saksi"
    run postgres --store "postgres://postgres@127.0.0.1:25432/saksi"
done
