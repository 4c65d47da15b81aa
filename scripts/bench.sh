#!/usr/bin/env bash
# The benchmark command: installs what is missing, builds, and prints our speed figures
# beside PyTorch's (see scripts/bench.py), then, in a build with MPI, the data-parallel
# figures (scripts/bench_mpi.sh). Arguments go to bench.py.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/install-deps.sh
bash scripts/build.sh >/dev/null
# The libtorch reference is not built by default (bench/meson.build); where libtorch is installed,
# meson defined it and this builds it.
if meson introspect build --targets | grep -q '"name": "bench_libtorch"'; then
  meson compile -C build bench_libtorch >/dev/null
fi
/usr/bin/python3 scripts/bench.py "$@"
# bench_allreduce is built only when meson found MPI.
if [ -x build/bench/bench_allreduce ]; then
  echo
  echo "data-parallel training (scripts/bench_mpi.sh):"
  bash scripts/bench_mpi.sh
fi
