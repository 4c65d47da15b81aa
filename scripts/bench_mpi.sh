#!/usr/bin/env bash
# Data-parallel benchmark: epoch time of `vae train` (default VAE, Fashion-MNIST, batch 128)
# as one process with 2 threads and as `mpirun -np 2` with 1 thread each, and the allreduce
# time per step. Usage: scripts/bench_mpi.sh [EPOCHS (default 2)]. Needs a build with MPI.
set -euo pipefail
cd "$(dirname "$0")/.."
epochs=${1:-2}
bash scripts/install-deps.sh >/dev/null
bash scripts/build.sh >/dev/null
vae=build/tools/vae
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
mpirun=(mpirun --oversubscribe --mca btl self,vader)
[ "$(id -u)" -eq 0 ] && mpirun+=(--allow-run-as-root)

# Mean of the metrics.csv "seconds" column (training only; evaluation is not in it).
epoch_seconds() { awk -F, 'NR > 1 { s += $6; n++ } END { printf "%.2f", s / n }' "$1/metrics.csv"; }

"$vae" train --no-progress --epochs "$epochs" --threads 2 --out "$work/np1" >"$work/np1.log"
"${mpirun[@]}" -np 2 "$vae" train --no-progress --epochs "$epochs" --threads 1 --out "$work/np2" >"$work/np2.log"

one=$(epoch_seconds "$work/np1")
two=$(epoch_seconds "$work/np2")
echo "cpu: $(lscpu | sed -n 's/^Model name: *//p')"
echo "epoch time, -np 1 x 2 threads: ${one} s"
echo "epoch time, -np 2 x 1 thread:  ${two} s  (ratio $(awk -v a="$two" -v b="$one" 'BEGIN { printf "%.2f", a / b }'))"
grep '^allreduce:' "$work/np2.log" | tail -1
grep -h 'test' "$work/np1.log" | tail -1 | sed 's/^/-np 1: /'
grep -h 'test' "$work/np2.log" | tail -1 | sed 's/^/-np 2: /'
# How far apart the two runs' weights are (rounding only: same batches, same noise).
/usr/bin/python3 - "$work/np1/model.safetensors" "$work/np2/model.safetensors" <<'PY'
import json, struct, sys
def weights(path):
    blob = open(path, "rb").read()
    (n,) = struct.unpack("<Q", blob[:8])
    header = json.loads(blob[8 : 8 + n])
    return {k: struct.unpack(f"<{(e['data_offsets'][1] - e['data_offsets'][0]) // 4}f",
                             blob[8 + n + e["data_offsets"][0] : 8 + n + e["data_offsets"][1]])
            for k, e in header.items() if k != "__metadata__"}
a, b = weights(sys.argv[1]), weights(sys.argv[2])
print("largest weight difference -np 2 vs -np 1: %.3g" % max(max(abs(x - y) for x, y in zip(a[k], b[k])) for k in a))
PY
