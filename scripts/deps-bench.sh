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

missing=()
for p in "${packages[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
[ ${#missing[@]} -eq 0 ] && exit 0

echo "deps-bench: installing ${missing[*]}"
sudo=""
[ "$(id -u)" -eq 0 ] || sudo="sudo"
export DEBIAN_FRONTEND=noninteractive
$sudo apt-get update -qq
$sudo apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
