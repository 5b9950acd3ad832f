# Hostile input, refused or shown safely: JSON nested deeper than 256 levels
# (import, append, stored payloads, cursor states), control characters and
# bad UTF-8 in names, types and messages (escaped for people, JSON-escaped
# in JSON), and --from 0 (versions and positions start at 1).
source "$(dirname "$0")/lib.sh"

# deep N: an array nested N deep, "[[...]]".
deep() {
  printf '%*s' "$1" '' | tr ' ' '['
  printf '%*s' "$1" '' | tr ' ' ']'
}
# event_line POSITION STREAM VERSION METADATA DATA: one line of an export.
event_line() {
  printf '{"position":%s,"stream":"%s","version":%s,"type":"x","id":"00000000-0000-7000-8000-%012d","time":"2024-01-01T00:00:00.000000Z","shredded":false,"metadata":%s,"data":%s}\n' \
    "$1" "$2" "$3" "$1" "$4" "$5"
}
# no_controls FILE DESCRIPTION: no C0 control but newline, no DEL, no C1 (UTF-8 C2 80..9F).
no_controls() {
  if LC_ALL=C grep -qaP '[\x00-\x09\x0b-\x1f\x7f]|\xc2[\x80-\x9f]' "$1"; then
    fail "$2: control characters in $(basename "$1"): $(LC_ALL=C grep -aP '[\x00-\x09\x0b-\x1f\x7f]|\xc2[\x80-\x9f]' "$1" | head -2 | od -c | head -5)"
  else
    pass
  fi
}

expect 0 "init" -- init
good=$(event_line 1 t 1 null 1)

# --- import: a line nested 100,000 deep is bad input (exit 2), named, and nothing is written
{
  echo "$good"
  event_line 2 t 2 null "$(deep 100000)"
} >"$T/deep-data.jsonl"
expect 2 "import data nested 100,000 deep" -- import "$T/deep-data.jsonl"
check_grep "deep-data.jsonl line 2: a value nested deeper than 256 levels" "$T/err" "deep import message"
{
  echo "$good"
  event_line 2 t 2 "$(deep 100000)" 1
} >"$T/deep-metadata.jsonl"
expect 2 "import metadata nested 100,000 deep" -- --json import - <"$T/deep-metadata.jsonl"
check_eq "$(out)" "" "nothing on stdout"
check_eq "$(jq -r .error "$T/err")" invalid_argument "deep import JSON error"
check_grep "line 2: a value nested deeper than 256" "$T/err" "deep metadata message"
{
  echo "$good"
  event_line 2 t 2 null "$(deep 257)"
} >"$T/deep257.jsonl"
expect 2 "import data nested 257 deep" -- import "$T/deep257.jsonl"
check_grep "line 2: a value nested deeper than 256 levels" "$T/err" "one level past the limit"
expect 0 "the refused imports wrote nothing" -- stats --json
check_jq '.events == 0 and .streams == 0' "store still empty"
# 256 deep is the limit itself: imported, exported as JSON, byte for byte
# (jq cannot read lines that deep: compared as text).
{
  echo "$good"
  event_line 2 t 2 null "$(deep 256)"
  event_line 3 t 3 "$(deep 256)" 3
} >"$T/deep256.jsonl"
expect 0 "import data nested 256 deep" -- import "$T/deep256.jsonl"
expect 0 "export it" -- export
if cmp -s "$T/out" "$T/deep256.jsonl"; then pass; else fail "256 deep: import -> export differs"; fi
check_grep '"data":\[\[\[' "$T/out" "256 deep shown as JSON"

