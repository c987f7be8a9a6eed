#!/usr/bin/env bash
# test.sh — the whole test suite: installs what is missing, builds with gcc (warnings are
# errors) and runs every test; then builds with clang under AddressSanitizer and
# UndefinedBehaviorSanitizer, with the libFuzzer targets, and runs everything again (each fuzz
# target for a bounded time). Prints one summary line per run and a total line at the end.
set -uo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh || exit 1

jobs=$(nproc)
status=0
summary=()

run_suite() { # name build-dir cmake-args...
  local name=$1 dir=$2
  shift 2
  rm -f "$dir/ctest.log" # a failed build must not count an earlier run's tests
  echo "== $name: building in $dir"
  if ! BUILD_DIR=$dir bash scripts/build.sh "$@"; then
    echo "== $name: BUILD FAILED"
    status=1
    summary+=("$name: build failed")
    return
  fi
  echo "== $name: running tests"
  local log="$dir/ctest.log"
  (cd "$dir" && ctest --output-on-failure -j "$jobs" --timeout 900) 2>&1 | tee "$log"
  local rc=${PIPESTATUS[0]}
  [ "$rc" -eq 0 ] || status=1
  summary+=("$name: $(grep -E 'tests passed|tests failed' "$log" | tail -1)")
}

run_suite "gcc" build
# -O2 -g under the sanitizers (RelWithDebInfo, build.sh's default): at -O0 the model tests'
# few epochs of training took minutes each.
# One OpenMP thread by default under clang: its libomp and the libgomp that OpenBLAS's OpenMP
# build brings are two runtimes spinning for the same two cores (measured: the multi-task model
# test went from 28 s to over 600 s with two threads, nearly all in sched_yield and the kernel).
# Tests that compare thread counts still set them themselves.
export OMP_NUM_THREADS=1
CC=clang run_suite "asan+ubsan+fuzz" build-asan -DSEQREC_SANITIZE=ON -DSEQREC_FUZZ=ON \
  -DSEQREC_NATIVE=ON
unset OMP_NUM_THREADS

echo
echo "== summary"
for s in "${summary[@]}"; do echo "$s"; done
passed=0; failed=0; skipped=0
for d in build build-asan; do
  [ -f "$d/ctest.log" ] || continue
  p=$(grep -cE '^ *[0-9]+/[0-9]+ Test +#[0-9]+: .* +Passed' "$d/ctest.log")
  f=$(grep -cE '^ *[0-9]+/[0-9]+ Test +#[0-9]+: .*(\*\*\*Failed|\*\*\*Exception|\*\*\*Timeout|Not Run)' "$d/ctest.log")
  s=$(grep -cE '^ *[0-9]+/[0-9]+ Test +#[0-9]+: .*\*\*\*Skipped' "$d/ctest.log")
  passed=$((passed + p)); failed=$((failed + f)); skipped=$((skipped + s))
done
echo "total: $passed passed, $failed failed, $skipped skipped"
exit $status
