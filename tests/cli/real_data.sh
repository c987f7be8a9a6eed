#!/usr/bin/env bash
# real_data.sh — the counts the issue states for the real data sets in ../shared/data, through
# the command line, plain and gzip-compressed. Skips (exit 77) when the data is absent.
set -euo pipefail
BIN=${SEQREC_BIN:?}
DATA=${SEQREC_DATA:-../shared/data}
if [ ! -d "$DATA/ml-100k" ] || [ ! -f "$DATA/beauty/beauty.txt" ] ||
   [ ! -f "$DATA/taobao-40k/UserBehavior.csv" ]; then
  echo "SKIP: real data sets not found under $DATA (ml-100k, beauty, taobao-40k)"
  exit 77
fi
T=$(mktemp -d)
trap 'rm -rf "$T"' EXIT
fail() { echo "FAIL: $*" >&2; exit 1; }
stat_of() {
  $BIN stats --json "$1" |
    python3 -c "import json,sys; d=json.load(sys.stdin); print(eval('d'+sys.argv[1]))" "$2"
}
expect() { # file key value
  local got
  got=$(stat_of "$1" "$2")
  [ "$got" = "$3" ] || fail "$1 $2: got $got, want $3"
}

check_ml100k() {
  expect "$1" "['events']" 100000
  expect "$1" "['users']" 943
  expect "$1" "['items']" 1682
  [ "$(stat_of "$1" "['side']['items_with_text']")" -gt 1600 ] || fail "ml-100k titles"
  [ "$(stat_of "$1" "['side']['items_with_tags']")" -gt 1600 ] || fail "ml-100k genres"
  [ "$(stat_of "$1" "['side']['users_with_attributes']")" = 943 ] || fail "ml-100k user attrs"
}
$BIN ingest -q "$DATA/ml-100k/ml-100k.inter" -o "$T/ml.sqd"
check_ml100k "$T/ml.sqd"
# the gzip-compressed copies (side files beside them, compressed too)
mkdir "$T/gz"
for f in inter item user; do gzip -c "$DATA/ml-100k/ml-100k.$f" > "$T/gz/ml-100k.$f.gz"; done
$BIN ingest -q "$T/gz/ml-100k.inter.gz" -o "$T/mlgz.sqd"
check_ml100k "$T/mlgz.sqd"

$BIN ingest -q "$DATA/beauty/beauty.txt" -o "$T/beauty.sqd"
expect "$T/beauty.sqd" "['events']" 353962
expect "$T/beauty.sqd" "['users']" 40226
expect "$T/beauty.sqd" "['items']" 54542
gzip -c "$DATA/beauty/beauty.txt" > "$T/beauty.txt.gz"
$BIN ingest -q "$T/beauty.txt.gz" -o "$T/beautygz.sqd"
expect "$T/beautygz.sqd" "['events']" 353962
expect "$T/beautygz.sqd" "['items']" 54542

TB="$DATA/taobao-40k/UserBehavior.csv"
check_taobao() {
  expect "$1" "['events']" 40000
  expect "$1" "['behaviours']['pv']" 5030
  expect "$1" "['behaviours']['fav']" 961
  expect "$1" "['behaviours']['cart']" 2009
  expect "$1" "['behaviours']['buy']" 32000
}
$BIN ingest -q "$TB" -o "$T/tb.sqd" \
  --columns 'user=用户ID,item=商品ID,behaviour=行为类型,ts=时间戳,item_text=商品名称,item_tag:brand=品牌,item_tag:category=商品类别,item_num:price=售价'
check_taobao "$T/tb.sqd"
$BIN ingest -q "$TB" -o "$T/tb2.sqd" # no flags: the Chinese header is recognised
check_taobao "$T/tb2.sqd"
gzip -c "$TB" > "$T/UserBehavior.csv.gz"
$BIN ingest -q "$T/UserBehavior.csv.gz" -o "$T/tbgz.sqd"
check_taobao "$T/tbgz.sqd"

if [ -f "$DATA/ml-1m/ratings.dat" ]; then
  $BIN ingest -q "$DATA/ml-1m/ratings.dat" -o "$T/ml1m.sqd"
  expect "$T/ml1m.sqd" "['events']" 1000209
  expect "$T/ml1m.sqd" "['users']" 6040
  expect "$T/ml1m.sqd" "['items']" 3706
  $BIN ingest -q "$DATA/ml-1m/ratings.dat" --min-user-events 5 --min-item-events 5 \
    -o "$T/ml1m5.sqd"
  expect "$T/ml1m5.sqd" "['items']" 3416
else
  echo "note: $DATA/ml-1m/ratings.dat absent: MovieLens-1M counts not checked"
fi
echo "real_data: all checks passed"