# --- append: inline JSON too deep is bad input; the bytes go in with @FILE and show as base64
expect 2 "append --data nested 60,000 deep" -- append t x --data "$(deep 60000)"
check_grep "--data nests arrays and objects deeper than 256 levels" "$T/err" "deep --data message"
expect 2 "append --metadata nested 257 deep" -- append t x --metadata "$(deep 257)"
check_grep "--metadata nests arrays and objects deeper than 256 levels" "$T/err" "deep --metadata message"
expect 0 "append --data nested 256 deep" -- append t x --data "$(deep 256)" --json
check_jq '.version == 4' "256 deep inline appended"
deep 100000 >"$T/deep.json"
expect 0 "append 100,000 deep from a file" -- append raw blob --data @"$T/deep.json" --metadata @"$T/deep.json"
expect 0 "read it --json" -- read raw --json
check_jq '(has("data") | not) and (.data_base64 | @base64d | length) == 200000 and (has("metadata_base64"))' "deep payload as base64"
check_eq "$(jq -r .data_base64 "$T/out" | base64 -d | cmp - "$T/deep.json" && echo same)" same "base64 holds the bytes"
expect 0 "read it for people" -- read raw
check_grep "^@5 raw v1 blob .* data=base64:W1tb" "$T/out" "deep payload for people"
expect 0 "read-all --json" -- read-all --json --from 5
check_jq 'has("data_base64")' "read-all shows base64"
expect 0 "read-all for people" -- read-all --from 5
expect 0 "export with a deep payload" -- export --from 5
check_jq 'has("data_base64") and has("metadata_base64")' "export shows base64"
"$VARVECTL" tail --from 5 >"$T/tail.out" 2>"$T/tail.err" &
tailpid=$!
BG_PIDS+=("$tailpid")
tail_shows() { grep -q "data=base64:" "$T/tail.out"; }
wait_for tail_shows && pass || fail "tail did not show the deep payload"
kill -TERM "$tailpid"
wait "$tailpid"
check_eq "$?" 0 "tail over a deep payload exits 0"

# --- a cursor state nested 60,000 deep (written by an application) is not parsed
"$HELPER" cursor "$T/db" deep-state 1 "{\"mode\":$(deep 60000)}" || fail "cursor deep-state"
expect 0 "projections with a deep state" -- projections
check_grep '^deep-state +- +1 ' "$T/out" "deep state shown as none"
expect 0 "projections --json with a deep state" -- projections --json
check_jq '.mode == null and .state == null' "deep state JSON"

# --- control characters: escaped for people, JSON-escaped in JSON, exact in the store
red=$'red\x1b[31m'
expect 0 "append to a stream named with ESC" -- append "$red" $'ty\x07pe' --data '{"s":"\u001b[2J\u007f\u009b"}' --metadata '"\u0085"'
check_grep '^appended to '"'"'red\\x1b\[31m'"'"' at version 1' "$T/out" "append message escaped"
no_controls "$T/out" "append message"
expect 0 "append a C1 control and DEL in names" -- append $'c1-\xc2\x9b-del-\x7f' $'bad-\xff-type'
expect 0 "append a printable UTF-8 name" -- append 'Zoë-✓' ok
expect 0 "read for people" -- read "$red"
# The payload's JSON text holds the escape \u001b: its backslash is doubled.
check_grep '^@[0-9]+ red\\x1b\[31m v1 ty\\x07pe .* data=\{"s":"\\\\u001b\[2J\\x7f\\xc2\\x9b"\} metadata="\\xc2\\x85"$' "$T/out" "names, types and payloads escaped"
no_controls "$T/out" "read"
expect 0 "read --json" -- read "$red" --json
no_controls "$T/out" "read --json"
check_eq "$(jq -r .stream "$T/out")" "$red" "JSON keeps the exact name"
check_grep '"data":\{"s":"\\u001b\[2J\\u007f\\u009b"\},?' "$T/out" "JSON escapes DEL and C1 too"
check_eq "$(jq -r .data.s "$T/out")" $'\x1b[2J\x7f\xc2\x9b' "JSON decodes to the exact text"
expect 0 "read-all for people" -- read-all
no_controls "$T/out" "read-all"
check_grep ' c1-\\xc2\\x9b-del-\\x7f v1 bad-\\xff-type ' "$T/out" "C1, DEL and bad UTF-8 escaped"
check_grep ' Zoë-✓ v1 ok ' "$T/out" "printable UTF-8 kept"
expect 0 "read-all --json" -- read-all --json
no_controls "$T/out" "read-all --json"
expect 0 "read a printable UTF-8 name --json" -- read 'Zoë-✓' --json
check_eq "$(jq -r .stream "$T/out")" 'Zoë-✓' "printable UTF-8 in JSON"
check_grep '"stream":"Zoë-✓"' "$T/out" "printable UTF-8 in JSON as it is"
expect 0 "export" -- export
no_controls "$T/out" "export"
expect 0 "streams" -- streams
no_controls "$T/out" "streams"
check_grep '^red\\x1b\[31m +1 ' "$T/out" "streams table escaped"
expect 0 "streams --json" -- streams --json
no_controls "$T/out" "streams --json"
"$VARVECTL" tail --from 1 >"$T/tail.out" 2>&1 &
tailpid=$!
BG_PIDS+=("$tailpid")
tail_all() { grep -q ' ok ' "$T/tail.out"; }
wait_for tail_all || fail "tail did not reach the last event"
kill -TERM "$tailpid"
wait "$tailpid"
no_controls "$T/tail.out" "tail"
"$HELPER" cursor "$T/db" $'proj-\x1b]0;title\x07' 1 '{"mode":"exactly_once","state":"fa\u001biled","error":"boom\u001b[31m\u009b"}' || fail "cursor"
expect 0 "projections" -- projections
no_controls "$T/out" "projections"
check_grep '^proj-\\x1b\]0;title\\x07 +exactly_once +1 .* fa\\x1biled .*boom\\x1b\[31m\\xc2\\x9b$' "$T/out" "projections table escaped"
expect 0 "pause a projection named with ESC" -- pause $'proj-\x1b]0;title\x07'
no_controls "$T/out" "pause message"
expect 0 "shred" -- shred "$red"
no_controls "$T/out" "shred message"
check_grep "^stream 'red\\\\x1b\[31m' shredded" "$T/out" "shred message escaped"

