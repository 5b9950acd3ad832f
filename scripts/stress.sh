#!/usr/bin/env bash
# The long variants of the reliability tests: 200 crash rounds (SIGKILL at
# random moments while appenders and an exactly-once projection run), then
# 10 minutes of each libFuzzer target.
set -euo pipefail
cd "$(dirname "$0")/.."

scripts/deps.sh
export CCACHE_BASEDIR="$PWD" CCACHE_NOHASHDIR=true
cmake -S . -B build -G Ninja -DCMAKE_BUILD_TYPE=RelWithDebInfo >/dev/null
cmake --build build -j2 --target reliability_crash_test
VARVE_CRASH_ROUNDS=${VARVE_CRASH_ROUNDS:-200} ctest --test-dir build -R reliability_crash_test \
  --output-on-failure
VARVE_FUZZ_SECONDS=${VARVE_FUZZ_SECONDS:-600} scripts/test.sh --fuzz
