#!/usr/bin/env bash
# Installs what is missing, configures, builds, and runs the bank example on
# an embedded store in var/demo (created; each run adds new accounts). Extra
# arguments go to the example, e.g. --bank.commands=20000 --varve.sync=no_sync.
set -euo pipefail
cd "$(dirname "$0")/.."

scripts/deps.sh
cmake -S . -B build -G Ninja -DCMAKE_BUILD_TYPE=RelWithDebInfo -DVARVE_WERROR=ON >/dev/null
cmake --build build -j2 --target varve_bank varvectl
build/examples/varve_bank --varve.data-dir=var/demo "$@"
