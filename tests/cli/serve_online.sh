#!/usr/bin/env bash
# serve_online.sh — online learning in `seqrec serve`: a transition posted as events is learnt
# by POST /v1/admin/learn (and by the --online-learning thread) and shows in the recommendations.
# The checks are in tests/serve/serve_online.py (Python 3 standard library only).
set -euo pipefail
BIN=${SEQREC_BIN:?}
SRC=${SEQREC_SOURCE:-$(cd "$(dirname "$0")/../.." && pwd)}
command -v python3 > /dev/null || { echo "SKIP: python3 not found"; exit 77; }
T=$(mktemp -d)
trap 'rm -rf "$T"' EXIT
export SEQREC_BIN="$BIN" SEQREC_SOURCE="$SRC" SEQREC_TEST_TMP="$T"
rc=0
python3 "$SRC/tests/serve/serve_online.py" || rc=$?
[ "$rc" = 0 ] && echo "serve_online: ok" || echo "serve_online: FAILED (exit $rc)" >&2
exit "$rc"
