# Shared by the varvectl tests (sourced). Usage of a test script:
#   bash tests/tools/<name>.sh VARVECTL HELPER
# Each script works in its own temporary directory, removed at exit, and ends
# with "N passed, N failed"; it exits non-zero when a check failed.
set -uo pipefail

VARVECTL=${1:?usage: $0 VARVECTL HELPER}
HELPER=${2:?usage: $0 VARVECTL HELPER}
command -v jq >/dev/null || { echo "jq is missing (scripts/deps.sh installs it)" >&2; exit 1; }

T=$(mktemp -d "${TMPDIR:-/tmp}/varvectl-test.XXXXXX")
BG_PIDS=()
cleanup() {
  for p in "${BG_PIDS[@]}"; do kill "$p" 2>/dev/null; done
  rm -rf "$T"
}
trap cleanup EXIT
cd "$T" || exit 1
export VARVE_DB="$T/db"
unset VARVE_KEY_FILE
passed=0
failed=0
RC=0
# Every output of varvectl, for checks across the whole script (key material).
ALL_OUTPUT="$T/all-output.log"
: >"$ALL_OUTPUT"

# vctl ARGS...: runs varvectl; stdout in $T/out, stderr in $T/err, status in $RC.
vctl() {
  "$VARVECTL" "$@" >"$T/out" 2>"$T/err"
  RC=$?
  cat "$T/out" "$T/err" >>"$ALL_OUTPUT"
}
out() { cat "$T/out"; }
err() { cat "$T/err"; }

pass() { passed=$((passed + 1)); }
fail() {
  failed=$((failed + 1))
  echo "FAIL: $*"
  echo "  stdout: $(head -c 1500 "$T/out" 2>/dev/null)"
  echo "  stderr: $(head -c 1500 "$T/err" 2>/dev/null)"
}

# expect STATUS DESCRIPTION -- ARGS...: runs varvectl and checks its exit status.
expect() {
  local want=$1 desc=$2
  shift 3
  vctl "$@"
  if [ "$RC" = "$want" ]; then pass; else fail "$desc: exit $RC, expected $want"; fi
}

# check_eq ACTUAL EXPECTED DESCRIPTION
check_eq() {
  if [ "$1" = "$2" ]; then pass; else fail "$3: got '$1', expected '$2'"; fi
}

# check_grep PATTERN FILE DESCRIPTION (extended regex)
check_grep() {
  if grep -Eq -- "$1" "$2"; then pass; else fail "$3: no /$1/ in $2"; fi
}

# check_jq FILTER DESCRIPTION: the filter is true for stdout (every JSON value of it).
check_jq() {
  local r
  r=$(jq -s "all(.[]; $1)" "$T/out" 2>&1)
  if [ "$r" = "true" ]; then pass; else fail "$2: jq '$1' gave $r"; fi
}

# wait_for COMMAND...: retries the command for up to 15 s.
wait_for() {
  local i
  for i in $(seq 1 150); do
    "$@" && return 0
    sleep 0.1
  done
  return 1
}

# A 256-bit key file, mode 0600, in hex: new_key FILE
new_key() {
  head -c 32 /dev/urandom | od -An -tx1 | tr -d ' \n' >"$1"
  echo >>"$1"
  chmod 600 "$1"
}

finish() {
  echo "$passed passed, $failed failed"
  [ "$failed" -eq 0 ]
  exit $?
}
