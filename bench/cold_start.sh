#!/usr/bin/env bash
# cold_start.sh — the content / hybrid / cold-start benchmark of docs/benchmarks.md: trains each
# model on each protocol (cold_items: 10 % of items never trained on; cold_users: 10 % of users
# never trained on, represented by their attributes and first event; loo: the warm reference),
# evaluates the test part (full ranking over all items, history excluded, 95 % bootstrap
# intervals; under cold_items also ranked among the held-out items only) and prints one
# markdown row per run with LightFM's precision@10 / recall@10 / AUC beside our HR and NDCG.
#
#   bench/cold_start.sh [--sets "ml-100k taobao-40k"] [--models "pop content hybrid bpr"]
#                       [--protocols "cold_items cold_users loo"] [--threads 1] [--out DIR]
#                       [--seed S]   (the split's seed: which items or users are held out)
#
# A benchmark, not a test: one run of everything takes about ten minutes on one thread.
set -euo pipefail
cd "$(dirname "$0")/.."
BIN=${SEQREC_BIN:-build/seqrec}
DATA=${SEQREC_DATA:-../shared/data}
SETS="ml-100k taobao-40k"
MODELS="pop content hybrid bpr"
PROTOCOLS="cold_items cold_users loo"
THREADS=1
SEED=42
OUT=out/bench-cold
while [ $# -gt 0 ]; do
  case "$1" in
    --sets) SETS=$2; shift 2 ;;
    --models) MODELS=$2; shift 2 ;;
    --protocols) PROTOCOLS=$2; shift 2 ;;
    --threads) THREADS=$2; shift 2 ;;
    --out) OUT=$2; shift 2 ;;
    --seed) SEED=$2; shift 2 ;;
    -h|--help) sed -n '2,13p' "$0" | sed 's/^# \{0,1\}//'; exit 0 ;;
    *) echo "cold_start.sh: unknown argument $1 (see --help)" >&2; exit 2 ;;
  esac
done
[ -x "$BIN" ] || { echo "cold_start.sh: $BIN not built" >&2; exit 2; }
mkdir -p "$OUT"

input_of() {
  case "$1" in
    ml-100k) echo "$DATA/ml-100k/ml-100k.inter" ;; # genres, titles, user attributes beside it
    taobao-40k) echo "$DATA/taobao-40k/UserBehavior.csv" ;; # Chinese titles, brand, category
    *) echo "$DATA/$1" ;;
  esac
}

# "hybrid+drop" is the hybrid model with id_dropout=0.3, "hybrid+bpr" with loss=bpr,
# "hybrid+noid" with ids=0 (features, attributes and history only)
sets_of() {
  case "$1" in
    hybrid+noid) echo "--model hybrid --set ids=0" ;;
    hybrid+drop) echo "--model hybrid --set id_dropout=0.3" ;;
    hybrid+bpr) echo "--model hybrid --set loss=bpr" ;;
    *) echo "--model $1" ;;
  esac
}

echo "| data | protocol | model | HR@10 [95 % CI] | NDCG@10 | P@10 | R@10 | AUC [95 % CI] | held-out only: HR@10 | AUC | train s |"
echo "| --- | --- | --- | --- | --- | --- | --- | --- | --- | --- | --- |"
for set in $SETS; do
  in=$(input_of "$set")
  if [ ! -f "$in" ]; then
    echo "cold_start.sh: $in not found: skipping $set" >&2
    continue
  fi
  sqd="$OUT/$set.sqd"
  [ -f "$sqd" ] || "$BIN" ingest -q "$in" -o "$sqd"
  for proto in $PROTOCOLS; do
    for model in $MODELS; do
      tag="$set.$proto.$model.s$SEED"
      # shellcheck disable=SC2046
      "$BIN" train -q "$sqd" $(sets_of "$model") --protocol "$proto" --seed "$SEED" \
        --threads "$THREADS" --json -o "$OUT/$tag.sqm" > "$OUT/$tag.train.json"
      "$BIN" eval "$OUT/$tag.sqm" "$sqd" --k 10 --threads "$THREADS" --json -q \
        > "$OUT/$tag.eval.json"
      python3 - "$OUT/$tag" "$set" "$proto" "$model" <<'EOF'
import json, sys
base, data, proto, model = sys.argv[1:]
t = json.load(open(base + ".train.json"))
e = json.load(open(base + ".eval.json"))
m, ci = e["metrics"], e["ci95"]
def f(x): return f"{x:.4f}"
row = [data, proto, model,
       f"{f(m['hr@10'])} [{f(ci['hr@10'][0])}, {f(ci['hr@10'][1])}]", f(m["ndcg@10"]),
       f(m["precision@10"]), f(m["recall@10"]),
       f"{f(m['auc'])} [{f(ci['auc'][0])}, {f(ci['auc'][1])}]"]
c = e.get("cold_only")
if c:
    row += [f(c["metrics"]["hr@10"]),
            f"{f(c['metrics']['auc'])} [{f(c['ci95']['auc'][0])}, {f(c['ci95']['auc'][1])}]"]
else:
    row += ["–", "–"]
row.append(f"{t['seconds']:.1f}")
print("| " + " | ".join(row) + " |")
EOF
    done
  done
done
