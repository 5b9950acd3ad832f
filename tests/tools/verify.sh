# verify: a sound store (exit 0), a record damaged with raw LMDB (exit 1, named),
# a sealed record whose tag no longer authenticates; reads of damaged records.
source "$(dirname "$0")/lib.sh"

expect 0 "init" -- init
for i in $(seq 1 70); do
  "$VARVECTL" append "s-$((i % 3))" e --data "{\"i\":$i}" >/dev/null || fail "append $i"
done
expect 0 "verify a sound store" -- verify
check_grep "checked 70 events in 3 streams" "$T/out" "verify counts"
check_grep "^ok: no faults$" "$T/out" "verify ok"
expect 0 "verify --json" -- verify --json
check_jq '.ok == true and .events == 70 and .streams == 3 and .faults_total == 0 and .faults == []' "verify JSON"

"$HELPER" corrupt "$T/db" 17 truncate || fail "corrupting position 17"
expect 1 "verify a damaged store" -- verify
check_grep "fault" "$T/out" "verify names faults"
check_grep "17" "$T/out" "verify names the position"
expect 1 "verify --json a damaged store" -- verify --json
check_jq '.ok == false and .faults_total >= 1 and (.faults | map(test("17")) | any)' "verify JSON faults"
expect 1 "read-all over a damaged record (corruption: exit 1)" -- read-all
check_grep "corruption" "$T/err" "corruption message"
expect 0 "reading before the damage" -- read-all --limit 16

# --- encrypted: a flipped tag byte fails authentication
new_key "$T/k"
expect 0 "init encrypted" -- --db "$T/enc" --key-file "$T/k" init
for i in 1 2 3; do
  "$VARVECTL" --db "$T/enc" --key-file "$T/k" append s e --data "{\"i\":$i}" >/dev/null
done
expect 0 "verify encrypted" -- --db "$T/enc" --key-file "$T/k" verify
"$HELPER" corrupt "$T/enc" 2 flip || fail "flipping a byte of position 2"
expect 1 "verify a tampered encrypted store" -- --db "$T/enc" --key-file "$T/k" verify --json
check_jq '.ok == false and (.faults | map(test("2")) | any)' "tampered record reported"
expect 4 "reading a tampered record (auth_failed: exit 4)" -- --db "$T/enc" --key-file "$T/k" read s --from 2
new_key "$T/k2"
expect 4 "verify with the wrong key" -- --db "$T/enc" --key-file "$T/k2" verify
expect 5 "verify without a store" -- --db "$T/none" verify

finish
