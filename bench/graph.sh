#!/usr/bin/env bash
# graph.sh — the "Graph models and item encoders" benchmark of docs/benchmarks.md: LightGCN
# against BPR-MF, and SASRec (or another sequence model) with each item encoder (id, graph,
# id+graph), one run at a time through bench/models.sh (default protocol: leave-one-out, full
# ranking, history excluded, early stopping on validation NDCG@10, 95 % bootstrap intervals).
# Prints the markdown rows; each row's last cell is the command that reproduces it.
#
#   bench/graph.sh [--sets "ml-100k beauty"] [--seq sasrec] [--threads 1] [--out DIR]
#                  [--only "lightgcn bpr id graph id+graph"] [--set key=value]...
#
# A benchmark, not a test: SASRec on ML-100K takes minutes per variant, on Beauty tens.
set -euo pipefail
cd "$(dirname "$0")/.."
SETS="ml-100k"
SEQ=sasrec
THREADS=1
OUT=out/bench-graph
ONLY="lightgcn bpr id graph id+graph"
EXTRA=()
while [ $# -gt 0 ]; do
  case "$1" in
    --sets) SETS=$2; shift 2 ;;
    --seq) SEQ=$2; shift 2 ;;
    --threads) THREADS=$2; shift 2 ;;
    --out) OUT=$2; shift 2 ;;
    --only) ONLY=$2; shift 2 ;;
    --set) EXTRA+=(--set "$2"); shift 2 ;;
    -h|--help) sed -n '2,11p' "$0" | sed 's/^# \{0,1\}//'; exit 0 ;;
    *) echo "graph.sh: unknown argument $1 (see --help)" >&2; exit 2 ;;
  esac
done
header=1
for variant in $ONLY; do
  case "$variant" in
    lightgcn|bpr) args=(--models "$variant") ;;
    id|graph|id+graph) args=(--models "$SEQ" --set "item_encoder=$variant") ;;
    *) echo "graph.sh: unknown variant $variant (lightgcn, bpr, id, graph, id+graph)" >&2
       exit 2 ;;
  esac
  # each variant in its own directory (models.sh names files by set and model)
  rows=$(bench/models.sh --sets "$SETS" --threads "$THREADS" --out "$OUT/$variant" "${args[@]}" \
    ${EXTRA[@]+"${EXTRA[@]}"})
  if [ $header = 1 ]; then echo "$rows" | head -2; header=0; fi
  case "$variant" in # name the encoder in the model cell
    lightgcn|bpr) echo "$rows" | tail -n +3 ;;
    *) echo "$rows" | tail -n +3 | sed "s/^\(| [^|]* \)| $SEQ |/\1| $SEQ, item_encoder=$variant |/" ;;
  esac
done
