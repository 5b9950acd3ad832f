#!/usr/bin/env bash
# Installs the Debian packages Varve needs to build, test and run its demo.
# Does nothing when every package is already installed. Needs root (apt-get).
set -euo pipefail

packages=(
  build-essential cmake ninja-build pkg-config ccache clang-format
  liblmdb-dev lmdb-utils        # storage engine, and mdb_stat/mdb_dump for tests
  libbotan-2-dev                # AES-256-GCM, key wrap, system RNG
  libisal-dev                   # CRC32C of every record (Intel ISA-L, hardware-accelerated)
  libcaf-dev                    # actors (CAF 0.17.6)
  libboost-test-dev             # Boost.Test
  libcli11-dev libboost-dev     # varvectl: arguments; base64 (Boost.Archive's iterators)
  jq                            # varvectl's tests read its JSON output
  strace                        # the creation crash test kills a process at each call
  nlohmann-json3-dev            # JSON: the event codec, projection state, varvectl
  libsimdjson-dev               # JSON events read back fast (the codec's reader)
  clang-14 libclang-rt-14-dev   # libFuzzer targets (scripts/test.sh --fuzz)
)

. "$(dirname "$0")/lib/apt.sh"
install_missing deps "${packages[@]}"
