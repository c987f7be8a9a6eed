#!/usr/bin/env bash
# graph_cli.sh — the graph models end to end on a generated log: `train --model lightgcn` and
# SASRec/GRU4Rec with `--set item_encoder=id+graph` train, save a model that eval, recommend
# (scores and cosine) and similar accept, with the model and encoder keys in the saved config;
# LightGCN's test HR@10 is above popularity's; bad encoder settings fail with a one-line reason
# naming the key.
set -euo pipefail
BIN=${SEQREC_BIN:?}
T=$(mktemp -d)
trap 'rm -rf "$T"' EXIT
fail() { echo "FAIL: $*" >&2; exit 1; }
py() { python3 -c "$@"; }
export OMP_NUM_THREADS=1

$BIN train --help | grep -q "lightgcn" || fail "train --help lists lightgcn"
$BIN generate -q --users 400 --items 120 --events 10000 --seed 4 -o "$T/g.csv"
$BIN ingest -q "$T/g.csv" -o "$T/g.sqd"
$BIN train -q "$T/g.sqd" --model pop -o "$T/p.sqm"
$BIN train -q "$T/g.sqd" --model lightgcn --set epochs=40 --set dim=32 -o "$T/l.sqm"
$BIN eval "$T/l.sqm" "$T/g.sqd" --json > "$T/l.json"
$BIN eval "$T/p.sqm" "$T/g.sqd" --json > "$T/p.json"
py "
import json
l = json.load(open('$T/l.json'))['metrics']['hr@10']
p = json.load(open('$T/p.json'))['metrics']['hr@10']
print('lightgcn HR@10', l, 'pop', p)
assert l > 1.5 * p, (l, p)
" || fail "lightgcn above popularity"

U=$(sed -n 2p "$T/g.csv" | cut -d, -f1)
I=$(sed -n 2p "$T/g.csv" | cut -d, -f2)
SMALL=(--set hidden=16 --set maxlen=20 --set epochs=2 --set item_encoder=id+graph)
$BIN train -q "$T/g.sqd" --model sasrec "${SMALL[@]}" --set graph_layers=2 -o "$T/s.sqm"
$BIN train -q "$T/g.sqd" --model gru4rec "${SMALL[@]}" -o "$T/r.sqm"
for m in l s r; do
  $BIN eval "$T/$m.sqm" "$T/g.sqd" --json > "$T/e.json" || fail "eval $m"
  $BIN recommend "$T/$m.sqm" "$T/g.sqd" --user "$U" -k 5 --json > "$T/rec.json" || fail "rec $m"
  $BIN recommend "$T/$m.sqm" "$T/g.sqd" --user "$U" -k 5 --score cosine --json > "$T/cos.json" ||
    fail "recommend --score cosine $m"
  $BIN similar "$T/$m.sqm" "$T/g.sqd" --item "$I" -k 5 --json > "$T/sim.json" || fail "similar $m"
  py "
import json
for f in ('$T/rec.json', '$T/cos.json', '$T/sim.json'):
    items = json.load(open(f))['items']
    assert len(items) == 5, (f, items)
    s = [i['score'] for i in items]
    assert s == sorted(s, reverse=True), (f, s)
" || fail "$m: recommend/similar output"
done
# the saved config (the .sqm header's JSON) holds the encoder keys and LightGCN's defaults
py "
import json, struct
def config(path):
    b = open(path, 'rb').read()
    n = struct.unpack_from('<I', b, 8)[0]
    return json.loads(b[12:12 + n])['config']
s, l = config('$T/s.sqm'), config('$T/l.sqm')
assert s['item_encoder'] == 'id+graph' and s['graph_layers'] == 2, s
assert l['model'] == 'lightgcn' and l['layers'] == 3 and l['dim'] == 32 and l['lr'] == 0.005, l
" || fail "config keys"

for bad in "item_encoder=gcn" "graph_layers=0"; do
  if $BIN train -q "$T/g.sqd" --model sasrec --set item_encoder=graph --set "$bad" \
      -o "$T/x.sqm" 2> "$T/err"; then
    fail "train accepted $bad"
  fi
  grep -q "${bad%%=*}" "$T/err" || fail "the error for $bad names the key: $(cat "$T/err")"
  [ "$(wc -l < "$T/err")" -le 1 ] || fail "one line for $bad"
done
if $BIN train -q "$T/g.sqd" --model gru4rec --set item_encoder=graph --set loss=bprmax \
    -o "$T/x.sqm" 2> "$T/err"; then
  fail "gru4rec accepted item_encoder=graph with loss=bprmax"
fi
grep -q "needs loss=ce" "$T/err" || fail "bprmax error: $(cat "$T/err")"
echo "graph_cli: ok"
