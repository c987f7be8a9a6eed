#!/usr/bin/env bash
# serve_crash.sh — `seqrec serve` durability: 4 rounds (--sync full and normal in turn) of 4
# clients posting events as fast as they can until the server is killed with SIGKILL at a
# random moment; after each kill the store
# passes PRAGMA integrity_check and holds every acknowledged event, and the restarted server
# shows them all in the users' histories. The checks are in tests/serve/serve_crash.py (Python 3
# standard library only); SEQREC_CRASH_SEED repeats a run.
set -euo pipefail
BIN=${SEQREC_BIN:?}
SRC=${SEQREC_SOURCE:-$(cd "$(dirname "$0")/../.." && pwd)}
command -v python3 > /dev/null || { echo "SKIP: python3 not found"; exit 77; }
T=$(mktemp -d)
trap 'rm -rf "$T"' EXIT
export SEQREC_BIN="$BIN" SEQREC_SOURCE="$SRC" SEQREC_TEST_TMP="$T"
rc=0
python3 "$SRC/tests/serve/serve_crash.py" || rc=$?
[ "$rc" = 0 ] && echo "serve_crash: ok" || echo "serve_crash: FAILED (exit $rc)" >&2
exit "$rc"
