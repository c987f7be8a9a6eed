#!/usr/bin/env bash
# multitask_cli.sh — `seqrec train --tasks` end to end on a generated log: the per-task losses
# reach the metrics log, `seqrec eval --json` lists every task under "tasks" with its scenes, a
# model without next_item is validated by its tasks, and bad task lists fail with a clear message
# and no model file.
set -euo pipefail
BIN=${SEQREC_BIN:?}
T=$(mktemp -d)
trap 'rm -rf "$T"' EXIT
fail() { echo "FAIL: $*" >&2; exit 1; }
json_get() { python3 -c "import json,sys; d=json.load(sys.stdin); print(eval('d'+sys.argv[1]))" "$1"; }

$BIN generate -q --users 400 --items 150 --events 12000 --seed 4 -o "$T/g.csv"
$BIN ingest -q "$T/g.csv" -o "$T/g.sqd"
$BIN train --help | grep -q -- "--tasks" || fail "train --help lacks --tasks"

$BIN train -q "$T/g.sqd" --model sasrec --tasks next_item,next_behaviour,click,buy,value \
  --set sharing=ple --set epochs=2 --set hidden=16 --set maxlen=10 \
  --metrics-log "$T/m.jsonl" -o "$T/m.sqm"
[ -s "$T/m.sqm" ] || fail "no model file"
python3 - "$T/m.jsonl" <<'PY' || fail "metrics log"
import json, sys
lines = [json.loads(l) for l in open(sys.argv[1])]
ep = [l for l in lines if "epoch" in l]
assert ep and set(ep[-1]["task_loss"]) == {"next_item", "next_behaviour", "value", "click", "buy"}, ep
vt = [l for l in lines if "valid_tasks" in l]
assert vt and "auc" in vt[-1]["valid_tasks"]["buy"], vt
PY
E=$($BIN eval -q "$T/m.sqm" "$T/g.sqd" --json --bootstrap 50)
for k in "['tasks']['buy']['auc']" "['tasks']['click']['auc']" "['tasks']['next_behaviour']['accuracy']" \
         "['tasks']['value']['rmse']" "['tasks']['next_item']['ndcg@10']" \
         "['tasks']['buy']['scenes']['detail']['n']" "['metrics']['ndcg@10']"; do
  v=$(echo "$E" | json_get "$k") || fail "eval --json lacks $k"
  python3 -c "import sys; v=float(sys.argv[1]); assert v == v" "$v" || fail "$k is $v"
done
$BIN eval -q "$T/m.sqm" "$T/g.sqd" --bootstrap 20 > "$T/eval.txt"
grep -q "next_behaviour *macro_f1" "$T/eval.txt" || fail "text output"

# recommend by an objective: stated in the output, scores are probabilities, ordered
U=$(head -2 "$T/g.csv" | tail -1 | cut -d, -f1)
R=$($BIN recommend "$T/m.sqm" "$T/g.sqd" --user "$U" -k 5 --objective buy --json)
python3 - "$R" <<'PY' || fail "recommend --objective buy: $R"
import json, sys
r = json.loads(sys.argv[1])
assert r["score"] == "p(click) x p(buy | click)", r["score"]
s = [i["score"] for i in r["items"]]
assert len(s) == 5 and all(0 < x < 1 for x in s) and s == sorted(s, reverse=True), s
PY
if $BIN recommend "$T/m.sqm" "$T/g.sqd" --user "$U" --objective revenue 2> "$T/err"; then
  fail "revenue without a price accepted"
fi
grep -q "price" "$T/err" || fail "revenue error: $(cat "$T/err")"

# a model without next_item: validated by its tasks
$BIN train -q "$T/g.sqd" --model sasrec --tasks buy --set epochs=2 --set hidden=16 \
  --set maxlen=10 --json -o "$T/b.sqm" > "$T/b.json"
[ "$(json_get "['epochs']" < "$T/b.json")" = 2 ] || fail "tasks=buy training"

# eval --against: the task differences are over the tasks both models have (buy), each A - B
$BIN eval -q "$T/m.sqm" "$T/g.sqd" --against "$T/b.sqm" --bootstrap 100 --json > "$T/vs.json"
python3 - "$T/vs.json" <<'PY' || fail "eval --against tasks: $(cat "$T/vs.json")"
import json, sys
v = json.load(open(sys.argv[1]))
d = v["diff"]["tasks"]
assert set(d) == {"buy"}, set(d)
for k in ("auc", "cvr_auc", "logloss"):
    want = v["tasks"]["buy"][k] - v["against"]["tasks"]["buy"][k]
    assert abs(d["buy"][k] - want) < 1e-9, (k, d["buy"][k], want)
    lo, hi = d["buy"]["ci95"][k]
    assert lo <= d["buy"][k] + 1e-12 <= hi + 2e-12, (k, lo, hi)
PY

# bad task list, impossible task: clear message, non-zero exit, no file
if $BIN train -q "$T/g.sqd" --model sasrec --tasks next_item,clicks -o "$T/x.sqm" 2> "$T/err"; then
  fail "unknown task accepted"
fi
grep -q "clicks" "$T/err" || fail "message does not name the task: $(cat "$T/err")"
if $BIN train -q "$T/g.sqd" --model sasrec --tasks buy --set buy_behaviours=order -o "$T/x.sqm" 2> "$T/err"; then
  fail "unknown behaviour accepted"
fi
grep -q "order" "$T/err" || fail "message does not name the behaviour: $(cat "$T/err")"
[ ! -e "$T/x.sqm" ] || fail "a model file was written on failure"
echo "multitask_cli: ok"
