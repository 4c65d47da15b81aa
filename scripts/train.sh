#!/usr/bin/env bash
# The main job: installs what is missing, builds, and trains the default VAE
# (784-400-20, Bernoulli decoder, Adam 1e-3, batch 128, 10 epochs) on Fashion-MNIST.
# Outputs go to runs/vae/ (or --out DIR); every other flag is passed to train_vae.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/install-deps.sh
bash scripts/build.sh >/dev/null
build/tools/train_vae "$@"
