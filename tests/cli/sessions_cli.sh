#!/usr/bin/env bash
# sessions_cli.sh — SR-GNN's session protocol end to end on a generated log cut into sessions
# at ingest: train and eval --help name it; srgnn trains under it and eval reuses the trained
# days, keeps the session's own items as candidates, counts one prediction per event after
# the first of each test session and says so; --test-days without the protocol is refused.
set -euo pipefail
BIN=${SEQREC_BIN:?}
T=$(mktemp -d)
trap 'rm -rf "$T"' EXIT
fail() { echo "FAIL: $*" >&2; exit 1; }
export OMP_NUM_THREADS=1

for c in train eval; do
  $BIN $c --help | grep -q "sessions" || fail "$c --help: no sessions protocol"
  $BIN $c --help | grep -q -- "--test-days" || fail "$c --help: no --test-days"
done

$BIN generate -q --users 300 --items 80 --events 6000 --seed 4 -o "$T/g.csv"
$BIN ingest -q "$T/g.csv" --session-gap 3600 -o "$T/g.sqd"
$BIN train -q "$T/g.sqd" --model srgnn --protocol sessions --test-days 10 --valid-days 5 \
  --set hidden=16 --set maxlen=10 --set epochs=2 -o "$T/s.sqm"
$BIN eval "$T/s.sqm" "$T/g.sqd" --k 20 --json > "$T/e.json"
python3 -c "
import json
e = json.load(open('$T/e.json'))
assert e['protocol'] == 'sessions', e['protocol']
assert e['history'] == 'kept', e['history']
assert e['targets'] > e['users'] > 0, (e['targets'], e['users'])
assert 0 <= e['metrics']['mrr@20'] <= e['metrics']['hr@20'] <= 1, e['metrics']
" || fail "eval --json under the sessions protocol"
$BIN eval "$T/s.sqm" "$T/g.sqd" --k 20 | grep -q "sessions protocol: [0-9]* predictions" ||
  fail "eval text: no prediction count"
# the trained days are the default; other days change the test set
A=$($BIN eval "$T/s.sqm" "$T/g.sqd" --k 20 --json | python3 -c "import json,sys; print(json.load(sys.stdin)['targets'])")
B=$($BIN eval "$T/s.sqm" "$T/g.sqd" --k 20 --test-days 3 --json | python3 -c "import json,sys; print(json.load(sys.stdin)['targets'])")
[ "$A" -gt "$B" ] || fail "--test-days 3 ($B predictions) should test fewer than 10 days ($A)"
if $BIN train -q "$T/g.sqd" --model pop --test-days 3 -o "$T/p.sqm" 2> "$T/err"; then
  fail "--test-days without --protocol sessions was accepted"
fi
grep -q "protocol sessions" "$T/err" || fail "unclear error: $(cat "$T/err")"
echo ok
