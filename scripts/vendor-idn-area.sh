#!/usr/bin/env bash
# Rebuilds assets/idn-area-wilayah.csv.gz from the npm package idn-area-data (data under ODbL 1.0).
# Output: "kode,nama" for provinces, regencies, districts and villages, Kemendagri codes without dots,
# parents before children. Needs npm and python3. Run from the repository root.
set -euo pipefail
version="${1:-4.0.1}"
work="$(mktemp -d)"
trap 'rm -rf "$work"' EXIT
(cd "$work" && npm pack --silent "idn-area-data@$version" >/dev/null && tar xzf idn-area-data-*.tgz)
python3 - "$work/package/data" assets/idn-area-wilayah.csv.gz <<'PY'
import csv, gzip, io, sys
data, out = sys.argv[1], sys.argv[2]
# mtime=0 keeps the file byte-identical across runs.
with gzip.GzipFile(out, "wb", compresslevel=9, mtime=0) as raw:
    with io.TextIOWrapper(raw, encoding="utf-8", newline="") as f:
        f.write("kode,nama\n")
        for name in ["provinces.csv", "regencies.csv", "districts.csv", "villages.csv"]:
            with open(f"{data}/{name}", encoding="utf-8") as src:
                rows = csv.reader(src)
                next(rows)
                for row in rows:
                    code, label = row[0].replace(".", ""), row[-1].strip()
                    if any(c in label for c in ',"'):
                        label = '"' + label.replace('"', '""') + '"'
                    f.write(f"{code},{label}\n")
PY
cp "$work/package/data/LICENSE.md" assets/idn-area-LICENSE-ODbL.md
echo "wrote assets/idn-area-wilayah.csv.gz from idn-area-data@$version"
