#!/usr/bin/env bash
# build.sh — configures and builds seqrec in build/ (warnings are errors).
# BUILD_DIR, CC and extra cmake arguments can be given: scripts/build.sh -DSEQREC_SANITIZE=ON
set -euo pipefail
cd "$(dirname "$0")/.."
BUILD_DIR=${BUILD_DIR:-build}
cmake -S . -B "$BUILD_DIR" -DCMAKE_BUILD_TYPE=RelWithDebInfo -DSEQREC_WERROR=ON "$@" >/dev/null
cmake --build "$BUILD_DIR" -j "$(nproc)" -- --no-print-directory
