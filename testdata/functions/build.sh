#!/bin/sh
# Builds every example in testdata/functions from source. The built .wasm
# files are committed, so tests need no toolchain; run this after changing
# a source or udf/sdk/c/keel.h.
#
#   testdata/functions/build.sh        (needs clang and lld: apt-get install -y clang lld)
#
# C guests compile to a few hundred bytes to a few KB. The Go guest
# (go/counter) is built by udf's tests with the Go toolchain instead: it is
# ~1.9 MB, too large to commit.
set -eu
here=$(cd "$(dirname "$0")" && pwd)
sdk="$here/../../udf/sdk/c"
for src in "$here"/*.c; do
	name=$(basename "$src" .c)
	extra=
	# hostile needs memset to be memory.fill: the instruction under test.
	[ "$name" = hostile ] && extra=-mbulk-memory
	clang --target=wasm32 -O2 -nostdlib -I"$sdk" $extra \
		-Wl,--no-entry -Wl,--strip-all -Wl,-z,stack-size=16384 \
		-o "$here/$name.wasm" "$src"
	echo "$name.wasm $(wc -c <"$here/$name.wasm") bytes"
done
