#!/usr/bin/env bash
# The long variants of the reliability tests: 200 crash rounds (SIGKILL at
# random moments while appenders and an exactly-once projection run), 10
# minutes of each case of the model test (random operations on a plain and
# an encrypted store against the in-memory model; it prints seeds x steps),
# then 10 minutes of each libFuzzer target.
set -euo pipefail
cd "$(dirname "$0")/.."

scripts/deps.sh
export CCACHE_BASEDIR="$PWD" CCACHE_NOHASHDIR=true
cmake -S . -B build -G Ninja -DCMAKE_BUILD_TYPE=RelWithDebInfo -DVARVE_WERROR=ON >/dev/null
cmake --build build -j2 --target reliability_crash_test storage_model_test
VARVE_CRASH_ROUNDS=${VARVE_CRASH_ROUNDS:-200} ctest --test-dir build -R reliability_crash_test \
  --output-on-failure
# Run directly, not through ctest: its timeout is for the short run.
VARVE_MODEL_SECONDS=${VARVE_MODEL_SECONDS:-600} build/tests/storage_model_test
VARVE_FUZZ_SECONDS=${VARVE_FUZZ_SECONDS:-600} scripts/test.sh --fuzz
