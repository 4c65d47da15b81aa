#!/usr/bin/env bash
# The main job: installs what is missing, builds, and trains the default VAE
# (784-400-20, Bernoulli decoder, Adam 1e-3, batch 128, 10 epochs) on Fashion-MNIST.
# Outputs go to runs/vae/ (or --out DIR); every other flag is passed to `vae train`.
# Safe to run again: when the output folder already holds a trained model, it says so and
# leaves it alone (pass --force to train again over it, or --resume to continue it).
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/install-deps.sh
bash scripts/build.sh >/dev/null

out=runs/vae
explicit=0
args=("$@")
for ((i = 0; i < ${#args[@]}; i++)); do
  case "${args[i]}" in
    --out) out="${args[i + 1]:-$out}" ;;
    --out=*) out="${args[i]#--out=}" ;;
    --force | --resume | --resume=*) explicit=1 ;;
  esac
done
if [ "$explicit" -eq 0 ] && [ -f "$out/model.safetensors" ]; then
  echo "train.sh: $out already holds a trained model ($out/model.safetensors); nothing to do."
  echo "  Its report: $out/report.html. To train again over it: bash scripts/train.sh --force;"
  echo "  to continue it: --resume $out/checkpoint.safetensors --epochs N; or choose another --out DIR."
  exit 0
fi
build/tools/vae train "$@"
