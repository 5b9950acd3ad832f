#!/usr/bin/env bash
# Installs what is missing, configures, builds, and runs the demo on an
# embedded store in var/demo (created; pass another directory as $1).
set -euo pipefail
cd "$(dirname "$0")/.."

scripts/deps.sh
cmake -S . -B build -G Ninja -DCMAKE_BUILD_TYPE=RelWithDebInfo >/dev/null
cmake --build build -j2 --target varve_store_tour
build/examples/varve_store_tour "${1:-var/demo}"
