# tail: follows live appends from another process, --from, SIGINT and SIGTERM
# end it cleanly (exit 0).
source "$(dirname "$0")/lib.sh"

expect 5 "tail without a store" -- tail
expect 0 "init" -- init
expect 0 "append" -- append s e --data '{"n":1}'
expect 0 "append" -- append s e --data '{"n":2}'

lines() { [ -f "$1" ] && wc -l <"$1" || echo 0; }
at_least() { [ "$(lines "$1")" -ge "$2" ]; }

# --- --from 2 --json: the old event, then live ones; SIGINT ends it with 0
"$VARVECTL" tail --from 2 --json >"$T/tail1" 2>"$T/tail1.err" &
t1=$!
BG_PIDS+=("$t1")
wait_for at_least "$T/tail1" 1 || fail "tail --from 2 printed nothing"
check_eq "$(jq -c .position "$T/tail1" | head -1)" 2 "tail --from starts at the position"
"$VARVECTL" append s e --data '{"n":3}' >/dev/null
"$VARVECTL" append t e --data '{"n":4}' >/dev/null
wait_for at_least "$T/tail1" 3 || fail "tail did not follow the appends"
check_eq "$(jq -c '[.position, .stream, .data.n]' "$T/tail1" | tr '\n' ' ')" '[2,"s",2] [3,"s",3] [4,"t",4] ' "tail printed the live appends"
kill -INT "$t1"
wait "$t1"
check_eq "$?" 0 "tail exits 0 on SIGINT"
check_eq "$(cat "$T/tail1.err")" "" "tail is quiet on stderr"

# --- default: from the next append; events written by another process, in bulk
"$VARVECTL" tail >"$T/tail2" 2>&1 &
t2=$!
BG_PIDS+=("$t2")
# Keep appending until tail shows one (it starts at the head it first sees).
appended=0
for i in $(seq 1 100); do
  "$VARVECTL" append live e --data "{\"i\":$i}" >/dev/null
  appended=$i
  sleep 0.1
  at_least "$T/tail2" 1 && break
done
at_least "$T/tail2" 1 && pass || fail "tail never showed a live append"
first=$(head -1 "$T/tail2" | cut -d' ' -f1)
[ "${first#@}" -gt 4 ] && pass || fail "tail without --from printed an old event: $first"
check_grep "^@[0-9]+ live v[0-9]+ e .* data=\{\"i\":[0-9]+\}$" "$T/tail2" "tail prints events for people"
before=$(lines "$T/tail2")
"$HELPER" append-loop "$T/db" bulk 300 || fail "bulk appends"
wait_for at_least "$T/tail2" $((before + 300)) || fail "tail missed bulk appends: $(lines "$T/tail2") lines"
kill -TERM "$t2"
wait "$t2"
check_eq "$?" 0 "tail exits 0 on SIGTERM"
# Every position once, in order, no gaps.
cut -d' ' -f1 "$T/tail2" | tr -d @ >"$T/positions"
check_eq "$(sort -n -u "$T/positions" | wc -l)" "$(wc -l <"$T/positions")" "no event printed twice"
check_eq "$(tail -1 "$T/positions")" "$(( $(head -1 "$T/positions") + $(wc -l <"$T/positions") - 1 ))" "no gaps"

finish
