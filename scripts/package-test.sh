#!/usr/bin/env bash
# Uses Varve the ways a user's project does and runs what it built: the
# programs of tests/package (storage_roundtrip: Varve::storage;
# plugin_roundtrip: Varve::storage inside a shared library of the user's;
# actors_roundtrip: Varve::actors; runtime_roundtrip: Varve::runtime;
# testkit_roundtrip: Varve::testkit) must
# print "... roundtrip: ok".
#
#   installed   `cmake --install` of BUILD_DIR into a fresh prefix, then
#               tests/package/installed with find_package(Varve); again with
#               the storage component only and CAF made unfindable, and so
#               against BUILD_DIR itself (Varve_DIR, its exported targets)
#   fetch       tests/package/fetch: Varve from this checkout with
#               FetchContent, its tests, examples, tools and benchmarks off;
#               again without CAF (VARVE_BUILD_ACTORS=OFF)
#   deb         `cpack -G DEB` in BUILD_DIR, read with dpkg-deb --info and
#               --contents, unpacked with dpkg-deb -x into a fresh directory,
#               tests/package/installed built against it, and the storage
#               program built with nothing but pkg-config (varve-storage.pc)
#
#   scripts/package-test.sh [BUILD_DIR]   default build/, configured and built
#                                         (scripts/test.sh does both)
#
# Works in BUILD_DIR/package/; the FetchContent builds stay there between runs
# (they build Varve's libraries), everything else starts afresh and is removed
# once it passed (about 800 MB of consumer builds and unpacked packages).
set -euo pipefail
cd "$(dirname "$0")/.."
src=$PWD
build=$(realpath "${1:-build}")
work=$build/package
mkdir -p "$work"
export CCACHE_BASEDIR="$src" CCACHE_NOHASHDIR=true
launcher=()
command -v ccache >/dev/null && launcher=(-DCMAKE_CXX_COMPILER_LAUNCHER=ccache)

log=$work/last.log
step() {  # step NAME COMMAND...: runs the command quietly; on failure shows its output
  echo "package: $1"
  shift
  if ! "$@" >"$log" 2>&1; then
    echo "package: FAILED: $*" >&2
    tail -n 60 "$log" >&2
    exit 1
  fi
}
run() {  # run PROGRAM EXPECTED: the program exits 0 and prints EXPECTED
  local out
  if ! out=$("$1" 2>&1) || [ "$out" != "$2" ]; then
    echo "package: FAILED: $1 printed:" >&2
    echo "$out" >&2
    exit 1
  fi
}
consumer() {  # consumer DIR SOURCE [cmake args]: configures and builds a fresh consumer build
  local dir=$1 source=$2
  shift 2
  rm -rf "$dir"
  step "configure $(basename "$dir")" cmake -S "$source" -B "$dir" -G Ninja "${launcher[@]}" "$@"
  step "build $(basename "$dir")" cmake --build "$dir" -j2
}
start=$(date +%s)

# ------------------------------------------------------------ installed
prefix=$work/prefix
rm -rf "$prefix"
step "install $build into $prefix" cmake --install "$build" --prefix "$prefix"
consumer "$work/installed" tests/package/installed -DCMAKE_PREFIX_PATH="$prefix" \
  -DVARVE_EXPECTED_PREFIX="$prefix"
run "$work/installed/storage_roundtrip" "storage roundtrip: ok"
run "$work/installed/plugin_roundtrip" "plugin roundtrip: ok"
run "$work/installed/actors_roundtrip" "actors roundtrip: ok"
run "$work/installed/runtime_roundtrip" "runtime roundtrip: ok"
run "$work/installed/testkit_roundtrip" "testkit roundtrip: ok"
consumer "$work/installed-storage" tests/package/installed -DCMAKE_PREFIX_PATH="$prefix" \
  -DVARVE_EXPECTED_PREFIX="$prefix" -DVARVE_STORAGE_ONLY=ON -DCMAKE_DISABLE_FIND_PACKAGE_CAF=ON
run "$work/installed-storage/storage_roundtrip" "storage roundtrip: ok"
run "$work/installed-storage/plugin_roundtrip" "plugin roundtrip: ok"
consumer "$work/build-tree" tests/package/installed -DVarve_DIR="$build" \
  -DVARVE_EXPECTED_PREFIX="$build" -DVARVE_STORAGE_ONLY=ON -DCMAKE_DISABLE_FIND_PACKAGE_CAF=ON
run "$work/build-tree/storage_roundtrip" "storage roundtrip: ok"
run "$work/build-tree/plugin_roundtrip" "plugin roundtrip: ok"

