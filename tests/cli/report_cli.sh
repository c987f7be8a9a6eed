#!/usr/bin/env bash
# report_cli.sh — `seqrec report`: --help; the default output (RUN.html beside the log); as many
# <svg> charts as it says, each with its data points; -q prints nothing, --json one object;
# every run of the log in the runs table; bad input (a missing log, a malformed line, a log
# with no run, a bad --eval-json line) fails with the file (and line) named and leaves no file.
# (tests/web/report.mjs opens the file in chromium with the network off.)
set -euo pipefail
BIN=${SEQREC_BIN:?}
T=$(mktemp -d)
trap 'rm -rf "$T"' EXIT
fail() { echo "FAIL: $*" >&2; exit 1; }
export OMP_NUM_THREADS=1

$BIN report --help | grep -q "usage: seqrec report" || fail "report --help"
$BIN --help | grep -q "report" || fail "seqrec --help lacks report"
$BIN generate -q --users 150 --items 100 --events 3000 --seed 2 -o "$T/g.csv"
$BIN ingest -q "$T/g.csv" -o "$T/g.sqd"
$BIN train -q "$T/g.sqd" --model pop --metrics-log "$T/run.jsonl" -o "$T/p.sqm"
$BIN train -q "$T/g.sqd" --model sasrec --set epochs=3 --set valid_every=1 --set hidden=16 \
  --set maxlen=20 --metrics-log "$T/run.jsonl" -o "$T/s.sqm"
[ "$(grep -c '"epoch"' "$T/run.jsonl")" = 3 ] || fail "3 epoch lines expected"
[ "$(grep -c '"output"' "$T/run.jsonl")" = 2 ] || fail "a summary line per run expected"

out=$($BIN report "$T/run.jsonl")
[ -s "$T/run.html" ] || fail "default output run.html not written"
echo "$out" | grep -q "wrote $T/run.html: 2 runs, 4 charts" || fail "report said: $out"
[ "$(grep -o '<svg ' "$T/run.html" | wc -l)" = 4 ] || fail "4 charts expected"
grep -q 'data-points="3"' "$T/run.html" || fail "the loss chart has 3 points"
! grep -q 'data-points="0"' "$T/run.html" || fail "an empty chart"
grep -q "pop #1" "$T/run.html" && grep -q "sasrec #2" "$T/run.html" || fail "runs table"
[ -z "$($BIN report -q "$T/run.jsonl" -o "$T/q.html")" ] || fail "-q printed something"
[ -s "$T/q.html" ] || fail "-q wrote nothing"
j=$($BIN report --json "$T/run.jsonl" -o "$T/j.html")
python3 -c 'import json,sys; o=json.loads(sys.argv[1]); assert o["runs"]==2 and o["charts"]==4 and o["points"]==12, o' "$j" \
  || fail "--json: $j"

expect_fail() { # what, expected message, args...
  local what=$1 msg=$2
  shift 2
  local err
  if err=$($BIN report "$@" 2>&1); then fail "$what: accepted"; fi
  echo "$err" | grep -qF "$msg" || fail "$what: said '$err', expected '$msg'"
}
expect_fail "missing log" "$T/none.jsonl: No such file" "$T/none.jsonl" -o "$T/x.html"
printf '{"epoch":1,"loss":2}\nnot json\n' > "$T/bad.jsonl"
expect_fail "malformed line" "$T/bad.jsonl:2: not a JSON object" "$T/bad.jsonl" -o "$T/x.html"
: > "$T/empty.jsonl"
expect_fail "empty log" "no run in the log" "$T/empty.jsonl" -o "$T/x.html"
echo '{"metrics":{}}' > "$T/e.json"; echo '[1]' >> "$T/e.json"
expect_fail "bad eval line" "$T/e.json:2: not a \`seqrec eval --json\` object" "$T/run.jsonl" \
  --eval-json "$T/e.json" -o "$T/x.html"
[ ! -e "$T/x.html" ] || fail "a failed report left a file"
echo "report_cli: ok"
