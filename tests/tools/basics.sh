# init, append, read, read-all, streams, stats; usage errors; exit codes 0, 2, 3, 5.
source "$(dirname "$0")/lib.sh"

# --- a missing store: exit 5, a clear message, nothing created
expect 5 "read-all without a store" -- read-all
check_grep "no Varve store in $T/db" "$T/err" "missing store message"
[ ! -e "$T/db" ] && pass || fail "a missing store was created"
expect 5 "stats without a store" -- stats

# --- usage: exit 2
expect 2 "no command" --
expect 2 "unknown command" -- frobnicate
expect 2 "append without a type" -- append only-stream
expect 0 "--help" -- --help
check_grep "Exit codes" "$T/out" "help text"

# --- init
expect 0 "init" -- init
check_grep "created a store in $T/db \(not encrypted\)" "$T/out" "init message"
expect 2 "init twice" -- init
check_grep "already exists" "$T/err" "init twice message"
expect 0 "init --json elsewhere" -- --db "$T/other" --json init
check_jq '.directory == "'"$T/other"'" and .encrypted == false' "init JSON"

# --- append: expected versions, data forms, ids
expect 0 "append no-stream" -- append acc-1 opened --data '{"owner":"ada"}' \
  --metadata '{"by":"cli"}' --expected-version no-stream
check_grep "^appended to 'acc-1' at version 1, position 1$" "$T/out" "append message"
expect 3 "append no-stream to an existing stream" -- append acc-1 opened --expected-version no-stream
check_grep "wrong_expected_version" "$T/err" "conflict message"
expect 0 "append exact 1 (JSON)" -- --json append acc-1 deposited --data '{"amount": 100}' --expected-version 1
check_eq "$(out)" '{"position":2,"stream":"acc-1","version":2}' "append JSON shape"
expect 3 "append exact 1 again" -- append acc-1 deposited --expected-version 1
expect 0 "append exists" -- append acc-1 deposited --data '[1,2]' --expected-version exists --json
check_jq '.version == 3 and .position == 3' "append exists JSON"
expect 3 "append exists to a new stream" -- append acc-9 x --expected-version exists
ID=0190a1b2-c3d4-7e5f-8a9b-0c1d2e3f4a5b
expect 0 "append with an id" -- append acc-2 blob --data @/dev/null --id "$ID" --json
check_jq '.stream == "acc-2" and .version == 1 and .position == 4' "append to a new stream"
printf '\x00\x01\xffbinary' >"$T/bin"
expect 0 "append binary data from a file" -- append acc-2 blob --data @"$T/bin"
printf 'text from stdin' | "$VARVECTL" append acc-2 note --data - >/dev/null
check_eq "$?" 0 "append data from stdin"
expect 2 "bad --expected-version" -- append acc-1 x --expected-version soon
expect 2 "bad --id" -- append acc-1 x --id not-a-uuid
expect 2 "inline data that is not JSON" -- append acc-1 x --data 'not json'
expect 5 "a data file that is missing" -- append acc-1 x --data @"$T/missing"
check_grep "cannot read --data file $T/missing" "$T/err" "missing data file message"
expect 5 "a metadata file that is missing, JSON" -- --json append acc-1 x --metadata @"$T/no/such"
check_eq "$(jq -r .error "$T/err")" not_found "missing metadata file JSON error"
expect 2 "a data file that is a directory" -- append acc-1 x --data @"$T"
expect 2 "an empty stream name" -- append "" x

# --- read
expect 0 "read" -- read acc-1
check_eq "$(out | wc -l)" 3 "read prints 3 events"
check_grep '^@1 acc-1 v1 opened [0-9]{4}-[0-9]{2}-[0-9]{2}T[0-9:]{8}\.[0-9]{6}Z id=[0-9a-f-]{36} data=\{"owner":"ada"\} metadata=\{"by":"cli"\}$' \
  "$T/out" "human event line"
