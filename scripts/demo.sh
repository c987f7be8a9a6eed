#!/usr/bin/env bash
# demo.sh — the main job end to end on a fresh Debian machine: install what is missing, build,
# then ingest a real log (../shared/data/ml-100k when present) and a generated one, and describe
# both. Later stages (train, evaluate, recommend, serve with the dashboard) join as they land.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
bash scripts/build.sh
BIN=build/seqrec
OUT=${OUT:-out}
mkdir -p "$OUT"
DATA=${SEQREC_DATA:-../shared/data}

echo "== generate a synthetic log with planted structure"
$BIN generate --users 2000 --items 1000 --events 100000 --seed 1 -o "$OUT/synthetic.csv"
echo "== ingest it (5-core) and describe it"
$BIN ingest "$OUT/synthetic.csv" --min-user-events 5 --min-item-events 5 \
  --rejects "$OUT/synthetic.rejects.tsv" -o "$OUT/synthetic.sqd"
$BIN stats "$OUT/synthetic.sqd"

if [ -f "$DATA/ml-100k/ml-100k.inter" ]; then
  echo "== ingest MovieLens-100K (RecBole atomic files, with .item and .user side files)"
  $BIN ingest "$DATA/ml-100k/ml-100k.inter" --rejects "$OUT/ml-100k.rejects.tsv" \
    -o "$OUT/ml-100k.sqd"
  $BIN stats "$OUT/ml-100k.sqd"
else
  echo "== $DATA/ml-100k not found: skipping the real-data part"
fi
echo "== done: datasets in $OUT/"
