#!/usr/bin/env bash
# The test command: installs what is missing, builds, and runs every test suite.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/install-deps.sh
bash scripts/build.sh
status=0
meson test -C build --print-errorlogs "$@" | tee build/meson-test.out || status=$?
# One plain closing line, whatever reads this log.
passed=$(awk '/^Ok:/ {print $2}' build/meson-test.out)
failed=$(awk '/^(Fail|Timeout):/ {n += $2} END {print n + 0}' build/meson-test.out)
skipped=$(awk '/^Skipped:/ {print $2}' build/meson-test.out)
echo "${passed:-0} passed, ${failed} failed, ${skipped:-0} skipped"
exit $status
