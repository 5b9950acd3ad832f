# Encrypted stores: init with a key, wrong key (exit 4), loose key file (exit 2),
# rotate-key, shred; key material never appears in any output.
source "$(dirname "$0")/lib.sh"

new_key "$T/k1"
new_key "$T/k2"
new_key "$T/k3"
cp "$T/k1" "$T/loose" && chmod 644 "$T/loose"
printf 'not a key' >"$T/junk" && chmod 600 "$T/junk"

# --- a key file that group or others may read is refused, and init leaves nothing behind
expect 2 "init with a loose key file" -- --key-file "$T/loose" init
check_grep "mode 0644" "$T/err" "loose key file message"
[ ! -e "$T/db" ] && pass || fail "a refused init left $T/db"
expect 2 "init with a key file that holds no key" -- --key-file "$T/junk" init
[ ! -e "$T/db" ] && pass || fail "an init refused for a bad key left $T/db"
# A missing file is "not found" (exit 5) everywhere; one that exists but is
# loose or malformed is bad input (exit 2).
expect 5 "init with a missing key file" -- --key-file "$T/nokey" init
check_grep "key file $T/nokey does not exist" "$T/err" "missing key file message"
[ ! -e "$T/db" ] && pass || fail "an init refused for a missing key file left $T/db"
expect 5 "init with a missing key file, JSON" -- --json --key-file "$T/nokey" init
check_eq "$(jq -r .error "$T/err")" not_found "missing key file JSON error"

expect 0 "init encrypted" -- --key-file "$T/k1" init --json
check_jq '.encrypted == true' "init reports encryption"
export VARVE_KEY_FILE="$T/k1"  # the environment's key file, like --key-file
expect 0 "append" -- append acc-1 opened --data '{"owner":"ada"}' --metadata '{"k":"v"}'
expect 0 "append" -- append acc-2 opened --data '{"owner":"bob"}'
expect 0 "read with the key" -- read acc-1 --json
check_jq '.data == {"owner":"ada"} and .metadata == {"k":"v"}' "decrypted payload"
unset VARVE_KEY_FILE

# --- no key, wrong key: exit 4
expect 4 "read without the key" -- read acc-1
check_grep "auth_failed" "$T/err" "no key message"
expect 4 "read with the wrong key" -- --key-file "$T/k2" read acc-1
check_grep "wrong master key" "$T/err" "wrong key message"
expect 4 "stats with the wrong key" -- --key-file "$T/k2" --json stats
check_eq "$(jq -r .error "$T/err")" auth_failed "JSON error for a wrong key"
expect 2 "read with a loose key file" -- --key-file "$T/loose" read acc-1
expect 5 "read with a missing key file" -- --key-file "$T/nokey" read acc-1
VARVE_KEY_FILE="$T/nokey" expect 5 "read with a missing key file from the environment" -- read acc-1

# --- stats says encrypted
expect 0 "stats" -- --key-file "$T/k1" stats --json
check_jq '.encrypted == true and .events == 2' "stats of an encrypted store"

# --- rotate-key
expect 2 "rotate to a loose key file" -- --key-file "$T/k1" rotate-key --new-key-file "$T/loose"
expect 5 "rotate to a missing key file" -- --key-file "$T/k1" rotate-key --new-key-file "$T/nokey"
check_grep "--new-key-file: key file $T/nokey does not exist" "$T/err" "missing new key file message"
expect 2 "rotate without --new-key-file" -- --key-file "$T/k1" rotate-key
expect 4 "rotate with the wrong key" -- --key-file "$T/k3" rotate-key --new-key-file "$T/k2"
expect 0 "rotate-key" -- --key-file "$T/k1" rotate-key --new-key-file "$T/k2"
check_grep "rotated the master key" "$T/out" "rotate message"
expect 4 "the old key no longer opens" -- --key-file "$T/k1" read acc-1
expect 0 "the new key opens" -- --key-file "$T/k2" read acc-1 --json
check_jq '.data == {"owner":"ada"}' "data survives rotation"
expect 0 "rotate-key --json" -- --key-file "$T/k2" --json rotate-key --new-key-file "$T/k3"
check_jq '.rotated == true' "rotate JSON"