expect 0 "read --json" -- read acc-1 --json
check_jq 'keys_unsorted[:8] == ["position","stream","version","type","id","time","shredded","metadata"]' "event field order"
check_jq '.time | test("^[0-9]{4}-[0-9]{2}-[0-9]{2}T[0-9]{2}:[0-9]{2}:[0-9]{2}\\.[0-9]{6}Z$")' "ISO-8601 time with microseconds"
check_jq '.shredded == false and (.id | length) == 36' "id and shredded"
check_eq "$(jq -c '.data' "$T/out" | tr '\n' ' ')" '{"owner":"ada"} {"amount":100} [1,2] ' "inline JSON stored compact, shown as JSON"
check_eq "$(jq -c '.metadata' "$T/out" | tr '\n' ' ')" '{"by":"cli"} null null ' "metadata JSON or null"
expect 0 "read --backward --limit 1" -- read acc-1 --backward --limit 1 --json
check_jq '.version == 3' "backward read starts at the last version"
expect 0 "read --from 2 --limit 1" -- read acc-1 --from 2 --limit 1 --json
check_jq '.version == 2' "read from a version"
expect 0 "read --backward --from 2" -- read acc-1 --backward --from 2 --json
check_eq "$(jq -c .version "$T/out" | tr '\n' ' ')" "2 1 " "backward from a version"
expect 5 "read a missing stream" -- read nope
check_grep "stream 'nope' does not exist" "$T/err" "missing stream message"
expect 5 "read a missing stream --limit 0" -- read nope --limit 0
check_grep "stream 'nope' does not exist" "$T/err" "missing stream message, limit 0"
expect 5 "read a missing stream --backward --limit 0" -- read nope --backward --limit 0
expect 0 "read --limit 0" -- read acc-1 --limit 0
check_eq "$(out)" "" "--limit 0 reads nothing"
expect 2 "read --limit -1" -- read acc-1 --limit -1
expect 0 "read binary payloads" -- read acc-2 --json
check_eq "$(jq -r '.id' "$T/out" | head -1)" "$ID" "the given id is kept"
check_eq "$(jq -c '.data' "$T/out" | head -1)" null "empty payload is null"
check_eq "$(jq -r '.data_base64' "$T/out" | sed -n 2p)" "$(base64 <"$T/bin")" "binary payload as base64"
check_eq "$(jq -r '.data_base64' "$T/out" | sed -n 3p | base64 -d)" "text from stdin" "stdin payload"
expect 0 "read binary for people" -- read acc-2
check_grep "data=base64:$(base64 <"$T/bin")" "$T/out" "human base64 payload"

# --- read-all
expect 0 "read-all" -- read-all --json
check_eq "$(jq -c .position "$T/out" | tr '\n' ' ')" "1 2 3 4 5 6 " "read-all positions"
check_jq 'has("position") and has("stream") and has("version") and has("type") and has("id") and has("time") and has("metadata")' "event has the required fields"
expect 0 "read-all --backward --limit 2" -- read-all --backward --limit 2 --json
check_eq "$(jq -c .position "$T/out" | tr '\n' ' ')" "6 5 " "read-all backward"
expect 0 "read-all --from 5" -- read-all --from 5
check_eq "$(out | cut -d' ' -f1 | tr '\n' ' ')" "@5 @6 " "read-all from a position"
expect 0 "read-all --from past the head" -- read-all --from 100
check_eq "$(out)" "" "nothing past the head"

# --- streams
expect 0 "streams" -- streams
check_grep '^acc-1 +3 +3 +live$' "$T/out" "streams table"
expect 0 "streams --json" -- streams --json
check_eq "$(jq -c . "$T/out" | head -1)" '{"stream":"acc-1","version":3,"last_position":3,"state":"live"}' "streams JSON"

# --- stats
expect 0 "stats --json" -- stats --json
check_jq '.events == 6 and .streams == 2 and .commits == 6 and .events_per_commit == 1 and .size_bytes > 0 and .map_use > 0 and .encrypted == false' "stats JSON"
expect 0 "stats" -- stats
check_grep '^events: +6$' "$T/out" "stats events"
check_grep '^commits: +6$' "$T/out" "stats counts the store's commits"
check_grep '^events per commit: +1.0$' "$T/out" "stats events per commit"

# --- where the store is: --db beats VARVE_DB; the default is ./var/demo
expect 0 "--db beats VARVE_DB" -- --db "$T/other" stats --json
check_jq '.events == 0' "--db names the other store"
(cd "$T/other" && env -u VARVE_DB "$VARVECTL" stats >/dev/null 2>"$T/err")
check_eq "$?" 5 "default ./var/demo is missing here"
check_grep "var/demo" "$T/err" "default store directory"
expect 0 "global options after the command" -- stats --db "$T/other" --json
check_jq '.events == 0' "global options after the command"

