#!/usr/bin/env bash
# Runs every fuzz target for SECONDS each (default 600), one after another, in the clang +
# ASan + UBSan build (./build-sanitize, scripts/build-sanitize.sh). The corpus each grows is kept
# in build-sanitize/fuzz-corpus/ for the next run; a finding is saved in
# build-sanitize/fuzz-artifacts/<target>/ and makes this script fail. Prints the executions
# each target survived.
#   bash scripts/fuzz.sh 600
set -euo pipefail
cd "$(dirname "$0")/.."
seconds=${1:-600}
bash scripts/build-sanitize.sh
export FUZZ_SECONDS=$seconds
export FUZZ_CORPUS="$PWD/build-sanitize/fuzz-corpus"
export FUZZ_ARTIFACTS="$PWD/build-sanitize/fuzz-artifacts"
export UBSAN_OPTIONS="print_stacktrace=1:halt_on_error=1"
status=0
summary=()
for seeds in tests/fuzz/seeds/*/; do
  name=$(basename "$seeds")
  log="build-sanitize/fuzz_$name.log"
  echo "fuzz_$name: $seconds s (log: $log)"
  result=ok
  bash tests/fuzz/run_fuzz.sh "build-sanitize/tests/fuzz/fuzz_$name" "$seeds" >"$log" 2>&1 || { result=FINDING; status=1; }
  runs=$(awk '/stat::number_of_executed_units/ {print $2}' "$log")
  summary+=("fuzz_$name: ${runs:-?} executions in $seconds s, $result")
done
printf '%s\n' "${summary[@]}"
exit $status
