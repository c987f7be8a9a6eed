#!/usr/bin/env bash
# setup.sh — installs every Debian package seqrec needs to build, test and run, then the web
# dashboard's npm packages (web/package-lock.json, from the npm registry: `npm ci`) and builds
# the dashboard into web/dist. Idempotent and quiet when everything is already there. Needs root
# (or sudo) only when a Debian package is missing.
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
  chromium                            # the dashboard's and the report's browser tests
)
# node and npm build the dashboard: Debian's, unless a node is there already (a NodeSource
# nodejs bundles its own npm, which Debian's npm package would conflict with)
command -v node > /dev/null || PACKAGES+=(nodejs)
command -v npm > /dev/null || PACKAGES+=(npm)

missing=()
for p in "${PACKAGES[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if [ ${#missing[@]} -gt 0 ]; then
  SUDO=""
  if [ "$(id -u)" -ne 0 ]; then SUDO="sudo"; fi
  echo "setup: installing ${missing[*]}" >&2
  export DEBIAN_FRONTEND=noninteractive
  $SUDO apt-get update -qq
  $SUDO apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
fi

# the dashboard: npm ci when the lockfile changed since the last install, then a build (offline,
# a second) when a source is newer than web/dist
cd "$(dirname "$0")/../web"
if [ ! -f node_modules/.package-lock.json ] || [ package-lock.json -nt node_modules/.package-lock.json ]; then
  echo "setup: npm ci in web/" >&2
  npm ci --no-audit --no-fund --loglevel=error >/dev/null
  touch node_modules/.package-lock.json
fi
if [ ! -f dist/index.html ] || [ -n "$(find src index.html build.mjs package-lock.json -newer dist/index.html 2>/dev/null | head -1)" ]; then
  node build.mjs >/dev/null
fi
