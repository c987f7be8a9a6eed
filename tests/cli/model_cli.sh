#!/usr/bin/env bash
# model_cli.sh — train, eval, tune, recommend and similar end to end on a generated log: every
# command's --help; recommend never returns the user's own history and shows p = σ(score) for
# an embedding model; cosine scores lie in [-1, 1] in order and are refused for a model without
# vectors; tune tries every combination, ranks by validation NDCG@10, survives a failing trial,
# saves a best model that eval accepts, and fails cleanly when every trial fails; eval
# --against compares two models user by user with paired intervals.
set -euo pipefail
BIN=${SEQREC_BIN:?}
T=$(mktemp -d)
trap 'rm -rf "$T"' EXIT
fail() { echo "FAIL: $*" >&2; exit 1; }
py() { python3 -c "$@"; }
export OMP_NUM_THREADS=1

for c in train eval tune recommend similar; do
  $BIN $c --help | grep -q "usage: seqrec $c" || fail "$c --help"
done

$BIN generate -q --users 400 --items 120 --events 10000 --seed 4 -o "$T/g.csv"
$BIN ingest -q "$T/g.csv" -o "$T/g.sqd"
SMALL=(--set hidden=16 --set maxlen=20 --set epochs=3)
$BIN train -q "$T/g.sqd" --model sasrec "${SMALL[@]}" -o "$T/s.sqm"
$BIN train -q "$T/g.sqd" --model pop -o "$T/p.sqm"

# recommend: none of the user's own items, p = σ(score), scores in descending order
U=$(sed -n 2p "$T/g.csv" | cut -d, -f1)
$BIN recommend "$T/s.sqm" "$T/g.sqd" --user "$U" -k 20 --json > "$T/rec.json"
py "
import csv, json, math
r = json.load(open('$T/rec.json'))
seen = {row['item_id'] for row in csv.DictReader(open('$T/g.csv')) if row['user_id'] == '$U'}
items = r['items']
assert len(items) == 20, len(items)
assert not seen & {i['item'] for i in items}, 'a seen item was recommended'
s = [i['score'] for i in items]
assert s == sorted(s, reverse=True), s
for i in items:
    assert abs(i['probability'] - 1 / (1 + math.exp(-i['score']))) < 1e-5, i
" || fail "recommend --json"
# --explain: per item, up to 3 events of the user's history, largest contribution first (the
# values themselves are checked against hand-computed occlusion in tests/models/test_explain.c)
$BIN recommend "$T/s.sqm" "$T/g.sqd" --user "$U" -k 5 --explain --json > "$T/explain.json"
py "
import csv, json
r = json.load(open('$T/explain.json'))
hist = [row['item_id'] for row in csv.DictReader(open('$T/g.csv')) if row['user_id'] == '$U']
for it in r['items']:
    ex = it['explain']
    assert 1 <= len(ex) <= 3, it
    c = [e['contribution'] for e in ex]
    assert c == sorted(c, reverse=True), c
    for e in ex:
        assert e['item'] in hist, e
" || fail "recommend --explain"
$BIN recommend "$T/s.sqm" "$T/g.sqd" --user "$U" -k 2 --explain | grep -q "event " || fail "recommend --explain (text)"
$BIN recommend "$T/s.sqm" "$T/g.sqd" --user "$U" -k 20 --score cosine --json > "$T/cos.json"
py "
import json
s = [i['score'] for i in json.load(open('$T/cos.json'))['items']]
assert all(-1.0001 <= x <= 1.0001 for x in s) and s == sorted(s, reverse=True), s
" || fail "recommend --score cosine"
I=$(sed -n 2p "$T/g.csv" | cut -d, -f2)
$BIN similar "$T/s.sqm" "$T/g.sqd" --item "$I" -k 5 --score cosine --json | py "
import json, sys
r = json.load(sys.stdin)
assert r['score'] == 'cosine' and len(r['items']) == 5 and '$I' not in [i['item'] for i in r['items']]
" || fail "similar --score cosine"
if $BIN recommend "$T/p.sqm" "$T/g.sqd" --user "$U" --score cosine 2> "$T/err"; then
  fail "cosine accepted for pop"
fi
grep -q "no item vectors" "$T/err" || fail "cosine on pop: $(cat "$T/err")"
if $BIN recommend "$T/s.sqm" "$T/g.sqd" --user "$U" --score manhattan 2>/dev/null; then
  fail "unknown --score accepted"
fi