# --- errors as JSON
expect 5 "error in JSON" -- --json read nope
check_eq "$(jq -r .error "$T/err")" not_found "JSON error code"
# Usage errors found while parsing follow --json too, wherever it stands.
json_usage() { # json_usage DESCRIPTION MESSAGE-REGEX -- ARGS...
  local desc=$1 re=$2
  shift 2
  expect 2 "$desc" "$@"
  check_eq "$(out)" "" "$desc: nothing on stdout"
  check_eq "$(jq -c 'keys' "$T/err" 2>&1)" '["error","message"]' "$desc: one JSON object on stderr"
  check_eq "$(jq -r .error "$T/err" 2>&1)" invalid_argument "$desc: error code"
  check_grep "\"message\":\"$re" "$T/err" "$desc: message"
}
json_usage "--json and an unknown command" "unknown command 'bogus'" -- --json bogus
json_usage "an unknown command, then --json" "unknown command 'bogus'" -- bogus --json
json_usage "--json and no command" "A subcommand is required" -- --json
json_usage "an unknown option" "The following argument was not expected: --frob" -- read acc-1 --frob --json
json_usage "a bad value" "--limit: expected a whole number" -- read acc-1 --json --limit many
json_usage "a missing argument" "STREAM is required" -- --json read
json_usage "a missing option value" "--from: 1 required" -- --json read acc-1 --from
json_usage "a bad --expected-version" "--expected-version: expected any" -- append acc-1 x --expected-version soon --json
expect 2 "usage error for people" -- bogus
check_eq "$(head -1 "$T/err")" "varvectl: unknown command 'bogus'" "usage error for people"
expect 5 "--json after -- is a stream name" -- read -- --json
check_grep "^varvectl: not_found: stream '--json' does not exist" "$T/err" "-- ends the options"

# --- numbers: decimal digits only, within 64 bits (exit 2 otherwise)
num_refused() { # num_refused DESCRIPTION MESSAGE -- ARGS...
  local desc=$1 msg=$2
  shift 2
  expect 2 "$desc" "$@"
  check_grep "^varvectl: $msg" "$T/err" "$desc: message"
  check_eq "$(out)" "" "$desc: nothing on stdout"
}
max=18446744073709551615
num_refused "--from past 64 bits" "--from: expected a whole number from 1 to $max, not '18446744073709551616'" -- read acc-1 --from 18446744073709551616
num_refused "--from in hex" "--from: expected a whole number from 1 to $max, not '0x2'" -- read acc-1 --from 0x2
num_refused "--from in octal form" "--from: expected a whole number" -- read-all --from 0o7
num_refused "--from with a plus" "--from: expected a whole number" -- read-all --from +1
num_refused "--from with an exponent" "--from: expected a whole number" -- export --from 1e2
num_refused "--from with spaces" "--from: expected a whole number" -- read-all --from ' 1'
num_refused "--from empty" "--from: expected a whole number" -- read-all --from ''
num_refused "--limit -1" "--limit: expected a whole number from 0 to $max, not '-1'$" -- read acc-1 --limit -1
[ "$(wc -c <"$T/err")" -lt 200 ] && pass || fail "--limit -1: a long message"
num_refused "--limit past 64 bits" "--limit: expected a whole number from 0 to $max" -- read-all --limit 99999999999999999999
num_refused "--limit 1.5" "--limit: expected a whole number" -- read-all --limit 1.5
num_refused "--to -1" "--to: expected a whole number from 0 to $max" -- reset p --to -1
num_refused "--to in hex" "--to: expected a whole number" -- reset p --to 0x10
num_refused "tail --from past 64 bits" "--from: expected a whole number" -- tail --from 18446744073709551616
num_refused "--expected-version past 64 bits" "invalid_argument: --expected-version: expected any, no-stream, exists or a whole number from 0 to $max, not '18446744073709551616'" -- append acc-1 x --expected-version 18446744073709551616
num_refused "--expected-version in hex" "invalid_argument: --expected-version: expected any" -- append acc-1 x --expected-version 0x3
num_refused "--from 0 still starts at 1" "--from: versions start at 1" -- read acc-1 --from 0
expect 0 "leading zeros are decimal, not octal" -- read-all --from 05 --limit 08 --json
check_eq "$(jq -c .position "$T/out" | tr '\n' ' ')" "5 6 " "--from 05 --limit 08"
expect 0 "the largest number" -- read acc-1 --backward --from $max --limit $max --json
check_eq "$(jq -c .version "$T/out" | tr '\n' ' ')" "3 2 1 " "--from and --limit at 2^64-1"
expect 3 "--expected-version with leading zeros" -- append acc-1 x --expected-version 02
check_grep "expected version 2, but the stream is at version 3" "$T/err" "--expected-version 02 is 2"

finish
