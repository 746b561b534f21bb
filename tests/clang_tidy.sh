#!/bin/bash
# clang_tidy.sh SRCDIR BUILDDIR — the lint test: clang-tidy with the
# project's .clang-tidy over the programs' and the library's C files, using
# the compile database of the normal build (CMAKE_EXPORT_COMPILE_COMMANDS).
# Any warning fails the test (.clang-tidy makes every warning an error); the
# output names the file, line and check.  Two clang-tidy processes at a time
# (the machine has 2 cores; ctest counts this test as 2 processors).
set -u

src=${1:?usage: clang_tidy.sh SRCDIR BUILDDIR}
build=${2:?usage: clang_tidy.sh SRCDIR BUILDDIR}
tidy=$(command -v clang-tidy-14 || command -v clang-tidy) || {
	echo "not ok - clang-tidy not found (it is in DEPS: make deps)"
	exit 1
}
[ -f "$build/compile_commands.json" ] || {
	echo "not ok - no $build/compile_commands.json (build first)"
	exit 1
}

cd "$src" || exit 1
files=(src/lib/*.c src/agent/*.c src/procmond/*.c src/cli/*.c)

start=$(date +%s)
out=$(mktemp)
trap 'rm -f "$out"' EXIT
# the compile database is gcc's: clang does not know some of its warning flags
printf '%s\n' "${files[@]}" |
	xargs -P 2 -n 1 "$tidy" -p "$build" --quiet --extra-arg=-Wno-unknown-warning-option \
		>"$out" 2>&1
rc=$?
secs=$(($(date +%s) - start))
# clang-tidy prints "N warnings generated." (and treated-as-error notes) on
# stderr even when every warning was in code it does not check
grep -v -E '^[0-9]+ warnings? (and [0-9]+ errors? )?generated\.$|^Suppressed [0-9]+ warnings|^Use -header-filter|^Use -system-headers|^[0-9]+ warnings? treated as errors?$' \
	"$out" >"$out.shown"
mv "$out.shown" "$out"
warnings=$(grep -c -E ': (warning|error):' "$out")
if [ "$rc" -ne 0 ] || [ "$warnings" -ne 0 ]; then
	cat "$out"
	echo "not ok - clang-tidy: $warnings warnings in ${#files[@]} files (${secs} s)"
	exit 1
fi
echo "ok - clang-tidy: ${#files[@]} files clean (${secs} s)"
