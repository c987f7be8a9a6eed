#!/usr/bin/env bash
# demo.sh — the main job end to end on a fresh Debian machine: install what is missing, build,
# then for a generated log and a real one (../shared/data/ml-100k when present): ingest, describe,
# train the baselines and SASRec, evaluate them with full ranking, recommend and find similar items.
# A multi-task SASRec on the generated log. Writes the training runs as one HTML report
# (out/report.html). It ends with `seqrec serve` running on the synthetic SASRec (port
# $SEQREC_PORT, default 8080) with the web dashboard at http://127.0.0.1:8080/ (the runs'
# curves and evaluations included; opened in a browser when there is a display), after trying
# the printed curl examples against it; Ctrl-C stops the server.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
bash scripts/build.sh
BIN=build/seqrec
OUT=${OUT:-out}
mkdir -p "$OUT"
DATA=${SEQREC_DATA:-../shared/data}
rm -f "$OUT/metrics.jsonl" "$OUT/evals.jsonl" # this run's training curves and evaluations only

echo "== generate a synthetic log with planted structure"
$BIN generate --users 2000 --items 1000 --events 100000 --seed 1 -o "$OUT/synthetic.csv"
echo "== ingest it (5-core) and describe it"
$BIN ingest "$OUT/synthetic.csv" --min-user-events 5 --min-item-events 5 \
  --rejects "$OUT/synthetic.rejects.tsv" -o "$OUT/synthetic.sqd"
$BIN stats "$OUT/synthetic.sqd"
run_models() { # dataset.sqd user item sasrec-epochs
  for m in pop itemknn; do
    echo "== train $m on $1 and evaluate it (leave-one-out, full ranking)"
    $BIN train "$1" --model "$m" --metrics-log "$OUT/metrics.jsonl" -o "${1%.sqd}.$m.sqm"
    $BIN eval "${1%.sqd}.$m.sqm" "$1" --k 10,20
    $BIN eval "${1%.sqd}.$m.sqm" "$1" --k 10,20 --json >> "$OUT/evals.jsonl" # for the dashboard
  done
  echo "== train SASRec on $1 ($4 epochs at most; early stopping on validation NDCG@10)"
  $BIN train "$1" --model sasrec --set epochs="$4" --metrics-log "$OUT/metrics.jsonl" \
    -o "${1%.sqd}.sasrec.sqm"
  $BIN eval "${1%.sqd}.sasrec.sqm" "$1" --k 10,20
  $BIN eval "${1%.sqd}.sasrec.sqm" "$1" --k 10,20 --json >> "$OUT/evals.jsonl"
  echo "== recommend for user $2 and find items like $3 (item-kNN)"
  $BIN recommend "${1%.sqd}.itemknn.sqm" "$1" --user "$2" -k 5
  $BIN similar "${1%.sqd}.itemknn.sqm" "$1" --item "$3" -k 5
}
run_models "$OUT/synthetic.sqd" 1 10 10
echo "== multi-task SASRec on the synthetic log: next item, next behaviour, click, buy at once"
$BIN train "$OUT/synthetic.sqd" --model sasrec --tasks next_item,next_behaviour,click,buy \
  --set sharing=mmoe --set epochs=5 --metrics-log "$OUT/metrics.jsonl" -o "$OUT/synthetic.mt.sqm"
$BIN eval "$OUT/synthetic.mt.sqm" "$OUT/synthetic.sqd" --k 10,20
$BIN eval "$OUT/synthetic.mt.sqm" "$OUT/synthetic.sqd" --k 10,20 --json >> "$OUT/evals.jsonl"
echo "== recommend for user 1 by p(click) x p(buy | click)"
$BIN recommend "$OUT/synthetic.mt.sqm" "$OUT/synthetic.sqd" --user 1 -k 5 --objective buy

if [ -f "$DATA/ml-100k/ml-100k.inter" ]; then
  echo "== ingest MovieLens-100K (RecBole atomic files, with .item and .user side files)"
  $BIN ingest "$DATA/ml-100k/ml-100k.inter" --rejects "$OUT/ml-100k.rejects.tsv" \
    -o "$OUT/ml-100k.sqd"
  $BIN stats "$OUT/ml-100k.sqd"
  run_models "$OUT/ml-100k.sqd" 196 242 5
else
  echo "== $DATA/ml-100k not found: skipping the real-data part"
fi
echo "== the training runs and evaluations as one self-contained HTML file (opens offline)"
$BIN report "$OUT/metrics.jsonl" --eval-json "$OUT/evals.jsonl" -o "$OUT/report.html"
echo "== done: datasets and models in $OUT/"

PORT=${SEQREC_PORT:-8080}
MODEL="$OUT/synthetic.sasrec.sqm"
echo "== serve $MODEL on http://127.0.0.1:$PORT (event store $OUT/events.db)"
$BIN serve "$MODEL" "$OUT/synthetic.sqd" --store "$OUT/events.db" --port "$PORT" \
  --negative dislike --static web/dist --metrics-log "$OUT/metrics.jsonl" \
  --eval-json "$OUT/evals.jsonl" >"$OUT/serve.out" &
SERVER=$!
trap 'kill $SERVER 2>/dev/null; wait $SERVER 2>/dev/null' EXIT
trap 'exit 0' INT TERM
for _ in $(seq 100); do
  grep -q "listening on" "$OUT/serve.out" 2>/dev/null && break
  kill -0 $SERVER 2>/dev/null || { echo "seqrec serve did not start"; exit 1; }
  sleep 0.1
done
cat "$OUT/serve.out"
URL=http://127.0.0.1:$PORT
EXAMPLES=(
  "curl -s '$URL/v1/users/1/recommendations?k=5'"
  "curl -s -X POST $URL/v1/events -d '{\"user\":\"1\",\"item\":\"10\",\"behaviour\":\"view\"}'"
  "curl -s '$URL/v1/users/1/recommendations?k=5&explain=true'"
  "curl -s '$URL/v1/users/1/history?limit=3'"
  "curl -s '$URL/v1/users/someone-new/recommendations?k=3'"
  "curl -s '$URL/v1/items/10/similar?k=3'"
  "curl -s $URL/healthz"
  "curl -s $URL/metrics | grep -E '^seqrec_(events_stored|cache_hit_ratio|model_version)'"
)
echo "== try it (each example was just run against the server; its answer follows it)"
for e in "${EXAMPLES[@]}"; do
  echo "\$ $e"
  bash -c "$e"
  echo
done
echo "== seqrec serve is running on $URL (docs/serve.md has the API); Ctrl-C stops it"
echo "== the dashboard is open at $URL/ : Data, Training, Models, Users, Items, Live (docs/dashboard.md)"
if [ -n "${DISPLAY:-}${WAYLAND_DISPLAY:-}" ] && command -v xdg-open > /dev/null; then
  xdg-open "$URL/" > /dev/null 2>&1 || true
fi
wait $SERVER
