#!/usr/bin/env bash
# Configures (once) and compiles the release build in ./build. Extra arguments go to
# `meson setup` on the first run, e.g. -Dnative=false.
set -euo pipefail
cd "$(dirname "$0")/.."
if [ ! -f build/build.ninja ]; then
  meson setup build "$@"
fi
meson compile -C build
