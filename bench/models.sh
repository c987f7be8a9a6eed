#!/usr/bin/env bash
# models.sh — the model benchmark of docs/benchmarks.md: trains every model with its default
# config on the real data sets (leave-one-out, early stopping on validation NDCG@10), evaluates
# the kept model on the test part (full ranking, history excluded, 95 % bootstrap intervals)
# and prints one markdown row per model with the command that reproduces it.
#
#   bench/models.sh [--sets "beauty ml-100k"] [--models "pop sasrec"] [--threads 2] [--out DIR]
#                   [--set key=value]...
#
# A benchmark, not a test: a full run on Beauty takes tens of minutes on 2 cores.
set -euo pipefail
cd "$(dirname "$0")/.."
BIN=${SEQREC_BIN:-build/seqrec}
DATA=${SEQREC_DATA:-../shared/data}
SETS="beauty ml-100k"
MODELS=""
THREADS=2
OUT=out/bench-models
EXTRA=()
while [ $# -gt 0 ]; do
  case "$1" in
    --sets) SETS=$2; shift 2 ;;
    --models) MODELS=$2; shift 2 ;;
    --threads) THREADS=$2; shift 2 ;;
    --out) OUT=$2; shift 2 ;;
    --set) EXTRA+=(--set "$2"); shift 2 ;;
    -h|--help) sed -n '2,11p' "$0" | sed 's/^# \{0,1\}//'; exit 0 ;;
    *) echo "models.sh: unknown argument $1 (see --help)" >&2; exit 2 ;;
  esac
done
[ -x "$BIN" ] || { echo "models.sh: $BIN not built (scripts/build.sh)" >&2; exit 2; }
if [ -z "$MODELS" ]; then # every registered model, from `seqrec train --help`
  MODELS=$("$BIN" train --help | sed -n 's/.*--model M *the model: //p' | tr '|' ' ')
fi
mkdir -p "$OUT"

input_of() {
  case "$1" in
    beauty) echo "$DATA/beauty/beauty.txt" ;;
    ml-100k) echo "$DATA/ml-100k/ml-100k.inter" ;;
    ml-1m) echo "$DATA/ml-1m/ratings.dat" ;;
    *) echo "$DATA/$1" ;;
  esac
}

echo "| data | model | NDCG@10 [95 % CI] | HR@10 [95 % CI] | MRR@10 | training | epochs (kept) | s/epoch | peak RSS | command |"
echo "| --- | --- | --- | --- | --- | --- | --- | --- | --- | --- |"
for set in $SETS; do
  in=$(input_of "$set")
  if [ ! -f "$in" ]; then
    echo "models.sh: $in not found: skipping $set" >&2
    continue
  fi
  sqd="$OUT/$set.sqd"
  [ -f "$sqd" ] || "$BIN" ingest -q "$in" -o "$sqd"
  for model in $MODELS; do
    sqm="$OUT/$set.$model.sqm"
    log="$OUT/$set.$model.jsonl"
    rm -f "$log"
    cmd="seqrec train $set.sqd --model $model${EXTRA[*]:+ ${EXTRA[*]}} --threads $THREADS -o m.sqm"
    echo "models.sh: $set $model ..." >&2
    if ! "$BIN" train "$sqd" --model "$model" ${EXTRA[@]+"${EXTRA[@]}"} --threads "$THREADS" \
        -o "$sqm" --json --metrics-log "$log" > "$OUT/$set.$model.train.json" \
        2> "$OUT/$set.$model.train.err"; then
      echo "| $set | $model | failed: $(tail -1 "$OUT/$set.$model.train.err") | | | | | | | |"
      continue
    fi
    "$BIN" eval -q "$sqm" "$sqd" --threads "$THREADS" --json > "$OUT/$set.$model.eval.json"
    python3 - "$OUT/$set.$model.train.json" "$OUT/$set.$model.eval.json" "$log" "$set" \
      "$model" "$cmd" <<'PY'
import json, sys
tr = json.load(open(sys.argv[1]))
ev = json.load(open(sys.argv[2]))
epochs = [json.loads(l) for l in open(sys.argv[3])] if sys.argv[3] else []
m, ci = ev["metrics"], ev["ci95"]
epochs = [e for e in epochs if "epoch" in e]  # fitted models log one summary line
secs = sorted(e["seconds"] for e in epochs)
per = secs[len(secs) // 2] if secs else None  # the median epoch, as docs/benchmarks.md says
def cell(k):
    return f"{m[k]:.4f} [{ci[k][0]:.4f}, {ci[k][1]:.4f}]"
stop = ", stopped by Ctrl-C" if tr.get("interrupted") else ""
print(f"| {sys.argv[4]} | {sys.argv[5]} | {cell('ndcg@10')} | {cell('hr@10')} | "
      f"{m['mrr@10']:.4f} | {tr['seconds']:.1f} s | {tr['epochs']} ({tr.get('best_epoch', 1)}){stop} | "
      f"{'%.1f' % per if per is not None else '–'} | {tr.get('peak_rss_mib', 0):.0f} MiB | "
      f"`{sys.argv[6]} && seqrec eval m.sqm {sys.argv[4]}.sqd` |")
PY
  done
done
