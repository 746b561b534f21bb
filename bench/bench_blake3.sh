#!/bin/sh
# bench_blake3.sh BINDIR — BLAKE3 throughput on 64 MiB against
# `b3sum --num-threads 1` on the same bytes (budget >= 0.8x for the path the
# CPU picks; the portable path and the others reported beside it).
set -eu
bindir=${1:-build/bin}
dir=$(mktemp -d "${TMPDIR:-/tmp}/de-bench-blake3-XXXXXX")
trap 'rm -rf "$dir"' EXIT
"$bindir/bench_blake3" "$dir"
