#!/usr/bin/env bash
# multitask.sh — the multi-task benchmark of docs/benchmarks.md: single-task models against
# shared-bottom, MMoE and PLE multi-task SASRec, every task's test metrics with 95 % bootstrap
# intervals and the training time, on
#   gen      a generated log (--events, default 300,000) with the realistic view → click → cart →
#            buy funnel (direct and delayed buys, abandoned carts, a per-user purchase
#            propensity), three scenes and context fields, and the oracle's row: the best
#            achievable click/buy AUC and next-behaviour accuracy/macro-F1 on the same test
#            events (docs/generator.md)
#   ml-100k  next item and rating regression (../shared/data/ml-100k)
#   taobao   pv/fav/cart/buy with categories and Chinese titles: a smoke test of the format
#
#   bench/multitask.sh [--sets "gen ml-100k taobao"] [--events N] [--epochs E] [--threads 2]
#                      [--out DIR] [--models "single:buy mmoe ..."] [--set key=value]...
#
# --models keeps only the named rows (oracle, single:TASK, shared_bottom, mmoe, ple, and
# `paired`: the table of each multi-task model against each single-task one, A − B with
# paired intervals, from the model files in --out), so that a long run can be split over
# several processes sharing --out (generate the set once first).
#
# A benchmark, not a test: minutes to hours on 2 cores depending on --events.
set -euo pipefail
cd "$(dirname "$0")/.."
BIN=${SEQREC_BIN:-build/seqrec}
DATA=${SEQREC_DATA:-../shared/data}
SETS="gen ml-100k taobao"
EVENTS=300000
EPOCHS=20
THREADS=2
OUT=out/bench-multitask
MODELS=""
EXTRA=()
while [ $# -gt 0 ]; do
  case "$1" in
    --sets) SETS=$2; shift 2 ;;
    --events) EVENTS=$2; shift 2 ;;
    --epochs) EPOCHS=$2; shift 2 ;;
    --threads) THREADS=$2; shift 2 ;;
    --out) OUT=$2; shift 2 ;;
    --models) MODELS=$2; shift 2 ;;
    --set) EXTRA+=(--set "$2"); shift 2 ;;
    -h|--help) sed -n '2,18p' "$0" | sed 's/^# \{0,1\}//'; exit 0 ;;
    *) echo "multitask.sh: unknown argument $1 (see --help)" >&2; exit 2 ;;
  esac
done
[ -x "$BIN" ] || { echo "multitask.sh: $BIN not built (scripts/build.sh)" >&2; exit 2; }
mkdir -p "$OUT"

# wanted NAME: is the row NAME asked for (all rows without --models)?
wanted() { [ -z "$MODELS" ] || [[ " $MODELS " == *" $1 "* ]]; }

# run SET NAME TASKS [extra args...]: trains, evaluates, prints one row
run() {
  local set=$1 name=$2 tasks=$3
  shift 3
  wanted "$name" || return 0
  local sqd="$OUT/$set.sqd" base="$OUT/$set.$name"
  echo "multitask.sh: $set $name ..." >&2
  local cmd="seqrec train $set.sqd --model sasrec --tasks $tasks $* --set epochs=$EPOCHS${EXTRA[*]:+ ${EXTRA[*]}} --threads $THREADS -o m.sqm"
  if ! "$BIN" train "$sqd" --model sasrec --tasks "$tasks" "$@" --set "epochs=$EPOCHS" \
      ${EXTRA[@]+"${EXTRA[@]}"} --threads "$THREADS" -o "$base.sqm" --json \
      --metrics-log "$base.jsonl" > "$base.train.json" 2> "$base.train.err"; then
    echo "| $set | $name | failed: $(tail -1 "$base.train.err") |"
    return
  fi
  "$BIN" eval -q "$base.sqm" "$sqd" --threads "$THREADS" --json --bootstrap 500 > "$base.eval.json"
  python3 - "$base.train.json" "$base.eval.json" "$set" "$name" "$cmd" <<'PY'
import json, sys
tr, ev = json.load(open(sys.argv[1])), json.load(open(sys.argv[2]))
t = ev.get("tasks", {})
def cell(task, metric):
    x = t.get(task, {})
    v = x.get(metric)
    if v is None:
        return "–"
    lo, hi = x.get("ci95", {}).get(metric, [v, v])
    return f"{v:.4f} [{lo:.4f}, {hi:.4f}]"
cols = [cell("next_item", "ndcg@10"), cell("next_behaviour", "accuracy"),
        cell("next_behaviour", "macro_f1"), cell("click", "auc"), cell("buy", "auc"),
        cell("buy", "cvr_auc"), cell("value", "rmse"), cell("value", "mae")]
maj = t.get("next_behaviour", {}).get("majority_accuracy")
print(f"| {sys.argv[3]} | {sys.argv[4]} | " + " | ".join(cols) +
      f" | {'%.4f' % maj if maj is not None else '–'} | {tr['seconds']:.0f} s, "
      f"{tr['epochs']} ep ({tr.get('best_epoch', 1)}) | `{sys.argv[5]}` |")
PY
}

