#!/usr/bin/env bash
# ingest_cli.sh — the command line end to end on generated data and small fixtures: generate →
# ingest → stats --json with exact counts; --strict names the first bad row and writes nothing;
# without it the good rows are kept and every bad row is in the rejects file; --help everywhere.
set -euo pipefail
BIN=${SEQREC_BIN:?}
T=$(mktemp -d)
trap 'rm -rf "$T"' EXIT
fail() { echo "FAIL: $*" >&2; exit 1; }
json_get() { python3 -c "import json,sys; d=json.load(sys.stdin); print(eval('d'+sys.argv[1]))" "$1"; }

for c in generate ingest stats bench; do
  $BIN $c --help | grep -q "usage: seqrec $c" || fail "$c --help"
done
$BIN --help | grep -q ingest || fail "seqrec --help"
if $BIN nosuch 2>/dev/null; then fail "unknown command accepted"; fi
if $BIN ingest --bogus x -o y 2>/dev/null; then fail "unknown option accepted"; fi

# generate → ingest → stats: exact event count survives the trip
$BIN generate -q --users 300 --items 200 --events 6000 --seed 3 -o "$T/g.csv"
$BIN ingest -q "$T/g.csv" -o "$T/g.sqd"
S=$($BIN stats --json "$T/g.sqd")
[ "$(echo "$S" | json_get "['events']")" = 6000 ] || fail "generated events != 6000: $S"
[ "$(echo "$S" | json_get "['users']")" -le 300 ] || fail "users > 300"
[ "$(echo "$S" | json_get "['items']")" -le 200 ] || fail "items > 200"
B=$(echo "$S" | json_get "['behaviours']['view']")
[ "$B" -gt 0 ] || fail "no views"
# same seed → identical file; gzip gives the same dataset counts
G=$($BIN generate --json --users 300 --items 200 --events 6000 --seed 3 -o "$T/g2.csv" 2>"$T/g2.err")
[ "$(echo "$G" | json_get "['events']")" = 6000 ] || fail "generate --json: $G"
[ "$(echo "$G" | json_get "['output']")" = "$T/g2.csv" ] || fail "generate --json output: $G"
[ -s "$T/g2.err" ] && fail "generate --json wrote to stderr: $(cat "$T/g2.err")"
cmp -s "$T/g.csv" "$T/g2.csv" || fail "generator not deterministic"
gzip -c "$T/g.csv" > "$T/g.csv.gz"
$BIN ingest -q "$T/g.csv.gz" -o "$T/gz.sqd"
[ "$($BIN stats --json "$T/gz.sqd" | json_get "['events']")" = 6000 ] || fail "gzip count"

# malformed rows in the middle of good ones
cat > "$T/bad.csv" <<'CSV'
user_id,item_id,timestamp,behaviour
u1,i1,2024-01-01 10:00:00,view
u1,i2,2024-01-01 10:01:00,view
u2,i1,not-a-time,view
u2,i2,1704103260
u3,,1704103260,view
,i3,1704103260,view
u3,i3,1704103300,buy
u3,i1,1704103400,view
CSV
if $BIN ingest -q --strict "$T/bad.csv" -o "$T/strict.sqd" 2> "$T/err.txt"; then
  fail "--strict accepted a bad file"
fi
grep -q "bad.csv:4: " "$T/err.txt" || fail "--strict does not name line 4: $(cat "$T/err.txt")"
[ ! -e "$T/strict.sqd" ] || fail "--strict left an output file"
if ls "$T" | grep -q tmp; then fail "temporary file left behind"; fi
$BIN ingest -q "$T/bad.csv" --rejects "$T/rej.tsv" -o "$T/ok.sqd"
[ "$($BIN stats --json "$T/ok.sqd" | json_get "['events']")" = 4 ] || fail "good rows != 4"
[ "$(tail -n +2 "$T/rej.tsv" | wc -l)" = 4 ] || fail "rejects file: $(cat "$T/rej.tsv")"
for line in 4 5 6 7; do
  cut -f2 "$T/rej.tsv" | grep -qx $line || fail "line $line not in rejects"
done
# a failed run leaves an existing output untouched
cp "$T/ok.sqd" "$T/keep.sqd"
if $BIN ingest -q --strict "$T/bad.csv" -o "$T/keep.sqd" 2>/dev/null; then fail "strict"; fi
cmp -s "$T/ok.sqd" "$T/keep.sqd" || fail "failed run changed the existing output"
# a corrupt dataset is refused with a message naming it
head -c 200 "$T/ok.sqd" > "$T/trunc.sqd"
if $BIN stats "$T/trunc.sqd" 2> "$T/err2.txt"; then fail "truncated dataset accepted"; fi
grep -q "trunc.sqd" "$T/err2.txt" || fail "error does not name the file"
echo "ingest_cli: all checks passed"
