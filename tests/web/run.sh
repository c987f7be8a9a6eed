#!/usr/bin/env bash
# run.sh TEST.mjs — runs one browser test (tests/web/*.mjs, each registered with CTest as
# web_<name> by CMakeLists.txt) with playwright-core driving Debian's chromium headless, in a
# temporary directory removed at the end. The dashboard is built from web/src into that
# directory first (esbuild, offline), so the test sees the current sources. Screenshots go to
# build/artefacts/web/ (beside $SEQREC_BIN). Skips (exit 77) with the reason when node,
# chromium or web/node_modules (scripts/setup.sh runs npm ci) is missing.
set -euo pipefail
: "${SEQREC_BIN:?}"
SRC=${SEQREC_SOURCE:-$(cd "$(dirname "$0")/../.." && pwd)}
CHROMIUM=${SEQREC_CHROMIUM:-/usr/bin/chromium}
command -v node > /dev/null || { echo "SKIP: node not found (scripts/setup.sh installs nodejs)"; exit 77; }
[ -x "$CHROMIUM" ] || { echo "SKIP: $CHROMIUM not found (scripts/setup.sh installs chromium)"; exit 77; }
[ -d "$SRC/web/node_modules/playwright-core" ] && [ -d "$SRC/web/node_modules/esbuild" ] || {
  echo "SKIP: web/node_modules is missing (scripts/setup.sh runs npm ci in web/)"; exit 77; }
T=$(mktemp -d)
trap 'rm -rf "$T"' EXIT
node "$SRC/web/build.mjs" "$T/dist" > /dev/null
ART=${SEQREC_ARTEFACTS:-$(dirname "$SEQREC_BIN")/artefacts/web}
mkdir -p "$ART"
export SEQREC_SOURCE="$SRC" SEQREC_TEST_TMP="$T" SEQREC_CHROMIUM="$CHROMIUM" \
  SEQREC_DASHBOARD="$T/dist" SEQREC_ARTEFACTS="$ART" NODE_PATH="$SRC/web/node_modules"
name=$(basename "$1" .mjs)
rc=0
node "$1" || rc=$?
[ "$rc" = 0 ] && echo "$name: ok" || echo "$name: FAILED (exit $rc)" >&2
exit "$rc"
