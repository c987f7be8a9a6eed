#!/usr/bin/env bash
# serve_content.sh — new items put over HTTP become recommendable through their tags (their
# content neighbours' scores); checks in tests/serve/serve_content.py.
set -euo pipefail
BIN=${SEQREC_BIN:?}
SRC=${SEQREC_SOURCE:-$(cd "$(dirname "$0")/../.." && pwd)}
command -v python3 > /dev/null || { echo "SKIP: python3 not found"; exit 77; }
T=$(mktemp -d)
trap 'rm -rf "$T"' EXIT
export SEQREC_BIN="$BIN" SEQREC_SOURCE="$SRC" SEQREC_TEST_TMP="$T"
rc=0
python3 "$SRC/tests/serve/serve_content.py" || rc=$?
[ "$rc" = 0 ] && echo "serve_content: ok" || echo "serve_content: FAILED (exit $rc)" >&2
exit "$rc"
