#!/usr/bin/env bash
# Installs what the benchmarks need on top of scripts/deps.sh: SQLite, libpq and a
# PostgreSQL server (baselines), nlohmann-json and CLI11 (harness), gnuplot (plots).
# Does nothing when every package is already installed. Needs root (apt-get).
set -euo pipefail
cd "$(dirname "$0")/.."

scripts/deps.sh

packages=(
  libsqlite3-dev      # sqlite baseline
  libpq-dev           # postgres baseline (client)
  postgresql          # postgres baseline (server, /usr/lib/postgresql/<v>/bin)
  nlohmann-json3-dev  # JSONL records and the report
  libcli11-dev        # command-line parsing
  gnuplot-nox         # PNG plots
)

. "$(dirname "$0")/lib/apt.sh"
install_missing deps-bench "${packages[@]}"
