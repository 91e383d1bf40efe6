#!/usr/bin/env bash
# Verifies a saksi-written log directory with Go's golang.org/x/mod/sumdb/note and sumdb/tlog.
# Usage: scripts/go-interop.sh LOGDIR VKEY
# Needs Go and the x/mod sources: Debian's golang-go and golang-golang-x-mod-dev (installed by .ci/run).
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
gopath="${SAKSI_GOPATH:-/usr/share/gocode}"
if [ ! -d "$gopath/src/golang.org/x/mod/sumdb" ]; then
    echo "go-interop: golang.org/x/mod not found under $gopath (apt-get install golang-golang-x-mod-dev)" >&2
    exit 2
fi
export GO111MODULE=off GOPATH="$gopath" GOCACHE="${GOCACHE:-${TMPDIR:-/tmp}/saksi-go-cache}" GOFLAGS=-mod=mod
unset GOFLAGS
exec go run "$here/go-interop/verify.go" "$@"
