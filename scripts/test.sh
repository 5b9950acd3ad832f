#!/usr/bin/env bash
# Installs what is missing, configures, builds and runs every test with ctest.
#
#   scripts/test.sh              build/ (RelWithDebInfo), all tests, then the package's
#                                consumers (scripts/package-test.sh: installed, FetchContent,
#                                Debian package, pkg-config)
#   scripts/test.sh --sanitize   build-sanitize/: AddressSanitizer + UndefinedBehaviorSanitizer
#   scripts/test.sh --tsan       build-tsan/: ThreadSanitizer on the storage suites (threads
#                                appending, reading and backing up one store). The actor
#                                suites are left out: Debian's libcaf is not instrumented,
#                                so every message hand-off in CAF's mailboxes is reported.
#   scripts/test.sh --fuzz       build-fuzz/ (clang): each libFuzzer target for
#                                VARVE_FUZZ_SECONDS (default 30) on its seed corpus
#
# Idempotent: reuses the build directory. Extra arguments go to ctest. Warnings are
# errors (VARVE_WERROR) in every mode.
set -euo pipefail
cd "$(dirname "$0")/.."

mode=normal
case "${1:-}" in
  --sanitize | --tsan | --fuzz) mode=${1#--}; shift ;;
esac

scripts/deps.sh
# ccache hits across clones and build directories of the same sources.
export CCACHE_BASEDIR="$PWD" CCACHE_NOHASHDIR=true

if [ "$mode" = fuzz ]; then
  CC=clang-14 CXX=clang++-14 cmake -S . -B build-fuzz -G Ninja -DCMAKE_BUILD_TYPE=RelWithDebInfo \
    -DVARVE_FUZZ=ON -DVARVE_WERROR=ON >/dev/null
  cmake --build build-fuzz -j2 --target record_fuzz import_fuzz config_fuzz
  seconds=${VARVE_FUZZ_SECONDS:-30}
  passed=0 failed=0
  for target in record import config; do
    work=$(mktemp -d)
    log=$(mktemp)
    if (cd "$work" && "$OLDPWD/build-fuzz/tests/fuzz/${target}_fuzz" -max_total_time="$seconds" \
          -timeout=10 -rss_limit_mb=2048 -print_final_stats=1 "$work" \
          "$OLDPWD/tests/fuzz/corpus/$target" >"$log" 2>&1); then
      runs=$(grep -o 'stat::number_of_executed_units: *[0-9]*' "$log" | grep -o '[0-9]*$' || true)
      echo "fuzz: ${target}_fuzz: ${runs:-?} executions in ${seconds} s, no crash, leak or hang"
      passed=$((passed + 1))
    else
      echo "fuzz: ${target}_fuzz FAILED:"
      tail -n 40 "$log"
      ls "$work" | grep -E '^(crash|leak|timeout|oom)-' | sed 's/^/  artifact: /' || true
      failed=$((failed + 1))
    fi
    rm -rf "$work" "$log"
  done
  echo "fuzz: $passed passed, $failed failed"
  [ "$failed" -eq 0 ]
  exit
fi

build=build
cmake_args=(-DCMAKE_BUILD_TYPE=RelWithDebInfo -DVARVE_BUILD_BENCH=OFF -DVARVE_WERROR=ON)
ctest_args=()
if [ "$mode" = sanitize ]; then
  build=build-sanitize
  cmake_args=(-DCMAKE_BUILD_TYPE=Debug -DVARVE_SANITIZE=ON -DVARVE_BUILD_BENCH=OFF
    -DVARVE_WERROR=ON)
  export ASAN_OPTIONS=detect_leaks=1:abort_on_error=1
  export UBSAN_OPTIONS=print_stacktrace=1:halt_on_error=1
elif [ "$mode" = tsan ]; then
  build=build-tsan
  cmake_args=(-DCMAKE_BUILD_TYPE=RelWithDebInfo -DVARVE_TSAN=ON -DVARVE_BUILD_BENCH=OFF
    -DVARVE_WERROR=ON)
  ctest_args=(-L storage)
  export TSAN_OPTIONS="halt_on_error=1 second_deadlock_stack=1"
fi

cmake -S . -B "$build" -G Ninja "${cmake_args[@]}" >/dev/null
if [ "$mode" = tsan ]; then
  cmake --build "$build" -j2 --target varve_storage_tests
else
  cmake --build "$build" -j2
fi
ctest --test-dir "$build" --output-on-failure -j2 "${ctest_args[@]}" "$@"
if [ "$mode" = normal ]; then
  scripts/package-test.sh "$build"
fi