# tune: 2 x 2 grid, one line per trial, the table's first row is the best validation NDCG@10
$BIN tune -q "$T/g.sqd" --model sasrec "${SMALL[@]}" --grid lr=0.001,0.005 \
  --grid dropout=0.1,0.3 --json --log "$T/tune.jsonl" -o "$T/best.sqm" > "$T/tune.out"
[ "$(wc -l < "$T/tune.out")" = 4 ] || fail "tune --json: $(cat "$T/tune.out")"
cmp -s "$T/tune.out" "$T/tune.jsonl" || fail "tune --log differs from --json"
py "
import json
rows = [json.loads(l) for l in open('$T/tune.jsonl')]
combos = {(r['params']['lr'], r['params']['dropout']) for r in rows}
assert combos == {(a, b) for a in ('0.001', '0.005') for b in ('0.1', '0.3')}, combos
assert all(0 < r['valid']['ndcg@10'] <= 1 for r in rows)
" || fail "tune trials"
$BIN eval -q "$T/best.sqm" "$T/g.sqd" --part valid --json > "$T/best.json"
py "
import json
rows = [json.loads(l) for l in open('$T/tune.jsonl')]
best = max(r['valid']['ndcg@10'] for r in rows)
got = json.load(open('$T/best.json'))['metrics']['ndcg@10']
assert abs(got - best) < 1e-9, (got, best)
" || fail "the saved model is not the best trial"
$BIN tune -q "$T/g.sqd" --model sasrec "${SMALL[@]}" --grid lr=0.001,0.005 > "$T/table"
head -1 "$T/table" | grep -q "NDCG@10" || fail "tune table header"
py "
rows = [l.split() for l in open('$T/table').read().splitlines()[1:]]
nd = [float(r[2]) for r in rows]
assert len(nd) == 2 and nd == sorted(nd, reverse=True), nd
" || fail "tune table order"

# eval --against: B on the same users, A - B with paired intervals; a model against itself is
# exactly 0; SASRec beats popularity significantly on the planted log; another split refused
$BIN eval -q "$T/s.sqm" "$T/g.sqd" --against "$T/p.sqm" --bootstrap 300 --json > "$T/vs.json"
$BIN eval -q "$T/s.sqm" "$T/g.sqd" --bootstrap 300 --json > "$T/a.json"
$BIN eval -q "$T/p.sqm" "$T/g.sqd" --bootstrap 300 --json > "$T/b.json"
$BIN eval -q "$T/s.sqm" "$T/g.sqd" --against "$T/s.sqm" --bootstrap 300 --json > "$T/self.json"
py "
import json
v, a, b, me = (json.load(open('$T/' + f + '.json')) for f in ('vs', 'a', 'b', 'self'))
assert v['metrics'] == a['metrics'] and v['against']['metrics'] == b['metrics'], 'own figures'
assert v['against']['model'].endswith('p.sqm'), v['against']
for k, x in v['diff']['metrics'].items():
    assert abs(x - (a['metrics'][k] - b['metrics'][k])) < 1e-9, (k, x)
    lo, hi = v['diff']['ci95'][k]
    assert lo <= x + 1e-12 and x <= hi + 1e-12, (k, lo, x, hi)
assert v['diff']['ci95']['ndcg@10'][0] > 0, v['diff']  # SASRec ahead, significantly
for k, x in me['diff']['metrics'].items():
    assert x == 0 and me['diff']['ci95'][k] == [0, 0], (k, x)
" || fail "eval --against: $(cat "$T/vs.json")"
$BIN eval -q "$T/s.sqm" "$T/g.sqd" --against "$T/p.sqm" --bootstrap 100 > "$T/vs.txt"
grep -q "^A - B = .*s.sqm - .*p.sqm" "$T/vs.txt" || fail "eval --against text: $(cat "$T/vs.txt")"
grep -q " \*" "$T/vs.txt" || fail "eval --against marks no significant difference"
$BIN train -q "$T/g.sqd" --model pop --protocol temporal -o "$T/pt.sqm"
if $BIN eval -q "$T/s.sqm" "$T/g.sqd" --against "$T/pt.sqm" 2> "$T/err" > /dev/null; then
  fail "eval --against a model of another split accepted"
fi
grep -q "different protocols ('loo' and 'temporal')" "$T/err" || fail "--against message: $(cat "$T/err")"

# a failing trial is reported and the others still run; all failing is an error
$BIN tune -q "$T/g.sqd" --model sasrec "${SMALL[@]}" --grid hidden=16,abc --json > "$T/mixed"
grep -q '"error"' "$T/mixed" || fail "failing trial not reported"
grep -q '"ndcg@10"' "$T/mixed" || fail "good trial missing"
if $BIN tune -q "$T/g.sqd" --model sasrec --grid hidden=abc,xyz 2> "$T/err" > /dev/null; then
  fail "all trials failed but exit 0"
