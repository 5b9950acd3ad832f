# Tags: append --tag, tags in read output (text and JSON), read-query
# (types, tags, categories, several items), and export / import carrying them.
source "$(dirname "$0")/lib.sh"

expect 0 "init" -- init

# --- append --tag (repeatable); tags shown as stored, in order
expect 0 "append with two tags" -- append course-c7 enrolled --data '{"seat":1}' \
  --tag course:c7 --tag student:s42
expect 0 "append with one tag" -- append course-c7 enrolled --tag course:c7 --tag student:s7
expect 0 "append without tags" -- append course-c8 created --data '{}'
expect 0 "append with --json" -- --json append student-s42 renamed --tag student:s42
check_jq '.position == 4' "append --tag JSON"
printf '%s\n' '{"type":"enrolled","tags":["course:c8","student:s42"]}' \
  '{"type":"dropped","tags":["course:c7","student:s42"],"data":{"why":"moved"}}' >"$T/lines.jsonl"
expect 0 "append --events with tags" -- append course-c9 --events "$T/lines.jsonl"

expect 0 "read shows tags" -- read course-c7
check_grep '^@1 course-c7 v1 enrolled .* id=[0-9a-f-]{36} tags=\["course:c7","student:s42"\] data=\{"seat":1\}$' \
  "$T/out" "human line with tags"
expect 0 "read-all" -- read-all
check_grep '^@3 course-c8 v1 created .* id=[0-9a-f-]{36} data=\{\}$' "$T/out" "no tags, no tags field"
expect 0 "read --json shows tags" -- read-all --json
check_eq "$(jq -c '.tags' "$T/out" | tr '\n' ' ')" \
  '["course:c7","student:s42"] ["course:c7","student:s7"] null ["student:s42"] ["course:c8","student:s42"] ["course:c7","student:s42"] ' \
  "JSON tags in stored order, none without"
check_jq 'keys_unsorted[:8] == ["position","stream","version","type","id","time","shredded",(if .tags then "tags" else "metadata" end)]' \
  "tags after shredded"

# --- bad tags: exit 2, nothing stored
expect 2 "an empty tag" -- append course-c7 x --tag ''
check_grep "tag 1 is empty" "$T/err" "empty tag named"
expect 2 "a tag over 255 bytes" -- append course-c7 x --tag "$(head -c 256 /dev/zero | tr '\0' t)"
check_grep "256 bytes, over the limit of 255" "$T/err" "long tag named"
expect 2 "a tag twice" -- append course-c7 x --tag a:1 --tag a:1
check_grep "tag 'a:1' is given twice" "$T/err" "duplicate tag named"
args=()
for i in $(seq 1 33); do args+=(--tag "t:$i"); done
expect 2 "33 tags" -- append course-c7 x "${args[@]}"
check_grep "33 tags, over the limit of 32" "$T/err" "too many tags"
expect 2 "--tag with --events" -- append course-c7 --events "$T/lines.jsonl" --tag a:1
printf '%s\n' '{"type":"x","tags":"course:c7"}' >"$T/bad.jsonl"
expect 2 "tags that are not an array" -- append course-c7 --events "$T/bad.jsonl"
check_grep "line 1: 'tags' is not an array of strings" "$T/err" "tags not an array"
expect 0 "nothing stored by refusals" -- --json stats
check_jq '.events == 6' "events after refusals"

# --- read-query: one item of --type, --tag, --category
positions() { jq -c '.position' "$T/out" | tr '\n' ' '; }
expect 0 "read-query --tag" -- read-query --tag student:s42 --json
check_eq "$(positions)" "1 4 5 6 " "events of a tag"
expect 0 "read-query two tags (all of them)" -- read-query --tag course:c7 --tag student:s42 --json
check_eq "$(positions)" "1 6 " "events with both tags"
expect 0 "read-query --type" -- read-query --type enrolled --json
check_eq "$(positions)" "1 2 5 " "events of a type"
expect 0 "read-query two types (any)" -- read-query --type renamed --type dropped --json
check_eq "$(positions)" "4 6 " "events of either type"
expect 0 "read-query --category" -- read-query --category course --json
check_eq "$(positions)" "1 2 3 5 6 " "events of a category"
expect 0 "read-query type and category and tag" -- read-query --category course --type enrolled \
  --tag student:s42 --json
check_eq "$(positions)" "1 5 " "all three terms"
expect 0 "read-query --from" -- read-query --tag student:s42 --from 5 --json
check_eq "$(positions)" "5 6 " "from a position"
expect 0 "read-query --backward --limit" -- read-query --tag student:s42 --backward --limit 3 --json
check_eq "$(positions)" "6 5 4 " "newest first, limited"
expect 0 "read-query --backward --from" -- read-query --tag student:s42 --backward --from 4 --json
check_eq "$(positions)" "4 1 " "backward from a position"
expect 0 "read-query, text" -- read-query --type renamed
check_grep '^@4 student-s42 v1 renamed .* tags=\["student:s42"\]$' "$T/out" "text line"
expect 0 "read-query matching nothing" -- read-query --tag nobody
check_eq "$(out)" "" "no output"

