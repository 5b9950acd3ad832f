#!/usr/bin/env bash
# Installs what is missing, configures, builds and runs every test with ctest.
#
#   scripts/test.sh              build/ (RelWithDebInfo)
#   scripts/test.sh --sanitize   build-sanitize/ (AddressSanitizer + UndefinedBehaviorSanitizer)
#
# Idempotent: reuses the build directory. Extra arguments go to ctest.
set -euo pipefail
cd "$(dirname "$0")/.."

build=build
cmake_args=(-DCMAKE_BUILD_TYPE=RelWithDebInfo)
if [ "${1:-}" = "--sanitize" ]; then
  shift
  build=build-sanitize
  cmake_args=(-DCMAKE_BUILD_TYPE=Debug -DVARVE_SANITIZE=ON)
  export ASAN_OPTIONS=detect_leaks=1:abort_on_error=1
  export UBSAN_OPTIONS=print_stacktrace=1:halt_on_error=1
fi

scripts/deps.sh
cmake -S . -B "$build" -G Ninja "${cmake_args[@]}" >/dev/null
cmake --build "$build" -j2
ctest --test-dir "$build" --output-on-failure -j2 "$@"
