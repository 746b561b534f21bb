#!/bin/sh
# make bench: runs every benchmark in bench/ side by side with its anchor and
# prints each budget of DESIGN.md as a ratio.  Benchmarks arrive with the
# issues that own them (collection, store, detection); each is an executable
# bench/bench_*.sh or a built bench_* program taking the bin directory.
set -eu
bindir=${1:-build/bin}
here=$(dirname "$0")
found=0
broken=""
for b in "$here"/bench_*.sh; do
	[ -x "$b" ] || continue
	# let the previous benchmark settle: reaping 10,000 processes and
	# writing back its files goes on in the kernel after it exits, and the
	# next one's ratios (kernel time, mostly) would pay for it
	[ "$found" = 1 ] && { sync; sleep 5; }
	found=1
	echo "== $(basename "$b")"
	# one benchmark that cannot run must not hide the others' figures
	"$b" "$bindir" || broken="$broken $(basename "$b")"
done
[ "$found" = 1 ] || echo "bench: no benchmarks yet"
if [ -n "$broken" ]; then
	echo "bench: these benchmarks could not run:$broken" >&2
	exit 1
fi
