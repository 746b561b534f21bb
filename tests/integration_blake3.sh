#!/bin/bash
# integration_blake3.sh BINDIR — our BLAKE3 (through the test helper
# b3file, each implementation forced in turn) against the b3sum tool on
# random files of awkward sizes: empty, one byte, a chunk and one byte
# either side, 64 KiB and one byte either side, 16 MiB + 7.
set -u
bindir=$1
. "$(dirname "$0")/lib.sh"
command -v b3sum >/dev/null || { echo "not ok - b3sum is not installed (make deps)"; exit 1; }
dir=$(mktemp -d "${TMPDIR:-/tmp}/de-b3-XXXXXX")
trap 'rm -rf "$dir"' EXIT

for size in 0 1 1023 1024 1025 65535 65536 65537 $((16 * 1024 * 1024 + 7)); do
	f=$dir/in-$size
	head -c "$size" /dev/urandom >"$f"
	want=$(b3sum --num-threads 1 --no-names "$f")
	for impl in portable sse41 avx2 avx512 auto; do
		got=$("$bindir/b3file" "$impl" "$f")
		rc=$?
		if [ "$rc" = 2 ]; then
			echo "ok - $impl: not on this CPU (skipped)"
			continue
		fi
		check "$impl, $size bytes: same digest as b3sum" [ "$rc" = 0 -a "${got%% *}" = "$want" ]
	done
done
echo "integration_blake3: $fails failed"
[ "$fails" = 0 ]