# paired SET: each multi-task model against the single-task model of each task it shares with it
# (`seqrec eval --against`), the same test events: A − B with a paired 95 % interval, * when it
# excludes 0. Printed after the table, for the models whose files are in --out.
paired() {
  local set=$1 sqd="$OUT/$1.sqd"
  echo
  echo "| data | multi-task model | against | metric | A − B [paired 95 % CI] |"
  echo "| --- | --- | --- | --- | --- |"
  for s in shared_bottom mmoe ple; do
    for t in next_item next_behaviour click buy value; do
      local a="$OUT/$set.$s.sqm" b="$OUT/$set.single:$t.sqm"
      [ -f "$a" ] && [ -f "$b" ] || continue
      "$BIN" eval -q "$a" "$sqd" --against "$b" --threads "$THREADS" --json --bootstrap 500 \
        > "$OUT/$set.$s.vs.$t.json"
      python3 - "$OUT/$set.$s.vs.$t.json" "$set" "$s" "$t" <<'PY'
import json, sys
d = json.load(open(sys.argv[1]))["diff"]["tasks"]
task = sys.argv[4]
for k in {"next_item": ["ndcg@10"], "next_behaviour": ["accuracy", "macro_f1"],
          "click": ["auc"], "buy": ["auc", "cvr_auc"], "value": ["rmse"]}[task]:
    x = d.get(task, {})
    if x.get(k) is None:
        continue
    lo, hi = x["ci95"][k]
    star = " *" if lo > 0 or hi < 0 else ""
    print(f"| {sys.argv[2]} | {sys.argv[3]} | single:{task} | {task} {k} | "
          f"{x[k]:+.4f} [{lo:+.4f}, {hi:+.4f}]{star} |")
PY
    done
  done
}

echo "| data | model | next_item NDCG@10 | next_behaviour accuracy | macro-F1 | click AUC | buy (CTCVR) AUC | CVR AUC | value RMSE | value MAE | majority accuracy | training | command |"
echo "| --- | --- | --- | --- | --- | --- | --- | --- | --- | --- | --- | --- | --- |"
for set in $SETS; do
  sqd="$OUT/$set.sqd"
  case "$set" in
    gen)
      if [ ! -f "$sqd" ]; then
        "$BIN" generate -q --users $((EVENTS / 50)) --items $((EVENTS / 500 + 200)) \
          --events "$EVENTS" --behaviours view,click,cart,buy --funnel realistic \
          --oracle "$OUT/gen.oracle.tsv" --seed 1 -o "$OUT/gen.csv"
        "$BIN" ingest -q "$OUT/gen.csv" -o "$sqd"
      fi
      if wanted oracle; then
        python3 scripts/gen_ceiling.py --json "$OUT/gen.oracle.tsv" > "$OUT/gen.oracle.json"
        python3 - "$OUT/gen.oracle.json" <<'PY'
import json, sys
r = json.load(open(sys.argv[1]))
f = lambda k: "–" if r.get(k) is None else f"{r[k]:.4f}"
cols = ["–", f("next_behaviour_accuracy"), f("next_behaviour_macro_f1"), f("click_auc"),
        f("buy_auc"), "–", "–", "–", f("majority_accuracy"), "–"]
print("| gen | oracle (best achievable) | " + " | ".join(cols) +
      f" | `scripts/gen_ceiling.py gen.oracle.tsv` (n = {r['n']}) |")
PY
      fi
      all=next_item,next_behaviour,click,buy
      for t in next_item next_behaviour click buy; do run gen "single:$t" "$t"; done
      for s in shared_bottom mmoe ple; do run gen "$s" "$all" --set sharing=$s; done
      if wanted paired; then paired gen; fi
      ;;
    ml-100k)
      in="$DATA/ml-100k/ml-100k.inter"
      [ -f "$in" ] || { echo "multitask.sh: $in not found: skipping ml-100k" >&2; continue; }
      [ -f "$sqd" ] || "$BIN" ingest -q "$in" -o "$sqd"
      run ml-100k "single:next_item" next_item
      run ml-100k "single:value" value
      for s in shared_bottom mmoe ple; do run ml-100k "$s" next_item,value --set sharing=$s; done
      if wanted paired; then paired ml-100k; fi
      ;;
    taobao)
      in="$DATA/taobao-40k/UserBehavior.csv"
      [ -f "$in" ] || { echo "multitask.sh: $in not found: skipping taobao" >&2; continue; }
      [ -f "$sqd" ] || "$BIN" ingest -q "$in" -o "$sqd"
      run taobao mmoe next_item,next_behaviour,click,buy --set sharing=mmoe
      ;;
    *) echo "multitask.sh: unknown set $set" >&2 ;;
  esac
done