# ------------------------------------------------------------ fetch
for variant in fetch fetch-storage; do
  args=(-DFETCHCONTENT_SOURCE_DIR_VARVE="$src")
  if [ "$variant" = fetch-storage ]; then
    args+=(-DVARVE_STORAGE_ONLY=ON -DCMAKE_DISABLE_FIND_PACKAGE_CAF=ON)
  fi
  # Configured each time (the checks run then); built incrementally.
  step "configure $variant" cmake -S tests/package/fetch -B "$work/$variant" -G Ninja \
    "${launcher[@]}" "${args[@]}"
  step "build $variant" cmake --build "$work/$variant" -j2
  run "$work/$variant/storage_roundtrip" "storage roundtrip: ok"
  run "$work/$variant/plugin_roundtrip" "plugin roundtrip: ok"
done
run "$work/fetch/actors_roundtrip" "actors roundtrip: ok"
run "$work/fetch/runtime_roundtrip" "runtime roundtrip: ok"
run "$work/fetch/testkit_roundtrip" "testkit roundtrip: ok"

# ------------------------------------------------------------ deb
rm -rf "$work/deb" "$work/deb-root"
step "cpack -G DEB" cpack -G DEB -B "$work/deb" --config "$build/CPackConfig.cmake"
debs=("$work"/deb/varve-dev_*.deb)
[ -f "${debs[0]}" ] || { echo "package: FAILED: cpack made no varve-dev_*.deb" >&2; exit 1; }
deb=${debs[0]}
info=$(dpkg-deb --info "$deb")
for field in "Package: varve-dev" "Section: libdevel" "liblmdb-dev" "libbotan-2-dev" \
  "libisal-dev" "libcaf-dev"; do
  grep -qF "$field" <<<"$info" || { echo "package: FAILED: $deb: no '$field' in:" >&2; \
    echo "$info" >&2; exit 1; }
done
contents=$(dpkg-deb --contents "$deb")
lib='\./usr/lib(/[a-z0-9_-]+)?'
for file in '\./usr/include/varve/storage/event_store\.hpp' \
  '\./usr/include/varve/actors/storage_actor\.hpp' "$lib/libvarve_storage\.a" \
  '\./usr/include/varve/testkit/aggregate_test\.hpp' "$lib/libvarve_testkit\.a" \
  "$lib/libvarve_actors\.a" "$lib/cmake/Varve/VarveConfig\.cmake" \
  "$lib/cmake/Varve/FindCAF\.cmake" "$lib/pkgconfig/varve-storage\.pc"; do
  grep -qE " $file\$" <<<"$contents" || { echo "package: FAILED: $deb lacks $file" >&2; exit 1; }
done
echo "package: $(basename "$deb"): $(grep -F 'Depends:' <<<"$info" | sed 's/^ *//')"
step "unpack $(basename "$deb")" dpkg-deb -x "$deb" "$work/deb-root"
# The libraries ship without debug information, as Debian's -dev packages do.
while IFS= read -r -d '' a; do
  sections=$(objdump -h "$a")  # not piped into grep -q: objdump would die of SIGPIPE
  if grep -qF ' .debug_info' <<<"$sections"; then
    echo "package: FAILED: ${a#"$work/deb-root"} carries debug information" >&2
    exit 1
  fi
done < <(find "$work/deb-root" -name 'libvarve_*.a' -print0)
consumer "$work/deb-consumer" tests/package/installed -DCMAKE_PREFIX_PATH="$work/deb-root/usr" \
  -DVARVE_EXPECTED_PREFIX="$work/deb-root/usr"
run "$work/deb-consumer/storage_roundtrip" "storage roundtrip: ok"
run "$work/deb-consumer/plugin_roundtrip" "plugin roundtrip: ok"
run "$work/deb-consumer/actors_roundtrip" "actors roundtrip: ok"
run "$work/deb-consumer/runtime_roundtrip" "runtime roundtrip: ok"
run "$work/deb-consumer/testkit_roundtrip" "testkit roundtrip: ok"

# pkg-config alone, from the unpacked package (the .pc file finds its prefix
# from where it lies).
pc=$(find "$work/deb-root" -name varve-storage.pc)
export PKG_CONFIG_PATH=${pc%/*}
version=$(pkg-config --modversion varve-storage)
[ "$version" = "$(sed -n 's/^project(varve VERSION \([0-9.]*\).*/\1/p' CMakeLists.txt)" ] ||
  { echo "package: FAILED: varve-storage.pc says version $version" >&2; exit 1; }
read -r -a flags <<<"$(pkg-config --cflags --libs varve-storage)"
step "pkg-config build" c++ -std=c++20 -o "$work/pkgconfig_storage_roundtrip" \
  tests/package/storage_roundtrip.cpp "${flags[@]}"
run "$work/pkgconfig_storage_roundtrip" "storage roundtrip: ok"

rm -rf "$prefix" "$work/installed" "$work/installed-storage" "$work/build-tree" "$work/deb" \
  "$work/deb-root" "$work/deb-consumer" "$work/pkgconfig_storage_roundtrip"
echo "package: installed, fetch, deb and pkg-config consumers passed in $(($(date +%s) - start)) s"
