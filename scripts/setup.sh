#!/usr/bin/env bash
# setup.sh — installs every Debian package seqrec needs to build, test and run. Idempotent and
# quiet when everything is already there. Needs root (or sudo) only when something is missing.
set -euo pipefail

PACKAGES=(
  build-essential cmake pkg-config    # toolchain
  clang libclang-rt-14-dev libomp-dev # sanitizer and libFuzzer builds
  zlib1g-dev                          # gzip input
  libopenblas-openmp-dev              # matrix work: the OpenMP build (docs/nn.md, "Threads")
  libcjson-dev                        # JSON
  libcmocka-dev                       # unit tests
  libsqlite3-dev libmicrohttpd-dev    # event store and HTTP (serve)
  wrk                                 # HTTP load (serve soak test, bench/serve.sh)
  python3 curl                        # test helpers, the demo's HTTP examples
)

missing=()
for p in "${PACKAGES[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if [ ${#missing[@]} -eq 0 ]; then
  exit 0
fi

SUDO=""
if [ "$(id -u)" -ne 0 ]; then SUDO="sudo"; fi
echo "setup: installing ${missing[*]}" >&2
export DEBIAN_FRONTEND=noninteractive
$SUDO apt-get update -qq
$SUDO apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
