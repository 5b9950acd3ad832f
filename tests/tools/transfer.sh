# export / import round trips (byte-identical, positions, ids and times kept,
# shredded streams included, plain and encrypted), refusals (exit 2), and
# backup while another process writes.
source "$(dirname "$0")/lib.sh"

expect 0 "init" -- init
# Payloads of every form: canonical JSON, pretty JSON (kept by --raw), binary,
# "null", empty, text, unicode; metadata likewise; a type that is not UTF-8.
printf '{\n  "pretty": true\n}\n' >"$T/pretty.json"
printf '\x00\xff\xfe' >"$T/bin"
printf 'null' >"$T/null"
expect 0 "canonical" -- append a e1 --data '{"z":1,"a":[1,2.5,"x"],"n":null}' --metadata '{"m":1}'
expect 0 "pretty" -- append a e2 --data @"$T/pretty.json" --metadata @"$T/bin" --raw
expect 0 "binary" -- append b e3 --data @"$T/bin"
expect 0 "null" -- append b e4 --data @"$T/null" --metadata @"$T/null"
expect 0 "empty" -- append c e5
expect 0 "unicode" -- append c e6 --data '{"name":"Zoë ✓"}'
expect 0 "odd type" -- append c $'type-\xff-x' --data '"just a string"'
"$HELPER" append-loop "$T/db" bulk 700 || fail "bulk appends"
"$HELPER" append-loop "$T/db" other 20 || fail "more appends"
expect 0 "shred b" -- shred b

expect 0 "export" -- export
cp "$T/out" "$T/e1.jsonl"
check_eq "$(err)" "" "no progress drawn when stderr is not a terminal"
# The export holds the store's data: a file is made mode 0600 whatever the umask.
(umask 022 && "$VARVECTL" export >"$T/mode.jsonl")
check_eq "$(stat -c %a "$T/mode.jsonl")" 600 "export to a new file: mode 0600 under umask 022"
if cmp -s "$T/mode.jsonl" "$T/e1.jsonl"; then pass; else fail "export to a file differs"; fi
(umask 022 && : >"$T/old.jsonl" && chmod 644 "$T/old.jsonl" && "$VARVECTL" export --from 700 >>"$T/old.jsonl")
check_eq "$(stat -c %a "$T/old.jsonl")" 600 "export appended to a 0644 file: mode 0600"
(umask 022 && "$VARVECTL" export --from 0 >"$T/refused.jsonl" 2>/dev/null)
check_eq "$(stat -c %a "$T/refused.jsonl")" 644 "a refused export leaves its file alone"
check_eq "$("$VARVECTL" export | wc -l)" 727 "export into a pipe"
# On a terminal (script(1) gives one), long operations draw a progress line.
script -qec "\"$VARVECTL\" export >/dev/null" /dev/null >"$T/tty.out" 2>&1
check_grep 'export: [0-9]+ / 727' "$T/tty.out" "progress drawn on a terminal"
check_eq "$(wc -l <"$T/e1.jsonl")" 727 "export has every event"
check_eq "$(jq -s '[.[].position] == [range(1;728)]' "$T/e1.jsonl")" true "export positions 1..727 in order"
check_eq "$(jq -c 'select(.position==2) | [.data, .data_base64, .metadata_base64]' "$T/e1.jsonl")" \
  "[null,\"$(base64 -w0 <"$T/pretty.json")\",\"$(base64 -w0 <"$T/bin")\"]" "non-canonical JSON as base64"
check_eq "$(jq -c 'select(.position==4) | [.shredded, has("data"), .metadata]' "$T/e1.jsonl")" \
  '[true,false,null]' "shredded event exported without data"
check_eq "$(jq -c 'select(.position==6) | .data' "$T/e1.jsonl")" '{"name":"Zoë ✓"}' "unicode JSON"
check_eq "$(jq -r 'select(.position==7) | .type_base64' "$T/e1.jsonl" | base64 -d | od -An -tx1 | tr -d ' ')" \
  "$(printf 'type-\xff-x' | od -An -tx1 | tr -d ' ')" "non-UTF-8 type kept exactly"

