# append --events (several events, one request, one expected version) and
# how append stores data: JSON compacted, --raw bytes as given.
source "$(dirname "$0")/lib.sh"

expect 0 "init" -- init

# version_of STREAM: the stream's version (0 when it does not exist).
version_of() {
  "$VARVECTL" --json streams | jq -r --arg s "$1" 'select(.stream == $s) | .version' |
    grep . || echo 0
}

# --- several events from a file: one request, consecutive versions
cat >"$T/three.jsonl" <<'LINES'
{"type":"opened","data":{"owner":"ada"},"metadata":{"by":"cli"}}

{"type":"deposited","data":{"amount":100},"id":"0190a1b2-c3d4-7e5f-8a9b-0c1d2e3f4a5b"}
{"type":"blob","data_base64":"AAH/"}
LINES
expect 0 "append --events FILE" -- append acc-1 --events "$T/three.jsonl" --expected-version no-stream
check_eq "$(out)" "appended 3 events to 'acc-1' at versions 1..3, positions 1..3" "events message"
expect 0 "read them back" -- read acc-1 --json
check_eq "$(jq -c '[.version, .type]' "$T/out" | tr '\n' ' ')" \
  '[1,"opened"] [2,"deposited"] [3,"blob"] ' "versions and types in line order"
check_eq "$(jq -c '.data' "$T/out" | tr '\n' ' ')" '{"owner":"ada"} {"amount":100} null ' "data"
check_eq "$(jq -r '.data_base64 // empty' "$T/out")" "AAH/" "data_base64 kept"
check_eq "$(jq -r 'select(.version == 2) | .id' "$T/out")" \
  0190a1b2-c3d4-7e5f-8a9b-0c1d2e3f4a5b "the given id is kept"
check_eq "$(jq -c '.metadata' "$T/out" | head -1)" '{"by":"cli"}' "metadata"

# --- from stdin, --json, exact expected version; read --json output is input
"$VARVECTL" read acc-1 --json --limit 2 >"$T/copy.jsonl"
"$VARVECTL" --json append acc-2 --events - --expected-version 0 <"$T/copy.jsonl" >"$T/out" 2>"$T/err"
check_eq "$?" 0 "append --events - (stdin)"
check_eq "$(out)" \
  '{"position":5,"stream":"acc-2","version":2,"first_position":4,"first_version":1,"events":2}' \
  "events JSON shape"
expect 0 "read the copy" -- read acc-2 --json
check_eq "$(jq -c '[.stream, .version, .type, .data]' "$T/out" | tr '\n' ' ')" \
  '["acc-2",1,"opened",{"owner":"ada"}] ["acc-2",2,"deposited",{"amount":100}] ' \
  "read --json lines append as they were"

# --- bad input: exit 2, the line named, nothing stored
printf '{"type":"a","data":1}\n{"type":"b","data":2}\n{"type":"c",\n' >"$T/bad.jsonl"
expect 2 "a line that is not JSON" -- append acc-1 --events "$T/bad.jsonl"
check_grep "$T/bad.jsonl line 3: not JSON" "$T/err" "bad line named"
check_eq "$(version_of acc-1)" 3 "nothing stored after a bad line"
printf '{"type":"a"}\n{"type":"b","payload":"x"}\n' >"$T/unknown.jsonl"
expect 2 "an unknown field" -- --json append acc-1 --events "$T/unknown.jsonl"
check_grep "line 2: unknown field 'payload'" "$T/err" "unknown field named"
printf '{"type":"a"}\n{"data":{}}\n' | "$VARVECTL" append new-1 --events - >"$T/out" 2>"$T/err"
check_eq "$?" 2 "a line without a type, stdin"
check_grep "standard input line 2: 'type' is missing" "$T/err" "missing type named"
check_eq "$(version_of new-1)" 0 "nothing stored for a new stream"
: >"$T/empty.jsonl"
expect 2 "an empty file" -- append acc-1 --events "$T/empty.jsonl"
check_grep "holds no events" "$T/err" "empty file message"
{
  printf '{"type":"small"}\n{"type":"big","data":"'
  head -c $((17 << 20)) /dev/zero | tr '\0' a
  printf '"}\n'
} >"$T/big.jsonl"
expect 2 "a line over max_event_bytes" -- append acc-1 --events "$T/big.jsonl"
check_grep "line 2: the event is [0-9]+ bytes .*max_event_bytes" "$T/err" "big line named"
check_eq "$(version_of acc-1)" 3 "nothing stored after a big line"
expect 5 "a missing events file" -- append acc-1 --events "$T/missing.jsonl"
expect 2 "TYPE with --events" -- append acc-1 x --events "$T/three.jsonl"
expect 2 "--data with --events" -- append acc-1 --events "$T/three.jsonl" --data 1
expect 2 "neither TYPE nor --events" -- append acc-1
check_eq "$(version_of acc-1)" 3 "nothing stored by refused arguments"

# --- a conflict: exit 3, nothing stored
expect 3 "--events with a wrong expected version" -- append acc-1 --events "$T/three.jsonl" --expected-version 2
check_grep "wrong_expected_version" "$T/err" "conflict message"
expect 3 "--events no-stream on an existing stream" -- append acc-1 --events "$T/three.jsonl" --expected-version no-stream
check_eq "$(version_of acc-1)" 3 "nothing stored after a conflict"
expect 0 "--events with the right expected version" -- append acc-1 --events "$T/three.jsonl" --expected-version 3 --json
check_jq '.first_version == 4 and .version == 6 and .events == 3' "appended after the conflict"

# --- JSON data is stored compacted; --raw keeps the bytes
printf '{\n  "owner": "ada",\n  "tags": [1, 2]\n}\n' >"$T/pretty.json"
expect 0 "append pretty JSON from a file" -- append doc data --data @"$T/pretty.json" --metadata @"$T/pretty.json"
printf '{ "n" : 1 }\n' | "$VARVECTL" append doc data --data - >/dev/null
check_eq "$?" 0 "append pretty JSON from stdin"
expect 0 "append pretty JSON inline" -- append doc data --data '{ "a" : [ 1 ] }'
expect 0 "append pretty JSON --raw" -- append doc raw --data @"$T/pretty.json" --raw
expect 0 "append inline JSON --raw" -- append doc raw --data '{ "a" : [ 1 ] }' --raw
expect 0 "read doc" -- read doc --json
check_eq "$(jq -c 'select(.type == "data") | .data' "$T/out" | tr '\n' ' ')" \
  '{"owner":"ada","tags":[1,2]} {"n":1} {"a":[1]} ' "JSON stored compact, read back as data"
check_eq "$(jq -c 'select(.version == 1) | .metadata' "$T/out")" '{"owner":"ada","tags":[1,2]}' \
  "metadata stored compact"
check_eq "$(jq -r 'select(.version == 4) | .data_base64' "$T/out" | base64 -d | cmp - "$T/pretty.json" && echo same)" \
  same "--raw keeps the file's bytes"
check_eq "$(jq -r 'select(.version == 5) | .data_base64' "$T/out" | base64 -d)" '{ "a" : [ 1 ] }' \
  "--raw keeps inline text"
printf 'not json\n' >"$T/text"
expect 0 "append a file that is not JSON" -- append doc text --data @"$T/text"
expect 0 "read it" -- read doc --json --backward --limit 1
check_eq "$(jq -r .data_base64 "$T/out" | base64 -d)" "not json" "other bytes kept as they are"

finish
