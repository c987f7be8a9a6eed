#!/usr/bin/env bash
# serve_api.sh — `seqrec serve` black-box: every route of docs/serve.md against running servers
# (health, info, metrics; recommendations with k, keep_seen, explain and batched scoring;
# read-your-writes; negative feedback; cold start; batches; similar; history; user deletion;
# item metadata; API keys and reload; body, batch and depth limits; rate limiting; A/B variants
# with per-variant metrics and hits; the access log's hashed ids; SIGTERM leaves a complete
# store). The checks are in tests/serve/serve_api.py (Python 3 standard library only).
set -euo pipefail
BIN=${SEQREC_BIN:?}
SRC=${SEQREC_SOURCE:-$(cd "$(dirname "$0")/../.." && pwd)}
command -v python3 > /dev/null || { echo "SKIP: python3 not found"; exit 77; }
T=$(mktemp -d)
trap 'rm -rf "$T"' EXIT
export SEQREC_BIN="$BIN" SEQREC_SOURCE="$SRC" SEQREC_TEST_TMP="$T"
rc=0
python3 "$SRC/tests/serve/serve_api.py" || rc=$?
[ "$rc" = 0 ] && echo "serve_api: ok" || echo "serve_api: FAILED (exit $rc)" >&2
exit "$rc"