# --- shred
expect 5 "shred a missing stream" -- --key-file "$T/k3" shred nope
expect 0 "shred" -- --key-file "$T/k3" shred acc-1 --json
check_jq '.stream == "acc-1" and .shredded == true and .events == 1 and .already_shredded == false and .encrypted == true' "shred JSON"
expect 0 "read a shredded stream" -- --key-file "$T/k3" read acc-1 --json
check_jq '.shredded == true and (has("data") | not) and (has("data_base64") | not) and .metadata == null and .type == "opened"' "shredded event shape"
expect 0 "read a shredded stream for people" -- --key-file "$T/k3" read acc-1
check_grep '\[shredded\]$' "$T/out" "shredded marker"
expect 1 "append to a shredded stream" -- --key-file "$T/k3" append acc-1 more
check_grep "shredded" "$T/err" "append to shredded message"
expect 0 "shred again" -- --key-file "$T/k3" shred acc-1 --json
check_jq '.already_shredded == true' "shredding twice"
expect 0 "other streams stay" -- --key-file "$T/k3" read acc-2 --json
check_jq '.data == {"owner":"bob"}' "unshredded stream readable"
expect 0 "append to shred for people" -- --key-file "$T/k3" append acc-3 opened --data '{"owner":"cy"}'
expect 0 "shred for people" -- --key-file "$T/k3" shred acc-3
check_eq "$(out)" "stream 'acc-3' shredded: its data key is destroyed, so its events' data and metadata can no longer be decrypted by anyone; their envelopes (type, id, time, version, position) remain.
note: the old wrapped key stays in free pages of data.mdb until LMDB reuses them or 'varvectl compact' rewrites the file." "shred message (encrypted)"
expect 0 "shred again for people" -- --key-file "$T/k3" shred acc-3
check_eq "$(out)" "stream 'acc-3' was already shredded" "shred message (already shredded)"
expect 0 "streams shows the state" -- --key-file "$T/k3" streams --json
check_eq "$(jq -r 'select(.stream=="acc-1").state' "$T/out")" shredded "shredded state in streams"

# --- a plain store: shredding erases the data; rotate-key is refused
expect 0 "plain init" -- --db "$T/plain" init
expect 0 "plain append" -- --db "$T/plain" append s e --data '{"x":1}'
expect 2 "rotate a plain store" -- --db "$T/plain" --key-file "$T/k1" rotate-key --new-key-file "$T/k2"
check_grep "not encrypted" "$T/err" "plain rotate message"
expect 0 "plain shred" -- --db "$T/plain" shred s
check_eq "$(out)" "stream 's' shredded: its events' data and metadata are erased from the log and its snapshot deleted; their envelopes remain.
note: the erased bytes stay in free pages of data.mdb until LMDB reuses them or 'varvectl compact' rewrites the file." "shred message (plain)"
expect 0 "plain append" -- --db "$T/plain" append s2 e --data '{"x":2}'
expect 0 "plain shred --json" -- --db "$T/plain" --json shred s2
check_jq '.stream == "s2" and .shredded == true and .already_shredded == false and .encrypted == false' "plain shred JSON"
expect 0 "plain read after shred" -- --db "$T/plain" read s --json
check_jq '.shredded == true and (has("data") | not)' "plain shredded shape"

# --- no key material anywhere in what varvectl printed
for k in k1 k2 k3; do
  hex=$(tr -d '\n' <"$T/$k")
  if grep -qi "$hex" "$ALL_OUTPUT" || grep -qi "${hex:0:16}" "$ALL_OUTPUT"; then
    fail "key $k appears in the output"
  else
    pass
  fi
done
# --- init races: init never removes anything. Two inits at once on a fresh
# directory, under different keys: exactly one succeeds, the other is told
# that a store exists (exit 2), and the store opens with the winner's key.
won=0
for r in $(seq 1 50); do
  d="$T/race-$r"
  "$VARVECTL" --db "$d" --key-file "$T/k1" init >"$T/race-a.out" 2>"$T/race-a.err" &
  a=$!
  "$VARVECTL" --db "$d" --key-file "$T/k2" init >"$T/race-b.out" 2>"$T/race-b.err" &
  b=$!
  wait "$a"
  rc_a=$?
  wait "$b"
  rc_b=$?
  case "$rc_a $rc_b" in
    "0 2") winner=k1 loser=b ;;
    "2 0") winner=k2 loser=a ;;
    *)
      fail "init race $r: exits $rc_a and $rc_b, expected one 0 and one 2 ($(cat "$T/race-a.err" "$T/race-b.err"))"
      continue
      ;;
  esac
  if ! grep -q "a store already exists in $d" "$T/race-$loser.err"; then
    fail "init race $r: the loser said: $(cat "$T/race-$loser.err")"
  elif ! "$VARVECTL" --db "$d" --key-file "$T/$winner" verify >/dev/null 2>&1; then
    fail "init race $r: the store does not open and verify with the winner's key ($winner)"
  else
    won=$((won + 1))
  fi
