#!/usr/bin/env bash
# Configures (once) and compiles ./build-sanitize: clang, AddressSanitizer and
# UndefinedBehaviorSanitizer, and the libFuzzer targets of tests/fuzz. Used by
# scripts/sanitize.sh and scripts/fuzz.sh.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/install-deps.sh
if [ ! -f build-sanitize/build.ninja ]; then
  CXX=clang++ meson setup build-sanitize -Dnative=false -Dfuzz=enabled \
    -Dbuildtype=debugoptimized -Db_sanitize=address,undefined -Db_lundef=false
fi
meson compile -C build-sanitize