# --- import into an empty plain store, and into an encrypted one
expect 0 "init target" -- --db "$T/db2" init
expect 0 "import" -- --db "$T/db2" import "$T/e1.jsonl"
check_grep "imported 727 events in 5 streams \(1 shredded\)" "$T/out" "import message"
expect 0 "export the import" -- --db "$T/db2" export
cp "$T/out" "$T/e2.jsonl"
if cmp -s "$T/e1.jsonl" "$T/e2.jsonl"; then pass; else fail "export -> import -> export differs: $(diff "$T/e1.jsonl" "$T/e2.jsonl" | head -5)"; fi
expect 0 "verify the import" -- --db "$T/db2" verify
expect 0 "streams of the import" -- --db "$T/db2" streams --json
check_eq "$(jq -r 'select(.stream=="b").state' "$T/out")" shredded "shredded stream shredded again"

new_key "$T/k"
expect 0 "init encrypted target" -- --db "$T/db3" --key-file "$T/k" init
"$VARVECTL" --db "$T/db3" --key-file "$T/k" --json import - <"$T/e1.jsonl" >"$T/out" 2>"$T/err"
check_eq "$?" 0 "import from stdin into an encrypted store"
check_jq '.events == 727 and .streams == 5 and .shredded_streams == 1' "import JSON"
"$VARVECTL" --db "$T/db3" --key-file "$T/k" export >"$T/e3.jsonl"
if cmp -s "$T/e1.jsonl" "$T/e3.jsonl"; then pass; else fail "round trip through an encrypted store differs"; fi

# --- times are restored to the microsecond, whatever the year
cat >"$T/times.jsonl" <<'JSONL'
{"position":1,"stream":"t","version":1,"type":"x","id":"00000000-0000-7000-8000-000000000001","time":"1970-01-01T00:00:00.000001Z","shredded":false,"metadata":null,"data":1}
{"position":2,"stream":"t","version":2,"type":"x","id":"00000000-0000-7000-8000-000000000002","time":"1969-12-31T23:59:59.999999Z","shredded":false,"metadata":null,"data":2}
{"position":3,"stream":"u","version":1,"type":"x","id":"00000000-0000-7000-8000-000000000003","time":"0001-01-01T00:00:00.000000Z","shredded":false,"metadata":null,"data":3}
{"position":4,"stream":"t","version":3,"type":"x","id":"00000000-0000-7000-8000-000000000004","time":"+10000-02-29T12:34:56.654321Z","shredded":false,"metadata":null,"data":"four"}
{"position":5,"stream":"u","version":2,"type":"x","id":"00000000-0000-7000-8000-000000000005","time":"2024-02-29T23:59:59.123456Z","shredded":false,"metadata":{"a":[]},"data_base64":"AA=="}
JSONL
expect 0 "init times" -- --db "$T/db4" init
expect 0 "import crafted times" -- --db "$T/db4" import "$T/times.jsonl"
expect 0 "export crafted times" -- --db "$T/db4" export
if cmp -s "$T/out" "$T/times.jsonl"; then pass; else fail "times or ids not restored: $(diff "$T/out" "$T/times.jsonl" | head -4)"; fi

