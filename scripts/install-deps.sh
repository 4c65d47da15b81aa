#!/usr/bin/env bash
# Installs every Debian 12 package that the build, the tests, the benchmark and the main job
# need. This list is the only one: README's commands and .ci/run both come through here.
# Safe to run again: when everything is present it changes nothing and touches no network.
set -euo pipefail

PACKAGES=(
  # toolchain and build
  g++ pkg-config meson ninja-build cmake
  # the second compiler, its sanitizer and libFuzzer runtimes, and llvm-symbolizer for their
  # stack traces (scripts/sanitize.sh, scripts/fuzz.sh)
  clang libclang-rt-14-dev llvm
  # libraries (cmake lets meson read doctest's CMake package)
  libxtensor-dev libxsimd-dev doctest-dev libfmt-dev zlib1g-dev
  nlohmann-json3-dev libpng-dev libjpeg-dev libzip-dev libcli11-dev libopenblas-dev
  libtomlplusplus-dev
  libcairo2-dev fonts-dejavu-core
  # dot renders the tape's graph (Tape::to_dot; docs/autograd.md)
  graphviz
  # the real data: Fashion-MNIST in IDX format under /usr/share/datasets/fashion-mnist
  dataset-fashion-mnist
  # reference and interoperability checks (numpy reads our checkpoints; PyTorch is the baseline)
  python3 python3-numpy python3-torch
  # libtorch C++ (the same 1.13.1 as python3-torch), the C++ reference of scripts/bench.sh
  libtorch-dev
  # the report.html test opens the page in headless Chromium
  chromium
  # data-parallel training over MPI (meson -Dmpi=auto finds it; the mpirun tests use it)
  libopenmpi-dev openmpi-bin
)

missing=()
for p in "${PACKAGES[@]}"; do
  if ! dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed"; then
    missing+=("$p")
  fi
done

if [ ${#missing[@]} -eq 0 ]; then
  echo "install-deps: all ${#PACKAGES[@]} packages present"
  exit 0
fi

SUDO=""
if [ "$(id -u)" -ne 0 ]; then
  command -v sudo >/dev/null || { echo "install-deps: run as root (missing: ${missing[*]})" >&2; exit 1; }
  SUDO="sudo"
fi
echo "install-deps: installing ${missing[*]}"
export DEBIAN_FRONTEND=noninteractive
$SUDO apt-get update
$SUDO apt-get install -y --no-install-recommends "${missing[@]}"
