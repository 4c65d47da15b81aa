#!/usr/bin/env bash
# The benchmark command: installs what is missing, builds, and prints our speed figures
# beside PyTorch's (see scripts/bench.py). Arguments go to bench.py.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/install-deps.sh
bash scripts/build.sh >/dev/null
/usr/bin/python3 scripts/bench.py "$@"
