#!/usr/bin/env bash
# Runs one libFuzzer target for FUZZ_SECONDS (default 30) starting from its seed corpus, and
# fails on any finding (a crash, a sanitizer report, an uncaught exception, a time-out or an
# allocation past 2 GB); libFuzzer then leaves the input in FUZZ_ARTIFACTS (default
# ./fuzz-artifacts/<target>/). New inputs go to FUZZ_CORPUS/<target> if set (scripts/fuzz.sh
# keeps them between runs), else to a temporary folder; the checked-in seeds are only read.
#   bash tests/fuzz/run_fuzz.sh build/tests/fuzz/fuzz_idx tests/fuzz/seeds/idx
set -euo pipefail
target=$1
seeds=$2
name=$(basename "$target")
artifacts="${FUZZ_ARTIFACTS:-$PWD/fuzz-artifacts}/$name/"
mkdir -p "$artifacts"
if [ -n "${FUZZ_CORPUS:-}" ]; then
  corpus="$FUZZ_CORPUS/$name"
  mkdir -p "$corpus"
else
  corpus=$(mktemp -d)
  trap 'rm -rf "$corpus"' EXIT
fi
# Leaks inside system libraries (fontconfig through cairo) are not ours: see tests/lsan.supp.
export LSAN_OPTIONS="${LSAN_OPTIONS:-suppressions=$(dirname "$0")/../lsan.supp:print_suppressions=0}"
"$target" -max_total_time="${FUZZ_SECONDS:-30}" -timeout=30 -rss_limit_mb=2048 -max_len=262144 \
  -print_final_stats=1 -artifact_prefix="$artifacts" "$corpus" "$seeds"
