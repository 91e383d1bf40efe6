#!/usr/bin/env bash
# The naive peer for `saksi` ingest: PostgreSQL 15 (Debian's package) on a throwaway cluster loads the
# same signed forms with COPY, keeps the rows that pass CHECK constraints encoding the form's
# arithmetic, and computes totals for every region level with GROUP BY. It verifies no signature and
# proves nothing. Prints seconds per stage and in all.
# Usage: bench/postgres-baseline.sh FORMS.ndjson
set -euo pipefail
forms="$(realpath "$1")"
if ! command -v pg_ctlcluster >/dev/null && [ ! -x /usr/lib/postgresql/15/bin/initdb ]; then
    export DEBIAN_FRONTEND=noninteractive
    apt-get update -qq && apt-get install -y -qq postgresql >/dev/null
fi
bin=$(ls -d /usr/lib/postgresql/*/bin | sort -V | tail -1)
work="$(mktemp -d)"
chown postgres "$work"
trap 'runuser -u postgres -- "$bin/pg_ctl" -D "$work/db" -m immediate stop >/dev/null 2>&1 || true; rm -rf "$work"' EXIT
# Flatten the forms to CSV (not timed: a database needs its input in its own format).
python3 - "$forms" "$work/forms.csv" <<'PY'
import json, sys
with open(sys.argv[1]) as src, open(sys.argv[2], "w") as out:
    for line in src:
        f = json.loads(line)["form"]
        v, r, b = f["voted"], f["registered"], f["ballots"]
        row = [f["tps"], f["tps"][:2], f["tps"][:4], f["tps"][:6], f["tps"][:10], r["dpt"]["j"],
               v["total"]["l"], v["total"]["p"], v["total"]["j"], v["dpt"]["j"], v["dptb"]["j"], v["dpk"]["j"],
               b["received"], b["used"], b["damaged"], b["unused"],
               f["votes"]["01"], f["votes"]["02"], f["votes"]["03"], f["valid"], f["invalid"], f["total"]]
        out.write(",".join(str(x) for x in row) + "\n")
PY
chown postgres "$work/forms.csv"
runuser -u postgres -- "$bin/initdb" -D "$work/db" -A trust >/dev/null
runuser -u postgres -- "$bin/pg_ctl" -D "$work/db" -o "-k $work -c listen_addresses='' -c fsync=on -c synchronous_commit=on" -l "$work/log" start >/dev/null
psql() { runuser -u postgres -- psql -h "$work" -d postgres -X -q -v ON_ERROR_STOP=1 "$@"; }
psql <<'SQL'
CREATE UNLOGGED TABLE staging (tps text, prov text, kab text, kec text, desa text, dpt int,
  voters_l int, voters_p int, voters int, b1 int, b2 int, b3 int,
  received int, used int, damaged int, unused int, v01 int, v02 int, v03 int, valid int, invalid int, total int);
CREATE TABLE forms (LIKE staging,
  CHECK (least(dpt, voters_l, voters_p, voters, b1, b2, b3, received, used, damaged, unused, v01, v02, v03, valid, invalid, total) >= 0),
  CHECK (voters_l + voters_p = voters), CHECK (b1 + b2 + b3 = voters),
  CHECK (used + damaged + unused = received), CHECK (used = voters), CHECK (voters = total),
  CHECK (valid + invalid = total), CHECK (v01 + v02 + v03 = valid),
  CHECK (dpt <= 300 OR right(tps, 3) >= '901' OR prov = '99'),
  CHECK (received <= dpt + ceil(dpt * 0.02)), PRIMARY KEY (tps));
SQL
start=$(date +%s.%N)
psql -c "\\copy staging FROM '$work/forms.csv' WITH (FORMAT csv)"
loaded=$(date +%s.%N)
psql <<'SQL'
INSERT INTO forms SELECT DISTINCT ON (tps) * FROM staging
 WHERE least(dpt, voters_l, voters_p, voters, b1, b2, b3, received, used, damaged, unused, v01, v02, v03, valid, invalid, total) >= 0
   AND voters_l + voters_p = voters AND b1 + b2 + b3 = voters AND used + damaged + unused = received
   AND used = voters AND voters = total AND valid + invalid = total AND v01 + v02 + v03 = valid
   AND (dpt <= 300 OR right(tps, 3) >= '901' OR prov = '99') AND received <= dpt + ceil(dpt * 0.02)
 ORDER BY tps;
SQL
checked=$(date +%s.%N)
psql -o /dev/null <<'SQL'
CREATE TABLE totals AS
  SELECT 'desa' AS level, desa AS region, sum(v01) v01, sum(v02) v02, sum(v03) v03, sum(valid) valid, sum(invalid) invalid, count(*) tps FROM forms GROUP BY desa
  UNION ALL SELECT 'kecamatan', kec, sum(v01), sum(v02), sum(v03), sum(valid), sum(invalid), count(*) FROM forms GROUP BY kec
  UNION ALL SELECT 'kabkota', kab, sum(v01), sum(v02), sum(v03), sum(valid), sum(invalid), count(*) FROM forms GROUP BY kab
  UNION ALL SELECT 'provinsi', prov, sum(v01), sum(v02), sum(v03), sum(valid), sum(invalid), count(*) FROM forms GROUP BY prov
  UNION ALL SELECT 'nasional', '', sum(v01), sum(v02), sum(v03), sum(valid), sum(invalid), count(*) FROM forms;
SQL
done_at=$(date +%s.%N)
rows=$(psql -t -A -c "SELECT count(*) FROM forms")
national=$(psql -t -A -c "SELECT v01 || ' ' || v02 || ' ' || v03 FROM totals WHERE level = 'nasional'")
python3 - "$start" "$loaded" "$checked" "$done_at" "$rows" "$national" <<'PY'
import sys
s, l, c, d = map(float, sys.argv[1:5])
print(f"postgresql baseline: COPY {l-s:.2f}s, CHECK-filtered insert {c-l:.2f}s, GROUP BY totals {d-c:.2f}s, total {d-s:.2f}s; {sys.argv[5]} rows kept; national {sys.argv[6]}")
PY
