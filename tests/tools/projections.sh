# projections: listing cursors with their state and lag, pending requests;
# pause / resume / reset / rebuild recorded in varve.projection_control;
# rebuild --wait against a (simulated) running projection manager.
source "$(dirname "$0")/lib.sh"

expect 5 "projections without a store" -- projections
expect 0 "init" -- init
for i in 1 2 3 4 5; do "$VARVECTL" append s e --data "{\"i\":$i}" >/dev/null; done
expect 0 "no projections" -- projections --json
check_eq "$(out)" "" "no cursors, no lines"

now_us=$(($(date +%s) * 1000000))
"$HELPER" cursor "$T/db" balances 5 '{"mode":"exactly_once","state":"live","error":"","updated_us":'$now_us'}' || fail "cursor balances"
"$HELPER" cursor "$T/db" emails 2 '{"mode":"at_least_once","state":"failed","error":"smtp: timeout","updated_us":'$now_us'}' || fail "cursor emails"
"$HELPER" cursor "$T/db" plain-consumer 3 '' || fail "cursor plain-consumer"
"$HELPER" cursor "$T/db" mailer 1 '{"mode":"at_least_once","state":"retrying","error":"smtp: refused","updated_us":'$now_us',"attempt":2,"attempts":4}' || fail "cursor mailer"

expect 0 "projections --json" -- projections --json
check_eq "$(jq -c 'select(.name=="balances") | [.mode,.position,.head,.lag,.state,.error,.pending]' "$T/out")" \
  '["exactly_once",5,5,0,"live",null,null]' "a live projection"
check_eq "$(jq -c 'select(.name=="emails") | [.mode,.position,.lag,.state,.error]' "$T/out")" \
  '["at_least_once",2,3,"failed","smtp: timeout"]' "a failed projection"
check_eq "$(jq -c 'select(.name=="plain-consumer") | [.mode,.position,.lag,.state]' "$T/out")" \
  '[null,3,2,null]' "a consumer that is not a projection"
check_jq 'has("name") and has("mode") and has("position") and has("head") and has("lag") and has("state") and has("error") and .updated != ""' "projection fields"
expect 0 "projections for people" -- projections
check_grep '^NAME +MODE +POSITION +LAG +STATE +PENDING +ERROR$' "$T/out" "table header"
check_grep '^emails +at_least_once +2 +3 +failed +- +smtp: timeout$' "$T/out" "table row"
check_grep '^mailer +at_least_once +1 +4 +retrying \(attempt 2 of 4\) +- +smtp: refused$' "$T/out" "a retrying projection names its attempt"

# --- control requests
expect 0 "pause" -- pause balances
check_grep "recorded a pause request for projection 'balances'" "$T/out" "pause message"
check_eq "$("$HELPER" view "$T/db" varve.projection_control balances | jq -c '[.command, has("position"), (.requested_us|type)]')" \
  '["pause",false,"number"]' "pause request stored"
expect 0 "resume --json" -- --json resume emails
check_jq '.name == "emails" and .command == "resume" and .recorded == true and .known == true' "resume JSON"
expect 0 "reset --to 2" -- reset emails --to 2 --json
check_eq "$("$HELPER" view "$T/db" varve.projection_control emails | jq -c '[.command, .position]')" \
  '["reset",2]' "reset request replaces the pending one"
expect 0 "reset default" -- reset plain-consumer
check_eq "$("$HELPER" view "$T/db" varve.projection_control plain-consumer | jq -c '.position')" 0 "reset to 0 by default"
expect 0 "rebuild an unknown projection" -- rebuild future
check_grep "has a cursor in this store yet" "$T/out" "unknown projection note"
expect 2 "reset --to -1" -- reset emails --to -1
expect 2 "pause without a name" -- pause
expect 0 "projections shows pending requests" -- projections --json
check_eq "$(jq -c 'select(.name=="balances") | .pending.command' "$T/out")" '"pause"' "pending pause"
check_eq "$(jq -c 'select(.name=="future") | [.position, .pending.command]' "$T/out")" '[null,"rebuild"]' "pending request without a cursor"
check_jq '.pending == null or (.pending.requested | test("Z$"))' "pending request time"
expect 0 "projections for people" -- projections
check_grep '^balances +exactly_once +5 +0 +live +pause +-$' "$T/out" "pending in the table"

# --- rebuild --wait: the "manager" takes the request, catches up, goes live
"$VARVECTL" rebuild balances --wait --json >"$T/wait.out" 2>"$T/wait.err" &
w=$!
BG_PIDS+=("$w")
rebuild_pending() { "$HELPER" view "$T/db" varve.projection_control balances | grep -q rebuild; }
wait_for rebuild_pending || fail "rebuild request not recorded"
sleep 0.3
kill -0 "$w" 2>/dev/null && pass || fail "rebuild --wait returned before the manager acted"
later=$(($(date +%s) * 1000000 + 1000000))
"$HELPER" take "$T/db" balances 2 '{"mode":"exactly_once","state":"catching_up","error":"","updated_us":'$later'}'
sleep 0.3
kill -0 "$w" 2>/dev/null && pass || fail "rebuild --wait returned while catching up"
"$HELPER" cursor "$T/db" balances 5 '{"mode":"exactly_once","state":"live","error":"","updated_us":'$later'}'
wait "$w"
check_eq "$?" 0 "rebuild --wait ends when live at the head"
check_eq "$(jq -c '[.name,.position,.lag,.state]' "$T/wait.out")" '["balances",5,0,"live"]' "rebuild --wait result"

# --- rebuild --wait interrupted: exit 1, the request stands
"$VARVECTL" rebuild emails --wait >"$T/wait2.out" 2>"$T/wait2.err" &
w2=$!
BG_PIDS+=("$w2")
emails_rebuild() { "$HELPER" view "$T/db" varve.projection_control emails | grep -q rebuild; }
wait_for emails_rebuild || fail "second rebuild not recorded"
kill -INT "$w2"
wait "$w2"
check_eq "$?" 1 "interrupted rebuild --wait exits 1"
check_grep "the rebuild request stands" "$T/wait2.err" "interrupted message"

finish
