#!/usr/bin/env bash
# The whole test suite from a fresh Debian 12 machine: set-up, build, ctest; then the
# ASan+UBSan build of everything that does not load LibTorch, and its tests.
set -euo pipefail
cd "$(dirname "$0")/.."
start=$(date +%s)
bash scripts/setup.sh
bash scripts/build.sh
ctest --test-dir build --output-on-failure -j2 --timeout 900
HARVEST_BUILD_DIR=build-asan bash scripts/build.sh -DHARVEST_SANITIZE=ON
ASAN_OPTIONS=detect_leaks=1 UBSAN_OPTIONS=print_stacktrace=1 \
  ctest --test-dir build-asan --output-on-failure -j2 --timeout 900
echo "test.sh: set-up + build + tests took $(( $(date +%s) - start )) s"
