#!/usr/bin/env bash
# Data-parallel benchmark: epoch time of `vae train` (default VAE, Fashion-MNIST, batch 128)
# as one process with 2 threads and as `mpirun -np 2` with 1 thread each (allreduce blocking
# and overlapped with the backward sweep), and the allreduce's time per step. Needs a build
# with MPI; scripts/bench.sh runs it when there is one.
# Usage: scripts/bench_mpi.sh [ROUNDS (default 3)] [EPOCHS per run (default 1)]
# Each round runs every configuration once, one after the other (the two allreduce modes in
# alternating order), so that a change in the machine's load hits all of them; the best
# (smallest) figure of the rounds is reported.
set -euo pipefail
cd "$(dirname "$0")/.."
rounds=${1:-3}
epochs=${2:-1}
bash scripts/install-deps.sh >/dev/null
bash scripts/build.sh >/dev/null
vae=build/tools/vae
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
mpirun=(mpirun --oversubscribe --mca btl self,vader)
[ "$(id -u)" -eq 0 ] && mpirun+=(--allow-run-as-root)
train=(train --no-progress --epochs "$epochs")

# Mean of a run's metrics.csv "seconds" column (training only; evaluation is not in it).
epoch_seconds() { awk -F, 'NR > 1 { s += $6; n++ } END { printf "%.2f", s / n }' "$1/metrics.csv"; }
# The allreduce's milliseconds per step, from the line rank 0 prints after the last epoch.
allreduce_ms() { sed -n 's/^allreduce ([a-z]*): \([0-9.]*\) ms.*/\1/p' "$1" | tail -1; }
best() { tr ' ' '\n' | grep . | sort -g | head -1; }

declare -A seconds=() comm=()
load_before=$(cut -d' ' -f1-3 /proc/loadavg)
for round in $(seq "$rounds"); do
  "$vae" "${train[@]}" --threads 2 --out "$work/np1-$round" >"$work/np1-$round.log"
  seconds[np1]+=" $(epoch_seconds "$work/np1-$round")"
  modes=(blocking overlapped)
  [ $((round % 2)) -eq 0 ] && modes=(overlapped blocking)  # neither always runs first
  for mode in "${modes[@]}"; do
    "${mpirun[@]}" -np 2 "$vae" "${train[@]}" --threads 1 --allreduce "$mode" --out "$work/$mode-$round" \
      >"$work/$mode-$round.log"
    seconds[$mode]+=" $(epoch_seconds "$work/$mode-$round")"
    comm[$mode]+=" $(allreduce_ms "$work/$mode-$round.log")"
  done
done

echo "cpu: $(lscpu | sed -n 's/^Model name: *//p'), $(nproc) cores; load average before ${load_before}, after $(cut -d' ' -f1-3 /proc/loadavg)"
echo "seconds per epoch (training only), best of ${rounds} rounds (all rounds):"
echo "  -np 1 x 2 threads:                  $(echo "${seconds[np1]}" | best) (${seconds[np1]# })"
for mode in blocking overlapped; do
  printf "  -np 2 x 1 thread, %-10s allreduce: %s (%s)\n" "$mode" "$(echo "${seconds[$mode]}" | best)" "${seconds[$mode]# }"
done
echo "allreduce per step inside those runs, ms (waits for the other rank included), best (all):"
for mode in blocking overlapped; do
  printf "  %-10s %s (%s)\n" "$mode" "$(echo "${comm[$mode]}" | best)" "${comm[$mode]# }"
done
grep '^allreduce' "$work/blocking-1.log" | sed 's/.*(\(.* MB in .*message(s)\).*/  per step: \1/'
echo "the allreduce alone, no computation (build/bench/bench_allreduce):"
"${mpirun[@]}" -np 2 build/bench/bench_allreduce | sed 's/^/  /'
grep -h 'test' "$work/np1-1.log" | tail -1 | sed 's/^/-np 1: /'
grep -h 'test' "$work/overlapped-1.log" | tail -1 | sed 's/^/-np 2: /'
# Overlapped and blocking must agree bit for bit; -np 2 and -np 1 differ by rounding only.
/usr/bin/python3 - "$work/np1-1/model.safetensors" "$work/blocking-1/model.safetensors" \
  "$work/overlapped-1/model.safetensors" <<'PY'
import json, struct, sys
def weights(path):
    blob = open(path, "rb").read()
    (n,) = struct.unpack("<Q", blob[:8])
    header = json.loads(blob[8 : 8 + n])
    return {k: struct.unpack(f"<{(e['data_offsets'][1] - e['data_offsets'][0]) // 4}f",
                             blob[8 + n + e["data_offsets"][0] : 8 + n + e["data_offsets"][1]])
            for k, e in header.items() if k != "__metadata__"}
one, blocking, overlapped = (weights(p) for p in sys.argv[1:])
print("weights, overlapped vs blocking allreduce: %s" % ("bit-identical" if overlapped == blocking else "DIFFERENT"))
print("largest weight difference -np 2 vs -np 1: %.3g" %
      max(max(abs(x - y) for x, y in zip(one[k], blocking[k])) for k in one))
PY
