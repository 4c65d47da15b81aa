#!/usr/bin/env bash
# Configures (once) and compiles ./build-sanitize: clang, AddressSanitizer and
# UndefinedBehaviorSanitizer, and the libFuzzer targets of tests/fuzz. Used by
# scripts/sanitize.sh and scripts/fuzz.sh.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/install-deps.sh
if [ ! -f build-sanitize/build.ninja ]; then
  # -Dmpi=disabled: this second build is also the one that shows the project builds and
  # passes its tests without MPI (the release build uses it when installed).
  CXX=clang++ meson setup build-sanitize -Dnative=false -Dfuzz=enabled -Dmpi=disabled \
    -Dbuildtype=debugoptimized -Db_sanitize=address,undefined -Db_lundef=false
fi
meson compile -C build-sanitize