done
check_eq "$won" 50 "rounds of two concurrent inits with one winner and a sound store"

# An application creating the store (create_if_missing) while an init with a
# key runs: whoever wins, the directory stays, and the application's
# acknowledged appends with it.
kept=0
for r in $(seq 1 30); do
  d="$T/app-$r"
  "$VARVECTL" --db "$d" --key-file "$T/k2" init >"$T/init.out" 2>"$T/init.err" &
  init=$!
  "$HELPER" create-loop "$d" acks 20 >"$T/app.out" 2>"$T/app.err" &
  app=$!
  wait "$init"
  rc_init=$?
  wait "$app"
  rc_app=$?
  if [ ! -f "$d/data.mdb" ]; then
    fail "app race $r: $d/data.mdb is gone (init exit $rc_init, application exit $rc_app)"
  elif [ "$rc_app" = 0 ] && [ "$rc_init" = 2 ] && ! grep -q "a store already exists in $d" "$T/init.err"; then
    fail "app race $r: init said: $(cat "$T/init.err")"
  elif [ "$rc_app" = 0 ] && [ "$rc_init" = 2 ]; then
    events=$("$VARVECTL" --db "$d" stats --json 2>&1 | jq .events)
    [ "$events" = 20 ] && kept=$((kept + 1)) ||
      fail "app race $r: the application's 20 acknowledged events are not all there ($events)"
  elif [ "$rc_app" != 0 ] && [ "$rc_init" = 0 ]; then
    events=$("$VARVECTL" --db "$d" --key-file "$T/k2" stats --json 2>&1 | jq .events)
    [ "$events" = 0 ] && kept=$((kept + 1)) || fail "app race $r: init's store holds $events events"
  else
    fail "app race $r: init exit $rc_init, application exit $rc_app ($(cat "$T/init.err" "$T/app.err"))"
  fi
done
check_eq "$kept" 30 "rounds of an application and an init creating a store at once"

# --- compact: what shred left in data.mdb is gone; refused while the store is open
P="$T/compacted"
expect 0 "init a plain store" -- --db "$P" init
for i in 1 2 3; do
  expect 0 "append to the stream to forget" -- --db "$P" append gone-1 noted --data '"FORGET-ME-77a"'
done
expect 0 "append to a kept stream" -- --db "$P" append kept-1 noted --data '"kept"'
expect 0 "shred it" -- --db "$P" shred gone-1
check_grep "compact" "$T/out" "shred points at compact"
"$VARVECTL" --db "$P" tail --from 1 >"$T/tail.out" 2>"$T/tail.err" &
tailpid=$!
BG_PIDS+=("$tailpid")
tail_started() { grep -q "kept-1" "$T/tail.out"; }
wait_for tail_started || fail "tail did not start"
expect 1 "compact while another process has the store open" -- --db "$P" compact
check_grep "busy: .*open in another process" "$T/err" "compact says why it is refused"
kill -TERM "$tailpid"
wait "$tailpid"
expect 0 "compact" -- --db "$P" --json compact
check_jq '.compacted == true and .bytes_after > 0 and .entries > 0' "compact reports what it did"
if grep -aq "FORGET-ME-77a" "$P/data.mdb"; then fail "shredded data still in data.mdb"; else pass; fi
expect 0 "read after compaction" -- --db "$P" --json read kept-1
check_jq '.data == "kept"' "the kept stream reads back"
expect 0 "verify after compaction" -- --db "$P" verify
expect 0 "compact an encrypted store, without its key" -- compact
check_grep "compacted" "$T/out" "compact for people"
expect 0 "verify the encrypted store after compaction" -- --key-file "$T/k3" verify
expect 5 "compact where there is no store" -- --db "$T/none" compact

if grep -q "not a key" "$ALL_OUTPUT"; then fail "a key file's content appears in the output"; else pass; fi

finish
