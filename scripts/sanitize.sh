#!/usr/bin/env bash
# The test suite again, built by clang with AddressSanitizer and UndefinedBehaviorSanitizer
# (and the fuzz targets, each run for FUZZ_SECONDS, default 30) in ./build-sanitize. Any
# sanitizer report fails the test that raised it. Extra arguments go to `meson test`
# (e.g. test names).
#   bash scripts/sanitize.sh                  # what CI runs after scripts/test.sh
#   FUZZ_SECONDS=5 bash scripts/sanitize.sh   # a quicker local run
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/build-sanitize.sh
# Leaks inside system libraries are not ours: tests/lsan.supp lists each, with the reason.
export ASAN_OPTIONS="detect_leaks=1:abort_on_error=0:strict_string_checks=1:detect_stack_use_after_return=1"
export LSAN_OPTIONS="suppressions=$PWD/tests/lsan.supp:print_suppressions=0"
export UBSAN_OPTIONS="print_stacktrace=1:halt_on_error=1"
export FUZZ_ARTIFACTS="$PWD/build-sanitize/fuzz-artifacts"
# The packaging suite (install into a prefix, subproject) builds programs against the library
# with other compilers and flags, which an ASan-instrumented library cannot serve; the release
# build runs it.
meson test -C build-sanitize --print-errorlogs --timeout-multiplier 4 --no-suite packaging "$@"