# --- refusals: a non-empty store, a partial export, bad lines; the store stays untouched
expect 2 "import into a non-empty store" -- --db "$T/db2" import "$T/e1.jsonl"
check_grep "not empty" "$T/err" "non-empty message"
expect 0 "export --from 700" -- export --from 700
check_eq "$(head -1 "$T/out" | jq .position)" 700 "export --from"
check_eq "$(wc -l <"$T/out")" 28 "export --from count"
cp "$T/out" "$T/partial.jsonl"
expect 0 "init empty" -- --db "$T/empty" init
expect 2 "import a partial export" -- --db "$T/empty" import "$T/partial.jsonl"
check_grep "line 1: position 700 where 1 was expected" "$T/err" "partial export message"
bad_line() { # bad_line DESCRIPTION LINE...
  local desc=$1
  shift
  printf '%s\n' "$@" >"$T/bad.jsonl"
  expect 2 "import: $desc" -- --db "$T/empty" import "$T/bad.jsonl"
}
good='{"position":1,"stream":"t","version":1,"type":"x","id":"00000000-0000-7000-8000-000000000001","time":"2024-01-01T00:00:00.000000Z","metadata":null,"data":1}'
bad_line "not JSON" "$good" '{oops'
bad_line "bad time" '{"position":1,"stream":"t","version":1,"type":"x","id":"00000000-0000-7000-8000-000000000001","time":"yesterday","data":1}'
bad_line "bad base64" '{"position":1,"stream":"t","version":1,"type":"x","id":"00000000-0000-7000-8000-000000000001","time":"2024-01-01T00:00:00Z","data_base64":"!!"}'
bad_line "bad id" '{"position":1,"stream":"t","version":1,"type":"x","id":"nope","time":"2024-01-01T00:00:00Z"}'
bad_line "version gap" "$good" '{"position":2,"stream":"t","version":3,"type":"x","id":"00000000-0000-7000-8000-000000000002","time":"2024-01-01T00:00:00Z"}'
check_grep "line 2" "$T/err" "the bad line is named"
bad_line "empty type" '{"position":1,"stream":"t","version":1,"type":"","id":"00000000-0000-7000-8000-000000000001","time":"2024-01-01T00:00:00Z"}'
# The checking pass refuses all that the store would (before anything is
# written): a type over 65535 bytes, a stream name over 511 bytes, an event
# over max_event_bytes (16 MiB), after 1000 good events (one batch).
# lines FIRST COUNT TYPE_BYTES STREAM_BYTES DATA_BYTES: COUNT events of
# streams s<i> (stream names padded to STREAM_BYTES when given), a type of
# TYPE_BYTES and a string payload of DATA_BYTES.
lines() {
  local first=$1 n=$2 type data pad="" i stream
  type=$(rep "$3" t)
  data=$(rep "$5" d)
  for ((i = first; i < first + n; i++)); do
    stream="s$i"
    [ "$4" -gt 0 ] && pad=$(rep $(($4 - ${#stream})) n)
    printf '{"position":%d,"stream":"%s","version":1,"type":"%s","id":"00000000-0000-7000-8000-%012d","time":"2024-01-01T00:00:00.000000Z","shredded":false,"metadata":null,"data":"%s"}\n' \
      "$i" "$stream$pad" "$type" "$i" "$data"
  done
}
rep() { head -c "$1" /dev/zero | tr '\0' "$2"; } # rep N CHAR: CHAR N times
big_refused() { # big_refused DESCRIPTION MESSAGE: the file $T/big.jsonl
  expect 2 "import: $1" -- --db "$T/empty" import "$T/big.jsonl"
  check_grep "big.jsonl line 1001: $2" "$T/err" "$1: the line and the reason"
  expect 0 "$1: nothing written" -- --db "$T/empty" stats --json
  check_jq '.events == 0 and .streams == 0' "$1: the store stays empty"
}
{ lines 1 1000 1 0 10 && lines 1001 1 70000 0 0; } >"$T/big.jsonl"
big_refused "a type of 70,000 bytes" "the type is 70000 bytes, over the limit of 65535"
{ lines 1 1000 1 0 10 && lines 1001 1 1 512 0; } >"$T/big.jsonl"
big_refused "a stream name of 512 bytes" "the stream name is 512 bytes, over the limit of 511"
{ lines 1 1000 1 0 10 && lines 1001 1 1 0 16777216; } >"$T/big.jsonl"
big_refused "an event over 16 MiB" "the event is 16777219 bytes \(type, metadata and payload\), over the store's max_event_bytes \(16777216\)"
# At the limits, all goes in.
{ lines 1 1 65535 511 0 && lines 2 1 1 0 16777212; } >"$T/limits.jsonl"
expect 0 "init limits" -- --db "$T/limits" init
expect 0 "import events at every limit" -- --db "$T/limits" import "$T/limits.jsonl"
check_grep "imported 2 events" "$T/out" "both events imported"

# An import that fails once it began writing (here: the file size limit;
# likewise a full disk or an I/O error) leaves a partial import, and says so.
lines 1 2500 1 0 700 >"$T/partial-import.jsonl"
expect 0 "init for a partial import" -- --db "$T/cut" init
(trap '' XFSZ && ulimit -f 1500 && exec "$VARVECTL" --db "$T/cut" import "$T/partial-import.jsonl") >"$T/out" 2>"$T/err"
check_eq "$?" 1 "an import that cannot write fails"
check_grep "^varvectl: io_error: import stopped after committing 1000 events: the store holds a partial import; remove $T/cut and import again \(" "$T/err" "partial import message"
expect 0 "the partial import is there" -- --db "$T/cut" stats --json
check_jq '.events == 1000' "1000 events committed"
expect 2 "importing again into the partial store" -- --db "$T/cut" import "$T/partial-import.jsonl"
check_grep "not empty \(1000 events\)" "$T/err" "a partial store is not empty"
expect 0 "init for an import that writes nothing" -- --db "$T/cut0" init
(trap '' XFSZ && ulimit -f 100 && exec "$VARVECTL" --db "$T/cut0" import "$T/partial-import.jsonl") >"$T/out" 2>"$T/err"
check_eq "$?" 1 "an import that cannot write its first batch fails"
check_grep "^varvectl: io_error: import stopped before committing any event \(the store is still empty\)" "$T/err" "nothing committed message"

expect 0 "the refused imports wrote nothing" -- --db "$T/empty" stats --json
check_jq '.events == 0 and .streams == 0' "store still empty"
expect 5 "import a missing file" -- --db "$T/empty" import "$T/missing.jsonl"
check_grep "cannot open $T/missing.jsonl: No such file or directory" "$T/err" "missing import file message"
expect 5 "import a missing file, JSON" -- --json --db "$T/empty" import "$T/no/such.jsonl"
check_eq "$(jq -r .error "$T/err")" not_found "missing import file JSON error"

# --- backup while another process appends
expect 0 "init live" -- --db "$T/live" init
"$HELPER" append-loop "$T/live" seed 50 || fail "seed"
"$HELPER" append-loop "$T/live" busy 100000000 "$T/stop-writer" &
writer=$!
BG_PIDS+=("$writer")
head_of() { "$VARVECTL" --db "$T/live" stats --json 2>/dev/null | jq .events; }
head_at_least() { [ "$(head_of)" -ge "$1" ]; }
wait_for head_at_least 150 || fail "the writer did not start"
mkdir "$T/bk"
expect 0 "backup while a writer runs" -- --db "$T/live" backup "$T/bk" --json
check_jq '.destination == "'"$T/bk"'" and .events >= 150 and .size_bytes > 0' "backup JSON"
copied=$(jq .events "$T/out")
kill -0 "$writer" 2>/dev/null && pass || fail "the writer stopped before the backup ended"
touch "$T/stop-writer"
wait "$writer"
check_eq "$?" 0 "writer finished"
expect 0 "verify the backup" -- --db "$T/bk" verify
expect 0 "export the backup" -- --db "$T/bk" export
cp "$T/out" "$T/bk.jsonl"
check_eq "$(wc -l <"$T/bk.jsonl")" "$copied" "backup holds what it reported"
"$VARVECTL" --db "$T/live" export | head -n "$copied" >"$T/live-prefix.jsonl"
if cmp -s "$T/bk.jsonl" "$T/live-prefix.jsonl"; then pass; else fail "the backup is not a prefix of the log"; fi
expect 2 "backup into a non-empty directory" -- --db "$T/live" backup "$T/bk"
expect 0 "backup for people" -- --db "$T/live" backup "$T/bk2"
check_grep "^backed up [0-9]+ events in 2 streams to $T/bk2 \([0-9.]+ [KMG]?i?B, compacted\)$" "$T/out" "backup message"

finish
