# verify: a sound store (exit 0), a record damaged with raw LMDB (exit 1, named),
# a sealed record whose tag no longer authenticates; reads of damaged records.
# A damaged data.mdb (truncated, even while a read runs; a page overwritten;
# empty) gives an error (exit 1, "corruption"), never a signal.
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

# --- a damaged data.mdb: exit 1 and a message, never death by a signal
# 1500 events of ~330 bytes from a generated export (the same store every run),
# and a compacted copy (every page in use).
LC_ALL=C awk 'BEGIN {
  pad = sprintf("%300s", ""); gsub(/ /, "x", pad)
  for (i = 1; i <= 1500; i++) {
    s = i % 3; v[s]++
    printf "{\"position\":%d,\"stream\":\"s-%d\",\"version\":%d,\"type\":\"e\",\"id\":\"00000000-0000-7000-8000-%012d\",\"time\":\"2024-01-01T00:00:00.000000Z\",\"shredded\":false,\"metadata\":null,\"data\":{\"i\":%d,\"pad\":\"%s\"}}\n", i, s, v[s], i, i, pad
  }
}' >"$T/big.jsonl"
expect 0 "init big" -- --db "$T/big" init
expect 0 "import big" -- --db "$T/big" import "$T/big.jsonl"
expect 0 "compact copy" -- --db "$T/big" backup "$T/compact"
size=$(stat -c %s "$T/big/data.mdb")
page=4096
damaged() { # damaged DIR: a fresh copy of DIR in $T/dmg
  rm -rf "$T/dmg" && cp -r "$1" "$T/dmg"
}
# no_signal DESCRIPTION: the last varvectl exited by itself (not 128 + a signal).
no_signal() {
  if [ "$RC" -lt 128 ]; then pass; else fail "$1: killed by signal $((RC - 128))"; fi
}
for cmd in stats read-all verify streams export; do
  damaged "$T/big"
  truncate -s $((size / 2)) "$T/dmg/data.mdb"
  expect 1 "$cmd on a data.mdb cut to half" -- --db "$T/dmg" $cmd
  no_signal "$cmd on a data.mdb cut to half"
  check_grep "corruption" "$T/err" "$cmd on a data.mdb cut to half: message"
done
damaged "$T/big"
truncate -s $((size / 2)) "$T/dmg/data.mdb"
expect 1 "stats --json on a data.mdb cut to half" -- --db "$T/dmg" --json stats
check_eq "$(jq -r .error "$T/err" | tail -1)" corruption "JSON error for a cut data.mdb"

# Cut while a read runs: the store opened whole, the next chunk of the log is
# gone (read-all reads 512 events per transaction, and blocks on the full pipe
# in between): the fault handler reports it.
cut_while_reading() { # cut_while_reading ARGS...: varvectl ARGS over $T/dmg, cut after its first line
  damaged "$T/big"
  rm -f "$T/fifo" && mkfifo "$T/fifo"
  "$VARVECTL" --db "$T/dmg" "$@" >"$T/fifo" 2>"$T/err" &
  local pid=$! first
  exec 3<"$T/fifo"
  IFS= read -r first <&3
  truncate -s $((2 * page)) "$T/dmg/data.mdb"
  cat <&3 >/dev/null
  exec 3<&-
  wait "$pid"
  RC=$?
  : >"$T/out"
}
cut_while_reading read-all
check_eq "$RC" 1 "read-all while data.mdb is cut: exit 1"
check_grep "^varvectl: corruption: reading the store touched memory outside data.mdb \(SIGBUS\); the file is damaged or truncated: run 'varvectl verify', restore from a backup$" "$T/err" "fault message"
cut_while_reading --json export
check_eq "$RC" 1 "export --json while data.mdb is cut: exit 1"
check_eq "$(jq -r .error "$T/err")" corruption "fault in JSON: the error code"
check_grep '"message":"reading the store touched memory outside data.mdb \(SIGBUS\)' "$T/err" "fault in JSON: the message"

# A page in the middle of a compacted copy overwritten (header and first
# entries), with fixed bytes: each command ends with an error or an answer,
# verify names the damage.
middle=$(($(stat -c %s "$T/compact/data.mdb") / page / 2))
for bytes in '\xde\xad\xbe\xef\x13\x37\xc0\xde\xfe\xed\xfa\xce\x55\xaa\x01\x80\x7f\xff\x00\x42' \
  '\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x01\x00\xf0\x0f\x10\x00\xff\xff\xff\xff' \
  '\xff\xff\xff\xff\xff\xff\xff\xff\xff\xff\x02\x00\x40\x00\x20\x00\x10\x00\x08\x00' \
  '\x11\x22\x33\x44\x55\x66\x77\x88\x99\xaa\x02\x00\x18\x00\x18\x00\x00\xf0\x00\xf0'; do
  damaged "$T/compact"
  printf "$bytes" | dd of="$T/dmg/data.mdb" bs=1 seek=$((middle * page)) conv=notrunc status=none
  for cmd in stats read-all streams export verify; do
    vctl --db "$T/dmg" $cmd
    no_signal "$cmd on page $middle overwritten with $bytes"
    if [ "$RC" -ne 0 ] && [ ! -s "$T/err" ] && [ "$cmd" != verify ]; then
      fail "$cmd on page $middle overwritten: exit $RC without a message"
    fi
  done
  if [ "$RC" = 1 ]; then pass; else fail "verify of page $middle overwritten with $bytes: exit $RC, expected 1"; fi
done

# An empty data.mdb is damage, not a new store: refused, and left as it is.
for cmd in stats read-all verify; do
  damaged "$T/big"
  : >"$T/dmg/data.mdb"
  expect 1 "$cmd on an empty data.mdb" -- --db "$T/dmg" $cmd
  check_grep "corruption|empty" "$T/err" "$cmd on an empty data.mdb: message"
  check_eq "$(stat -c %s "$T/dmg/data.mdb")" 0 "$cmd leaves an empty data.mdb empty"
done

finish
