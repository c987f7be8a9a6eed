#!/usr/bin/env bash
# cold_real.sh — content features on the real data sets in ../shared/data: MovieLens-100K's
# titles, genres and user attributes, and Taobao-40K's Chinese titles, brands and categories
# become features; the content model (no training) finds ML-100K's held-out items well above
# chance, and a new ML-100K user given by attributes is accepted. Skips (exit 77) when the data
# is absent. (The figures themselves: bench/cold_start.sh, docs/benchmarks.md.)
set -euo pipefail
BIN=${SEQREC_BIN:?}
DATA=${SEQREC_DATA:-../shared/data}
if [ ! -f "$DATA/ml-100k/ml-100k.inter" ] || [ ! -f "$DATA/taobao-40k/UserBehavior.csv" ]; then
  echo "SKIP: real data sets not found under $DATA (ml-100k, taobao-40k)"
  exit 77
fi
T=$(mktemp -d)
trap 'rm -rf "$T"' EXIT
fail() { echo "FAIL: $*" >&2; exit 1; }
export OMP_NUM_THREADS=1

$BIN ingest -q "$DATA/ml-100k/ml-100k.inter" -o "$T/ml.sqd"
$BIN train -q "$T/ml.sqd" --model content --protocol cold_items -o "$T/ml.sqm"
$BIN eval "$T/ml.sqm" "$T/ml.sqd" --k 10 --bootstrap 0 --json -q > "$T/ml.json"
python3 -c "
import json; j = json.load(open('$T/ml.json'))
c = j['cold_only']
assert j['candidates'] == 1682 and c['candidates'] == 168, j
assert c['metrics']['auc'] > 0.6 and j['metrics']['hr@10'] > 0.1, j
print('ml-100k content, held-out items: AUC %.4f' % c['metrics']['auc'])
" || fail "ml-100k content on cold items"
$BIN recommend "$T/ml.sqm" "$T/ml.sqd" --items 50 --attr gender=F --attr occupation=writer \
  -k 3 --json > "$T/rec.json" || fail "recommend for a new ml-100k user"

$BIN ingest -q "$DATA/taobao-40k/UserBehavior.csv" -o "$T/tb.sqd"
$BIN train -q "$T/tb.sqd" --model content -o "$T/tb.sqm"
# every item has a Chinese title: its character n-grams, so similar items share features
$BIN similar "$T/tb.sqm" "$T/tb.sqd" --item "$(sed -n 2p "$DATA/taobao-40k/UserBehavior.csv" |
  cut -d, -f2)" -k 3 --json > "$T/sim.json"
python3 -c "
import json; r = json.load(open('$T/sim.json'))
assert len(r['items']) == 3 and r['items'][0]['score'] > 0, r
" || fail "taobao-40k content similar items"
echo "cold_real: all checks passed"
