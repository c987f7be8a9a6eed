#!/usr/bin/env bash
# run.sh SCRIPT.py — runs one of the server's black-box tests (tests/serve/serve_*.py, each
# registered with CTest as cli_<name> by CMakeLists.txt) in a temporary directory removed at
# the end, against $SEQREC_BIN; skips (exit 77) without python3. The script's docstring says
# what it checks.
set -euo pipefail
: "${SEQREC_BIN:?}"
SRC=${SEQREC_SOURCE:-$(cd "$(dirname "$0")/../.." && pwd)}
command -v python3 > /dev/null || { echo "SKIP: python3 not found"; exit 77; }
T=$(mktemp -d)
trap 'rm -rf "$T"' EXIT
export SEQREC_SOURCE="$SRC" SEQREC_TEST_TMP="$T"
name=$(basename "$1" .py)
rc=0
python3 "$1" || rc=$?
[ "$rc" = 0 ] && echo "$name: ok" || echo "$name: FAILED (exit $rc)" >&2
exit "$rc"
