#!/usr/bin/env bash
# Runs the benchmarks of shared/design/BENCHMARKS.md side by side in one run and
# summarizes them (bench/README.md).
#
#   scripts/bench.sh               W1a..W9: W1a, W1b, W2 (1..1024 writers), W3, W4 on
#                                  every system, W5..W9 on varve (W9b also on lmdb-raw),
#                                  1M events (~5-9 min)
#   scripts/bench.sh --quick       W1a, W1b, W2 at 1 and 64 writers, W3 on every system,
#                                  W5, W6, W7, W9 on varve, 100k events (under a minute once built)
#   scripts/bench.sh --workloads W9 --systems varve,lmdb-raw --repeat 3
#   scripts/bench.sh --workloads W2,W3 --systems varve,lmdb-group --writers 1,64
#   scripts/bench.sh --repeat 5    every workload 5 times, varve and its baselines
#                                  interleaved; medians and min-max over the rounds
#
# Writes bench/results/<run>.jsonl (one JSON object per measurement, with its
# round, then the summary), bench/results/<run>.md and the W2 plots, <run> being
# the UTC start time. Installs what is missing (scripts/deps-bench.sh), builds
# the benchmark programs into build/ (RelWithDebInfo, like scripts/test.sh; or
# --build-dir DIR; --no-build runs the programs already built there), and
# starts its own PostgreSQL server in a temporary directory, stopped and removed
# on exit.
set -euo pipefail
cd "$(dirname "$0")/.."

usage() {
  sed -n '2,21p' "$0" | sed 's/^# \{0,1\}//'
  echo
  echo "Options: --quick  --workloads LIST  --systems LIST  --writers LIST  --events N  --repeat N"
  echo "         --build-dir DIR  --no-build"
  echo "Systems: varve lmdb-raw lmdb-group sqlite postgres"
  echo "Workloads: W1a W1b (W1) W2 W3 W4 W5 W6 W7 W8 W9a W9b W9c W9d (W9) (all);" \
    "W5..W9 are varve's only, but W9b which lmdb-raw also runs"
}

quick=0
workloads=""
systems="varve,lmdb-raw,lmdb-group,sqlite,postgres"
writers=""
events=""
repeat=1
build=build
no_build=0
while [ $# -gt 0 ]; do
  case "$1" in
    --quick) quick=1 ;;
    --workloads) workloads="${2:?--workloads needs a list}"; shift ;;
    --workloads=*) workloads="${1#*=}" ;;
    --systems) systems="${2:?--systems needs a list}"; shift ;;
    --systems=*) systems="${1#*=}" ;;
    --writers) writers="${2:?--writers needs a list}"; shift ;;
    --writers=*) writers="${1#*=}" ;;
    --events) events="${2:?--events needs a number}"; shift ;;
    --events=*) events="${1#*=}" ;;
    --repeat) repeat="${2:?--repeat needs a number}"; shift ;;
    --repeat=*) repeat="${1#*=}" ;;
    --build-dir) build="${2:?--build-dir needs a directory}"; shift ;;
    --build-dir=*) build="${1#*=}" ;;
    --no-build) no_build=1 ;;
    -h | --help) usage; exit 0 ;;
    *) echo "bench: unknown argument '$1'" >&2; usage >&2; exit 2 ;;
  esac
  shift
done

if [ "$quick" = 1 ]; then
  : "${workloads:=W1a,W1b,W2,W3,W5,W6,W7,W9}"
  : "${writers:=1,64}"
  : "${events:=100000}"
  w2_seconds=1
  w2_warmup=0.2
else
  : "${workloads:=W1a,W1b,W2,W3,W4,W5,W6,W7,W8,W9}"
  : "${writers:=1,16,64,256,1024}"
  : "${events:=1000000}"
  w2_seconds=3
  w2_warmup=0.5
fi
case "$repeat" in
  '' | *[!0-9]* | 0*) echo "bench: --repeat needs a positive number, not '$repeat'" >&2; exit 2 ;;
esac
for s in ${systems//,/ }; do
  case "$s" in
    varve | lmdb-raw | lmdb-group | sqlite | postgres) ;;
    *) echo "bench: unknown system '$s'" >&2; exit 2 ;;
  esac
done

if [ "$no_build" = 0 ]; then
  scripts/deps-bench.sh
  cmake -S . -B "$build" -G Ninja -DCMAKE_BUILD_TYPE=RelWithDebInfo -DVARVE_BUILD_BENCH=ON \
    -DVARVE_WERROR=ON >/dev/null
  cmake --build "$build" -j2 --target varve_bench
fi
"$build"/bench/varve_bench_report --self-test

run=$(date -u +%Y%m%dT%H%M%SZ)
mkdir -p bench/results
out="bench/results/$run.jsonl"
: >"$out"

# ---------------------------------------------------------------- clean-up
work_tmp=""
pg_root=""
pg_data=""
as_pg=()
[ "$(id -u)" -eq 0 ] && as_pg=(runuser -u postgres --)

