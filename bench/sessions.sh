#!/usr/bin/env bash
# sessions.sh — the session-graph benchmark of docs/benchmarks.md ("Session graphs
# (diginetica-sample)"): SR-GNN, GRU4Rec, SASRec and popularity with their default configs on
# SR-GNN's DIGINETICA sample, under SR-GNN's protocol (--protocol sessions: the sessions of the
# last 7 days are the test set, every event after the first of a test session is predicted from
# the session before it, items unseen in training dropped, the session's own items kept as
# candidates; P@20 is HR@20 there, MRR@20 cut at 20) and under our default leave-one-out
# protocol (history excluded). Two ingests: SR-GNN's filter (items with 5 events, sessions with
# 2: our ingest's k-core, which repeats both filters until nothing changes) and no filter.
# Every model is trained with --seeds seeds and one thread; prints one markdown row per
# (data, protocol, model): the mean over seeds, the range, and the first seed's 95 % bootstrap
# interval.
#
#   bench/sessions.sh [--sets "digi-srgnn digi-all"] [--models "srgnn gru4rec"]
#                     [--seeds "42 43 44"] [--threads 1] [--out DIR]
#
# A benchmark, not a test: the whole run takes a few minutes on one core.
set -euo pipefail
cd "$(dirname "$0")/.."
BIN=${SEQREC_BIN:-build/seqrec}
DATA=${SEQREC_DATA:-../shared/data}
SETS="digi-srgnn digi-all"
MODELS="srgnn gru4rec sasrec pop"
SEEDS="42 43 44"
THREADS=1
OUT=out/bench-sessions
while [ $# -gt 0 ]; do
  case "$1" in
    --sets) SETS=$2; shift 2 ;;
    --models) MODELS=$2; shift 2 ;;
    --seeds) SEEDS=$2; shift 2 ;;
    --threads) THREADS=$2; shift 2 ;;
    --out) OUT=$2; shift 2 ;;
    -h|--help) sed -n '2,17p' "$0" | sed 's/^# \{0,1\}//'; exit 0 ;;
    *) echo "sessions.sh: unknown argument $1 (see --help)" >&2; exit 2 ;;
  esac
done
[ -x "$BIN" ] || { echo "sessions.sh: $BIN not built" >&2; exit 2; }
IN="$DATA/diginetica-sample/sample_train-item-views.csv"
[ -f "$IN" ] || { echo "sessions.sh: $IN not found: nothing to do" >&2; exit 0; }
mkdir -p "$OUT"
[ -f "$OUT/digi-srgnn.sqd" ] ||
  "$BIN" ingest -q "$IN" --min-item-events 5 --min-user-events 2 -o "$OUT/digi-srgnn.sqd"
[ -f "$OUT/digi-all.sqd" ] || "$BIN" ingest -q "$IN" -o "$OUT/digi-all.sqd"

echo "| data | protocol | model | P@20 (HR@20) | MRR@20 | NDCG@10 | predictions | training s | command |"
echo "| --- | --- | --- | --- | --- | --- | --- | --- | --- |"
for data in $SETS; do
  for protocol in sessions loo; do
    for model in $MODELS; do
      runs=()
      for seed in $SEEDS; do
        base="$OUT/$data.$protocol.$model.$seed"
        echo "sessions.sh: $data $protocol $model seed $seed ..." >&2
        if ! "$BIN" train "$OUT/$data.sqd" --model "$model" --protocol "$protocol" \
            --seed "$seed" --threads "$THREADS" --json -o "$base.sqm" > "$base.train.json" \
            2> "$base.train.err"; then
          echo "| $data | $protocol | $model | failed: $(tail -1 "$base.train.err") | | | | | |"
          continue 2
        fi
        "$BIN" eval -q "$base.sqm" "$OUT/$data.sqd" --k 10,20 --threads "$THREADS" --json \
          > "$base.eval.json"
        runs+=("$base")
      done
      cmd="seqrec train $data.sqd --model $model --protocol $protocol --threads $THREADS"
      python3 - "$data" "$protocol" "$model" "$cmd" "${runs[@]}" <<'PY'
import json, statistics, sys
data, protocol, model, cmd, runs = sys.argv[1], sys.argv[2], sys.argv[3], sys.argv[4], sys.argv[5:]
ev = [json.load(open(r + ".eval.json")) for r in runs]
tr = [json.load(open(r + ".train.json")) for r in runs]
def cell(key, ci=True):
    v = [e["metrics"][key] for e in ev]
    s = f"{statistics.mean(v):.4f} ({min(v):.4f}-{max(v):.4f})"
    if ci:
        lo, hi = ev[0]["ci95"][key]
        s += f" [{lo:.4f}, {hi:.4f}]"
    return s
secs = statistics.mean(t["seconds"] for t in tr)
print(f"| {data} | {protocol} | {model} | {cell('hr@20')} | {cell('mrr@20')} | "
      f"{cell('ndcg@10', False)} | {ev[0]['targets']} | {secs:.1f} | `{cmd}` |")
PY
    done
  done
done