# error messages, for people and in JSON
expect 5 "read a missing stream named with ESC" -- read $'nope\x1b[2J\xc2\x9b'
no_controls "$T/err" "not-found message"
check_grep "stream 'nope\\\\x1b\[2J\\\\xc2\\\\x9b' does not exist" "$T/err" "not-found message escaped"
vctl read $'bad-\xff-name'
no_controls "$T/err" "message about a name that is not UTF-8"
check_grep 'bad-\\xff-name' "$T/err" "bad UTF-8 escaped in the message"
expect 5 "the same in JSON" -- --json read $'nope\x1b[2J\xc2\x9b'
no_controls "$T/err" "JSON not-found message"
check_eq "$(jq -r .message "$T/err")" $'stream \'nope\x1b[2J\xc2\x9b\' does not exist' "JSON message decodes to the name"
expect 2 "an unknown option with ESC" -- read t $'--frob\x1b[31m'
no_controls "$T/err" "usage error"
check_grep 'frob\\x1b\[31m' "$T/err" "usage error escaped"
expect 2 "inline JSON that is not JSON, with ESC" -- append t x --data $'\x1b[31m'
no_controls "$T/err" "bad inline JSON message"
expect 0 "init in a directory named with ESC" -- --db "$T/"$'d\x1b[1m' init
no_controls "$T/out" "init message"

