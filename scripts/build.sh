#!/usr/bin/env bash
# Configures and builds harvest into build/ (or $HARVEST_BUILD_DIR). Extra args go to cmake.
# HARVEST_TARGETS="harvest ..." builds only those targets (the demo needs the binary alone, not
# the test binaries, which are about a third of a fresh build).
set -euo pipefail
cd "$(dirname "$0")/.."
BUILD_DIR=${HARVEST_BUILD_DIR:-build}
# ccache hits across checkouts in different folders (CI clones into a fresh one).
export CCACHE_BASEDIR="$PWD" CCACHE_NOHASHDIR=1
cmake -S . -B "$BUILD_DIR" -G Ninja -DCMAKE_BUILD_TYPE=RelWithDebInfo "$@"
targets=()
for t in ${HARVEST_TARGETS:-}; do targets+=(--target "$t"); done
cmake --build "$BUILD_DIR" -j"$(nproc)" "${targets[@]}"