fi
grep -q "every trial failed" "$T/err" || fail "all-fail message: $(cat "$T/err")"
set +e
$BIN tune "$T/g.sqd" --model sasrec --grid hidden 2>/dev/null; [ $? = 2 ] || fail "bad --grid exit"
$BIN tune "$T/g.sqd" --grid hidden=1 2>/dev/null; [ $? = 2 ] || fail "missing --model exit"
set -e

# Ctrl-C during training: the loop stops after the batch, the best epoch so far is kept and
# saved (exit 0, "interrupted" in --json), and the saved model evaluates
$BIN train "$T/g.sqd" --model sasrec --set hidden=16 --set maxlen=20 --set epochs=100000 \
  --set valid_every=1 --set patience=100000 --json -o "$T/int.sqm" > "$T/int.json" 2> "$T/int.err" &
TP=$!
for _ in $(seq 1 600); do # until the first validated epoch is logged (at most 60 s)
  grep -q "epoch 1:" "$T/int.err" 2>/dev/null && break
  sleep 0.1
done
kill -INT $TP
wait $TP || fail "an interrupted training exits $?"
py "
import json
r = json.load(open('$T/int.json'))
assert r['interrupted'] is True and 1 <= r['best_epoch'] <= r['epochs'] < 100000, r
" || fail "interrupted train --json: $(cat "$T/int.json")"
grep -q "interrupted" "$T/int.err" || fail "no interruption message"
$BIN eval -q "$T/int.sqm" "$T/g.sqd" > /dev/null || fail "the interrupted model does not evaluate"
# ... and in tune: the running trial keeps its best epoch, the search stops with a table of it
$BIN tune "$T/g.sqd" --model sasrec --set maxlen=20 --set epochs=100000 --set valid_every=1 \
  --set patience=100000 --grid hidden=8,16,32 -o "$T/tint.sqm" > "$T/tint.out" 2> "$T/tint.err" &
TP=$!
for _ in $(seq 1 600); do
  grep -q "epoch 1:" "$T/tint.err" 2>/dev/null && break
  sleep 0.1
done
kill -INT $TP
wait $TP || fail "an interrupted tune exits $?"
grep -q "stops after 1 of 3 trials" "$T/tint.err" || fail "tune: no interruption message"
[ "$(grep -c "hidden=" "$T/tint.err")" = 1 ] || fail "tune ran another trial after Ctrl-C"
[ -s "$T/tint.sqm" ] || fail "tune: the interrupted best trial was not saved"

# bench train: the real loop on a generated log of Beauty's shape, one figure per epoch, no file
# left behind; refuses fitted and unknown models
mkdir "$T/bd"
$BIN bench train --rows 6000 --runs 2 --model sasrec --set hidden=8 --set maxlen=20 --dir "$T/bd" \
  --json > "$T/bench.json" 2> /dev/null || fail "bench train"
py "
import json
r = json.load(open('$T/bench.json'))
assert r['bench'] == 'train' and r['model'] == 'sasrec' and r['epochs'] == 2, r
assert r['users'] == int(40226 * 6000 / 353962) + 1 and r['items'] == int(54542 * 6000 / 353962) + 1, r
s = r['seconds_per_epoch']
assert len(s) == 2 and all(x > 0 for x in s) and r['seconds_per_epoch_median'] in s, r
assert r['seconds_per_epoch_min'] == min(s) and r['seconds_per_epoch_max'] == max(s), r
assert r['targets_per_second_median'] > 0 and r['validation_seconds'] > 0 and r['peak_rss_mib'] > 0, r
" || fail "bench train --json: $(cat "$T/bench.json")"
[ -z "$(ls -A "$T/bd")" ] || fail "bench train left files: $(ls "$T/bd")"
set +e
$BIN bench train --rows 6000 --model pop --dir "$T/bd" 2> "$T/bp.err"; [ $? = 1 ] || fail "bench train pop exit"
grep -q "pop is fitted" "$T/bp.err" || fail "bench train pop message: $(cat "$T/bp.err")"
$BIN bench train --rows 6000 --model nosuch --dir "$T/bd" 2> /dev/null; [ $? = 1 ] || fail "bench train unknown model exit"
set -e
[ -z "$(ls -A "$T/bd")" ] || fail "a failed bench train left files"

echo "model_cli: ok"