# --- several items: --query
expect 0 "read-query --query (an OR of items)" -- read-query --json \
  --query '[{"types":["renamed"]},{"categories":["course"],"tags":["student:s7"]}]'
check_eq "$(positions)" "2 4 " "either item"
expect 2 "--query with --type" -- read-query --query '[{"types":["x"]}]' --type y
expect 2 "--query not an array" -- read-query --query '{"types":["x"]}'
expect 2 "--query with an unknown field" -- read-query --query '[{"type":["x"]}]'
check_grep "unknown field 'type'" "$T/err" "unknown item field named"
expect 2 "--query not JSON" -- read-query --query '[{'
expect 2 "read-query without terms" -- read-query
check_grep "needs --type, --tag, --category or --query" "$T/err" "no terms message"
expect 2 "read-query with an empty tag" -- read-query --tag ''

# --- a read of many events through the index, in several transactions
for i in $(seq 1 700); do
  if [ $((i % 100)) -eq 0 ]; then echo '{"type":"rare","tags":["batch:x"]}'; else echo '{"type":"common"}'; fi
done >"$T/many.jsonl"
expect 0 "append 700 events" -- append bulk-1 --events "$T/many.jsonl"
expect 0 "read-query over 700 events" -- read-query --type common --json
check_eq "$(out | wc -l)" 693 "every common event"
check_eq "$(jq -s '[.[].position] == ([.[].position] | sort) and ([.[].position] | unique | length) == 693' "$T/out")" \
  true "in order, none twice"
expect 0 "read-query rare" -- read-query --type rare --tag batch:x --json
check_eq "$(positions)" "106 206 306 406 506 606 706 " "the rare events"

# --- export / import keep tags; an export without tags still imports
"$VARVECTL" export >"$T/e1.jsonl"
check_eq "$?" 0 "export"
check_eq "$(grep -c '"tags":' "$T/e1.jsonl")" 12 "tags exported"
expect 0 "init target" -- --db "$T/db2" init
expect 0 "import with tags" -- --db "$T/db2" import "$T/e1.jsonl"
"$VARVECTL" --db "$T/db2" export >"$T/e2.jsonl"
if cmp -s "$T/e1.jsonl" "$T/e2.jsonl"; then pass; else fail "export of the import differs: $(diff "$T/e1.jsonl" "$T/e2.jsonl" | head -4)"; fi
expect 0 "read-query on the import" -- --db "$T/db2" read-query --tag student:s42 --json
check_eq "$(positions)" "1 4 5 6 " "the import's tag index"
new_key "$T/k"
expect 0 "init encrypted target" -- --db "$T/db3" --key-file "$T/k" init
expect 0 "import into an encrypted store" -- --db "$T/db3" --key-file "$T/k" import "$T/e1.jsonl"
expect 0 "read-query, encrypted" -- --db "$T/db3" --key-file "$T/k" read-query --category course --json
check_eq "$(jq -c '[.position, .tags, .data]' "$T/out" | head -1)" '[1,["course:c7","student:s42"],{"seat":1}]' \
  "tags and data from an encrypted store"
expect 0 "rebuild the indexes" -- --db "$T/db3" --key-file "$T/k" --json rebuild-indexes
check_jq '.rebuilt == true' "rebuild-indexes answers"
expect 0 "read-query after the rebuild" -- --db "$T/db3" --key-file "$T/k" read-query --tag student:s42 --json
check_eq "$(positions)" "1 4 5 6 " "the rebuilt tag index"
expect 0 "verify after the rebuild" -- --db "$T/db3" --key-file "$T/k" verify
cat >"$T/old.jsonl" <<'JSONL'
{"position":1,"stream":"t","version":1,"type":"x","id":"00000000-0000-7000-8000-000000000001","time":"2024-01-01T00:00:00.000000Z","shredded":false,"metadata":null,"data":1}
{"position":2,"stream":"t","version":2,"type":"x","id":"00000000-0000-7000-8000-000000000002","time":"2024-01-01T00:00:00.000001Z","shredded":false,"metadata":null,"data":2}
JSONL
expect 0 "init old target" -- --db "$T/db4" init
expect 0 "import an export without tags" -- --db "$T/db4" import "$T/old.jsonl"
expect 0 "export it again" -- --db "$T/db4" export
if cmp -s "$T/out" "$T/old.jsonl"; then pass; else fail "an export without tags changed"; fi
printf '%s\n' '{"position":1,"stream":"t","version":1,"type":"x","id":"00000000-0000-7000-8000-000000000001","time":"2024-01-01T00:00:00.000000Z","tags":["a",""],"data":1}' >"$T/badtag.jsonl"
expect 0 "init bad target" -- --db "$T/db5" init
expect 2 "import an empty tag" -- --db "$T/db5" import "$T/badtag.jsonl"
check_grep "line 1: 'tags': tag 2 is empty" "$T/err" "bad tag in an import named"
expect 0 "the bad import stored nothing" -- --db "$T/db5" --json stats
check_jq '.events == 0' "empty after a refused import"

finish