stop_postgres() {
  if [ -n "$pg_data" ] && [ -f "$pg_data/postmaster.pid" ]; then
    # Only the server this script started: the pid in its own data directory.
    local pid
    pid=$(head -n1 "$pg_data/postmaster.pid" 2>/dev/null || true)
    if ! "${as_pg[@]}" "$pg_bin/pg_ctl" -D "$pg_data" -m fast -w -t 60 stop >/dev/null 2>&1; then
      [ -n "$pid" ] && kill -TERM "$pid" 2>/dev/null || true
    fi
    # pg_ctl returns when the pid file is gone: wait (10 s at most) for the
    # process itself to be gone, reaped by init.
    for _ in $(seq 100); do
      [ -n "$pid" ] && [ -e "/proc/$pid" ] || break
      sleep 0.1
    done
  fi
  [ -n "$pg_root" ] && rm -rf "$pg_root"
  pg_root=""
  pg_data=""
}

cleanup() {
  local rc=$?
  stop_postgres
  [ -n "$work_tmp" ] && rm -rf "$work_tmp"
  exit "$rc"
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

work_tmp=$(mktemp -d "${TMPDIR:-/tmp}/varve-bench.XXXXXX")

# ---------------------------------------------------------------- PostgreSQL
free_port() {
  local p
  for p in $(seq 55432 55532); do
    if ! ss -Htln "sport = :$p" 2>/dev/null | grep -q .; then
      echo "$p"
      return
    fi
  done
  echo 55432  # no TCP listener anyway: the server only has a socket in its own directory
}

start_postgres() {
  pg_bin=$(ls -d /usr/lib/postgresql/*/bin 2>/dev/null | sort -V | tail -n1)
  [ -x "$pg_bin/initdb" ] || { echo "bench: no PostgreSQL server binaries" >&2; return 1; }
  pg_root=$(mktemp -d "${TMPDIR:-/tmp}/varve-bench-pg.XXXXXX")
  [ ${#as_pg[@]} -gt 0 ] && chown postgres:postgres "$pg_root"
  pg_data="$pg_root/data"
  "${as_pg[@]}" "$pg_bin/initdb" -D "$pg_data" -U postgres -A trust -E UTF8 --locale=C \
    --no-sync >"$pg_root/initdb.log" 2>&1 || { cat "$pg_root/initdb.log" >&2; return 1; }
  pg_port=$(free_port)
  local conns
  for conns in 1100 300; do
    "${as_pg[@]}" tee -a "$pg_data/postgresql.conf" >/dev/null <<CONF
# scripts/bench.sh: a private server, durable commits
listen_addresses = ''
port = $pg_port
unix_socket_directories = '$pg_root'
fsync = on
synchronous_commit = on
max_connections = $conns
CONF
    if "${as_pg[@]}" "$pg_bin/pg_ctl" -D "$pg_data" -l "$pg_root/server.log" -w -t 60 start \
      >/dev/null 2>&1; then
      echo "bench: PostgreSQL $("$pg_bin/postgres" --version | awk '{print $3}') on socket" \
        "$pg_root port $pg_port, max_connections=$conns"
      pg_conninfo="host=$pg_root port=$pg_port user=postgres dbname=postgres"
      return 0
    fi
    echo "bench: PostgreSQL did not start with max_connections=$conns:" >&2
    tail -n 5 "$pg_root/server.log" >&2 || true
  done
  return 1
}

# ---------------------------------------------------------------- runs
# Workload by workload, and for W2 writer count by writer count, every system
# runs back to back: on a shared, noisy machine the figures compared with each
# other are then measured as close together in time as they can be. With
# --repeat N, each workload (W2: each writer count) runs N rounds in a row
# before the next, every system once a round, the order of the systems
# reversed every other round (varve, lmdb-raw, ...; ..., lmdb-raw, varve;
# ...) so that no system always runs first or last after another's writes.
program() {  # program SYSTEM WORKLOAD: the benchmark programs that run it, one a line
  case "$1:$2" in
    varve:W9a)  # W1a tagged (storage API), W2 tagged (storage actor)
      echo "$build"/bench/varve_bench_varve_storage
      echo "$build"/bench/varve_bench_varve_actors
      ;;
    varve:W2 | varve:W5 | varve:W9c) echo "$build"/bench/varve_bench_varve_actors ;;
    varve:W6) echo "$build"/bench/varve_bench_varve_projections ;;
    varve:W9d)  # storage level (storage API), and through the projection engine
      echo "$build"/bench/varve_bench_varve_storage
      echo "$build"/bench/varve_bench_varve_projections
      ;;
    varve:*) echo "$build"/bench/varve_bench_varve_storage ;;
  esac
  case "$1" in
    lmdb-raw) echo "$build"/bench/varve_bench_lmdb_raw ;;
    lmdb-group) echo "$build"/bench/varve_bench_lmdb_group ;;
    sqlite) echo "$build"/bench/varve_bench_sqlite ;;
    postgres) echo "$build"/bench/varve_bench_postgres ;;
  esac
}
supports() {  # supports SYSTEM WORKLOAD
  case "$1:$2" in
    varve:W1a | varve:W1b | varve:W2 | varve:W3 | varve:W4) return 0 ;;
    varve:W5 | varve:W6 | varve:W7 | varve:W8) return 0 ;;
    varve:W9a | varve:W9b | varve:W9c | varve:W9d) return 0 ;;
    lmdb-raw:W1a | lmdb-raw:W1b | lmdb-raw:W2 | lmdb-raw:W3 | lmdb-raw:W4) return 0 ;;
    lmdb-raw:W9b) return 0 ;;
    lmdb-group:W2) return 0 ;;
    sqlite:W1a | sqlite:W1b | sqlite:W2 | sqlite:W3 | sqlite:W4) return 0 ;;
    postgres:W1a | postgres:W1b | postgres:W2) return 0 ;;
  esac
  return 1
}

expanded=()
for w in ${workloads//,/ }; do
  case "$w" in
    all) expanded+=(W1a W1b W2 W3 W4 W5 W6 W7 W8 W9a W9b W9c W9d) ;;
    W1) expanded+=(W1a W1b) ;;
    W9) expanded+=(W9a W9b W9c W9d) ;;
    W1a | W1b | W2 | W3 | W4 | W5 | W6 | W7 | W8 | W9a | W9b | W9c | W9d) expanded+=("$w") ;;
    *) echo "bench: unknown workload '$w'" >&2; exit 2 ;;
  esac
done

need_pg=0
for w in "${expanded[@]}"; do
  supports postgres "$w" && case ",$systems," in *,postgres,*) need_pg=1 ;; esac
done
pg_ok=0
if [ "$need_pg" = 1 ]; then
  if start_postgres; then pg_ok=1; else echo "bench: PostgreSQL did not start: postgres skipped" >&2; fi
fi

common=(--dir "$work_tmp" --events "$events" --w2-seconds "$w2_seconds"
  --w2-warmup "$w2_warmup")
failed=()
round=1
records="$work_tmp/records.jsonl"
run_one() {  # run_one SYSTEM WORKLOAD [extra options]: a failure is noted, the run goes on
  local s=$1 w=$2
  shift 2
  supports "$s" "$w" || return 0
  local extra=()
  if [ "$s" = postgres ]; then
    if [ "$pg_ok" != 1 ]; then failed+=("$s $w (no server)"); return 0; fi
    extra=(--conninfo "$pg_conninfo")
  fi
  if [ "$s" = varve ] && [ "$quick" = 1 ]; then
    # varve's W5 with fewer repetitions, W6 with a shorter live phase
    case "$w" in
      W5) extra=(--w5-repeat 20) ;;
      W6) extra=(--w6-live-seconds 1) ;;
    esac
  fi
  # The program writes its records to a file of its own; they get their round
  # ("round":N first in each object) on their way to the run's file, also
  # those of a program that failed part way.
  : >"$records"
  local prog
  for prog in $(program "$s" "$w"); do
    if ! "$prog" "${common[@]}" --out "$records" --workloads "$w" "${extra[@]}" "$@"; then
      echo "bench: $s $w $* ($(basename "$prog"), round $round) failed" >&2
      failed+=("$s $w $* ($(basename "$prog"), round $round)")
    fi
  done
  sed -e "s/^{}\$/{\"round\":$round}/" -e t -e "s/^{/{\"round\":$round,/" "$records" >>"$out"
}
round_systems() {  # round_systems N: the systems in round N's order
  local list=(${systems//,/ }) i
  if [ $(($1 % 2)) -eq 1 ]; then
    echo "${list[@]}"
  else
    for ((i = ${#list[@]} - 1; i >= 0; i--)); do echo -n "${list[i]} "; done
    echo
  fi
}

start=$(date +%s)
load=$(cut -d' ' -f1 /proc/loadavg)
echo "bench: run $run: workloads ${expanded[*]}, systems $systems, writers $writers, events $events," \
  "$repeat round(s)"
if awk -v l="$load" -v c="$(nproc)" 'BEGIN { exit !(l > c / 2) }'; then
  echo "bench: warning: load average $load on $(nproc) cores: other work competes for the CPUs" \
    "and the disk, expect noisy figures" >&2
fi
rounds() {  # rounds WORKLOAD [extra options]: its N rounds, systems interleaved
  local w=$1 s
  shift
  for ((round = 1; round <= repeat; round++)); do
    if [ "$repeat" -gt 1 ]; then echo "bench: $w${*:+ $*} round $round/$repeat" >&2; fi
    for s in $(round_systems "$round"); do run_one "$s" "$w" "$@"; done
  done
}
for w in "${expanded[@]}"; do
  if [ "$w" = W2 ]; then
    for n in ${writers//,/ }; do rounds W2 --writers "$n"; done
  else
    rounds "$w"
  fi
done
load_end=$(cut -d' ' -f1 /proc/loadavg)
echo "bench: measured in $(($(date +%s) - start)) s; load average $load at the start, $load_end" \
  "at the end"

stop_postgres

"$build"/bench/varve_bench_report "$out" --repeat "$repeat" --load-at-start "$load" \
  --load-at-end "$load_end"
echo
cat "bench/results/$run.md"
if [ ${#failed[@]} -gt 0 ]; then
  echo "bench: failed: ${failed[*]}" >&2
  exit 1
fi
