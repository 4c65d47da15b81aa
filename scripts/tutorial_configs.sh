#!/usr/bin/env bash
# Trains the configurations users bring from common VAE tutorials, one after another, each
# into runs/<name>/ (README's results table comes from these runs). Assumes a build in build/
# (scripts/train.sh or scripts/build.sh makes one; BUILD=dir to use another). Extra arguments go to every run.
set -euo pipefail
cd "$(dirname "$0")/.."
BUILD=${BUILD:-build}
T=$BUILD/tools/train_vae
# A configuration whose folder already holds a trained model is skipped (pass --force to
# train them all again), so the script is safe to run again.
run() {
  local name=$1; shift
  if [[ -f "runs/$name/model.safetensors" && " $* " != *" --force "* ]]; then
    echo "== $name: already trained (runs/$name/model.safetensors), skipped"
    return
  fi
  echo "== $name: train_vae $*"; "$T" --out "runs/$name" --no-progress "$@"
}

run a-latent2-learned-variance --hidden 256 --latent 2 --decoder gaussian-learned --batch 32 "$@"
run b-128-64-beta0.01 --hidden 128,64 --latent 16 --beta 0.01 --batch 64 "$@"
run c-128-64-32-mse --hidden 128,64,32 --decoder gaussian --batch 128 "$@"
run d-beta4 --beta 4 "$@"
"$BUILD"/datasets/make_manifold_data runs/manifold-data
run e-vectors-100 --data runs/manifold-data --decoder gaussian --hidden 64 --latent 5 "$@"
run f-linear --hidden none "$@"