# --- escaping is unambiguous: a backslash prints as \\, bidirectional controls as \u{XXXX}
lit='s\x1b'   # backslash, x, 1, b
esc=$'s\x1b' # ESC
expect 0 "append to a stream named with a backslash" -- append "$lit" x
check_grep "^appended to 's\\\\\\\\x1b' at version 1" "$T/out" "append message doubles the backslash"
expect 0 "append to a stream named with ESC" -- append "$esc" x
expect 0 "read the backslash stream" -- read "$lit"
check_grep '^@[0-9]+ s\\\\x1b v1 x ' "$T/out" "a backslash is doubled"
lit_line=$(cut -d' ' -f2 "$T/out")
expect 0 "read the ESC stream" -- read "$esc"
check_grep '^@[0-9]+ s\\x1b v1 x ' "$T/out" "ESC as \\x1b"
esc_line=$(cut -d' ' -f2 "$T/out")
[ "$lit_line" != "$esc_line" ] && pass || fail "the two streams print the same: $lit_line"
expect 0 "streams" -- streams
check_grep '^s\\\\x1b +1 ' "$T/out" "streams table: the backslash doubled once"
check_grep '^s\\x1b +1 ' "$T/out" "streams table: ESC escaped"
expect 5 "a missing stream named with a backslash" -- read 'no\pe'
check_grep "stream 'no\\\\\\\\pe' does not exist" "$T/err" "error messages double the backslash"
"$HELPER" cursor "$T/db" 'proj\x1b' 1 '{"mode":"at_least_once","error":"C:\\dir"}' || fail "cursor with a backslash"
expect 0 "projections with backslashes" -- projections
check_grep '^proj\\\\x1b +at_least_once +1 .* C:\\\\dir$' "$T/out" "projections table: backslashes doubled once"
expect 0 "the backslash stream in JSON" -- read "$lit" --json
check_eq "$(jq -r .stream "$T/out")" "$lit" "JSON keeps the name exactly"
rlo=$'\u202e'
bidi=$'a\u202ab\u202bc\u202cd\u202de\u202ef\u2066g\u2067h\u2068i\u2069j\u200ek\u200fl\u061cm'
expect 0 "append to a stream named with bidirectional controls" -- append "$bidi" "evil${rlo}txt.exe" --data "\"x${rlo}y\""
expect 0 "read it for people" -- read "$bidi"
check_grep '^@[0-9]+ a\\u\{202a\}b\\u\{202b\}c\\u\{202c\}d\\u\{202d\}e\\u\{202e\}f\\u\{2066\}g\\u\{2067\}h\\u\{2068\}i\\u\{2069\}j\\u\{200e\}k\\u\{200f\}l\\u\{061c\}m v1 evil\\u\{202e\}txt\.exe .* data="x\\u\{202e\}y"$' "$T/out" "bidirectional controls escaped for people"
no_bidi() { # no_bidi FILE DESCRIPTION
  if LC_ALL=C grep -qaP '\xe2\x80[\x8e\x8f\xaa-\xae]|\xe2\x81[\xa6-\xa9]|\xd8\x9c' "$1"; then fail "$2: bidirectional controls in the output"; else pass; fi
}
no_bidi "$T/out" "read"
expect 0 "read it --json" -- read "$bidi" --json
no_bidi "$T/out" "read --json"
check_grep '"type":"evil\\u202etxt.exe"' "$T/out" "JSON escapes bidirectional controls"
check_eq "$(jq -r .stream "$T/out")" "$bidi" "JSON decodes to the exact name"
check_eq "$(jq -r .data "$T/out")" "x${rlo}y" "JSON decodes to the exact data"
expect 5 "a missing stream with a bidirectional control" -- read "no${rlo}pe"
no_bidi "$T/err" "error message"
check_grep "stream 'no\\\\u\{202e\}pe' does not exist" "$T/err" "error message escaped"
expect 5 "the same in JSON" -- --json read "no${rlo}pe"
no_bidi "$T/err" "JSON error message"
expect 0 "printable text around them stays" -- read 'Zoë-✓'
check_grep ' Zoë-✓ v1 ok ' "$T/out" "printable UTF-8 kept"

# --- --from 0: versions and positions start at 1 (exit 2); reset --to 0 means "before the first event"
expect 2 "read --from 0" -- read t --from 0
check_grep "--from: versions start at 1" "$T/err" "read --from 0 message"
expect 2 "read --backward --from 0" -- read t --backward --from 0
expect 2 "read --from 00" -- read t --from 00
expect 2 "read --from -1" -- read t --from -1
check_grep "--from: versions start at 1" "$T/err" "read --from -1 message"
expect 2 "read-all --from 0" -- read-all --from 0
check_grep "--from: positions start at 1" "$T/err" "read-all --from 0 message"
expect 2 "export --from 0" -- export --from 0
check_grep "--from: positions start at 1" "$T/err" "export --from 0 message"
check_eq "$(out)" "" "export --from 0 writes nothing"
timeout 10 "$VARVECTL" tail --from 0 >"$T/out" 2>"$T/err"  # taken as 1, tail would follow
check_eq "$?" 2 "tail --from 0"
check_grep "--from: positions start at 1" "$T/err" "tail --from 0 message"
expect 0 "read --from 1" -- read t --from 1 --limit 1 --json
check_jq '.version == 1' "--from 1 is the first version"
expect 0 "reset --to 0" -- reset some-projection --to 0
check_eq "$("$HELPER" view "$T/db" varve.projection_control some-projection | jq -c .position)" 0 "reset --to 0 recorded"
expect 0 "read --help" -- read --help
check_grep "1 or more" "$T/out" "--from's help says where versions start"
expect 0 "reset --help" -- reset --help
check_grep "0 \(the default\) is before the first event" "$T/out" "--to's help says what 0 means"

finish
