#!/usr/bin/env bash
# cold_cli.sh — content, hybrid and the cold-start protocols end to end on a generated log with
# titles and tags (RecBole .inter + .item): train and eval under cold_items (eval --json carries
# the held-out-only ranking, and both models rank held-out items far above popularity) and
# cold_users; a saved model scores the same after loading (eval twice); recommend for a new
# user from first items; clear errors for bad options.
set -euo pipefail
BIN=${SEQREC_BIN:?}
T=$(mktemp -d)
trap 'rm -rf "$T"' EXIT
fail() { echo "FAIL: $*" >&2; exit 1; }
export OMP_NUM_THREADS=1

$BIN generate -q --users 400 --items 150 --events 10000 --seed 9 -o "$T/g.inter"
[ -f "$T/g.item" ] || fail "the generator wrote no .item side file"
$BIN ingest -q "$T/g.inter" -o "$T/g.sqd"

for m in pop content hybrid; do
  $BIN train -q "$T/g.sqd" --model $m --protocol cold_items --set epochs=5 --set dim=16 \
    -o "$T/$m.sqm"
  $BIN eval "$T/$m.sqm" "$T/g.sqd" --k 10 --bootstrap 50 --json > "$T/$m.json"
done
python3 - "$T" <<'EOF' || fail "cold_items eval"
import json, sys
t = sys.argv[1]
r = {m: json.load(open(f"{t}/{m}.json")) for m in ("pop", "content", "hybrid")}
for m, j in r.items():
    assert j["protocol"] == "cold_items", j
    assert j["candidates"] == 150 and j["cold_only"]["candidates"] == 15, j
    print(m, "all", round(j["metrics"]["auc"], 4), "held-out only", round(j["cold_only"]["metrics"]["auc"], 4))
assert r["pop"]["metrics"]["hr@10"] == 0, "pop ranked a held-out item it never counted"
assert abs(r["pop"]["cold_only"]["metrics"]["auc"] - 0.5) < 1e-9
for m in ("content", "hybrid"):
    assert r[m]["cold_only"]["metrics"]["auc"] > 0.65, m
    assert r[m]["metrics"]["auc"] > r["pop"]["metrics"]["auc"] + 0.4, m
EOF
# loading gives the same scores: evaluating the same file twice gives the same metrics
$BIN eval "$T/hybrid.sqm" "$T/g.sqd" --k 10 --bootstrap 50 --json > "$T/hybrid2.json"
python3 - "$T" <<'EOF' || fail "eval after load differs"
import json, sys
t = sys.argv[1]
a, b = (json.load(open(f"{t}/{f}.json")) for f in ("hybrid", "hybrid2"))
assert a["metrics"] == b["metrics"] and a["cold_only"]["metrics"] == b["cold_only"]["metrics"]
EOF

# cold_users: only the held-out users are tested (10 % of 400)
$BIN train -q "$T/g.sqd" --model hybrid --protocol cold_users --set epochs=3 --set dim=8 \
  -o "$T/hu.sqm"
$BIN eval "$T/hu.sqm" "$T/g.sqd" --k 10 --bootstrap 0 --json > "$T/hu.json"
python3 -c "
import json; j = json.load(open('$T/hu.json'))
assert j['protocol'] == 'cold_users' and j['users'] == 40, j
assert 'cold_only' not in j
" || fail "cold_users eval"

# a new user from first items (the cold_users path), with the content model
first=$(sed -n 2p "$T/g.inter" | cut -f2)
$BIN recommend "$T/content.sqm" "$T/g.sqd" --items "$first" -k 5 --json > "$T/rec.json"
python3 -c "
import json; r = json.load(open('$T/rec.json'))
assert len(r['items']) == 5 and '$first' not in [i['item'] for i in r['items']], r
" || fail "recommend for a new user"

# errors: unknown protocol, unknown item, bad loss
if $BIN train -q "$T/g.sqd" --model pop --protocol cold -o "$T/x.sqm" 2> "$T/err"; then
  fail "an unknown protocol was accepted"
fi
grep -q "cold_items, cold_users" "$T/err" || fail "the protocol error does not list the protocols"
if $BIN recommend "$T/content.sqm" "$T/g.sqd" --items nope 2> "$T/err"; then
  fail "an unknown item was accepted"
fi
grep -q "item 'nope'" "$T/err" || fail "the item error does not name the item"
if $BIN train -q "$T/g.sqd" --model hybrid --set loss=hinge -o "$T/x.sqm" 2> "$T/err"; then
  fail "loss=hinge was accepted"
fi
grep -q "loss" "$T/err" || fail "the loss error does not name the key"
echo "cold_cli: all checks passed"
