#!/usr/bin/python3
"""The speed benchmark: our figures and PyTorch's, side by side, in one invocation.

  bash scripts/bench.sh            (installs, builds, then runs this)

Prints seconds per training epoch of the default VAE (ours, and PyTorch 1.13 at its best
thread setting, with the ratio), GEMM GFLOP/s against OpenBLAS on the model's shapes,
the per-op overhead of record + backward, heap allocations per step, and the peak RSS of
train_vae. Timings on shared machines drift: compare within one run.
"""
import argparse
import json
import os
import subprocess
import sys

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def run_json_lines(cmd, env=None):
    out = subprocess.run(cmd, capture_output=True, text=True, env=env, stdin=subprocess.DEVNULL)
    if out.returncode not in (0,):
        raise RuntimeError(f"{' '.join(cmd)} failed ({out.returncode}):\n{out.stderr}")
    return [json.loads(line) for line in out.stdout.splitlines() if line.startswith("{")]


def pytorch_best(epochs, data):
    """Seconds per epoch of the reference model at each thread setting; the fastest wins."""
    try:
        import torch  # noqa: F401
    except ImportError:
        return None, []
    settings = [(1, 2), (2, 1), (2, 2), (1, 1)]  # (torch threads, OpenBLAS threads)
    results = []
    for torch_threads, blas_threads in settings:
        env = dict(os.environ, OPENBLAS_NUM_THREADS=str(blas_threads), OMP_NUM_THREADS=str(torch_threads))
        lines = run_json_lines([sys.executable, os.path.join(ROOT, "scripts", "vae_pytorch.py"), "train",
                                "--epochs", str(epochs), "--threads", str(torch_threads), "--data", data], env)
        best = min(line["seconds"] for line in lines)
        label = f"torch.set_num_threads({torch_threads}), OPENBLAS_NUM_THREADS={blas_threads}"
        print(f"  PyTorch, {label}: {best:.3f} s/epoch", flush=True)
        results.append((best, label))
    return min(results), results


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--build", default=os.path.join(ROOT, "build"))
    parser.add_argument("--data", default="/usr/share/datasets/fashion-mnist")
    parser.add_argument("--epochs", type=int, default=3, help="epochs timed per side (the best counts)")
    parser.add_argument("--skip-pytorch", action="store_true")
    args = parser.parse_args()
    bench_vae = os.path.join(args.build, "bench", "bench_vae")
    bench_gemm = os.path.join(args.build, "bench", "bench_gemm")
    train_vae = os.path.join(args.build, "tools", "train_vae")

    print("== GEMM on the VAE's shapes (ours vs OpenBLAS, 2 threads)", flush=True)
    subprocess.run([bench_gemm], check=True)

    print(f"\n== ours: default VAE on Fashion-MNIST, best of {args.epochs} epochs", flush=True)
    ours = run_json_lines([bench_vae, "--json", "--epochs", str(args.epochs), "--data", args.data,
                           "--train-vae", train_vae])[0]
    print(f"  ours: {ours['epoch_seconds']:.3f} s/epoch ({ours['threads']} threads)", flush=True)

    best = None
    if not args.skip_pytorch:
        print(f"\n== PyTorch (python3-torch): the same model, best of {args.epochs} epochs per setting", flush=True)
        best, _ = pytorch_best(args.epochs, args.data)
        if best is None:
            print("  python3-torch is not installed: no reference")

    print("\n== summary")
    print(f"  epoch time, ours:              {ours['epoch_seconds']:.3f} s")
    if best:
        print(f"  epoch time, PyTorch best:      {best[0]:.3f} s  ({best[1]})")
        print(f"  ratio ours / PyTorch:          {ours['epoch_seconds'] / best[0]:.2f}")
    print(f"  per-op overhead:               {ours['per_op_ns']:.1f} ns (record + backward, 1 element)")
    print(f"  heap allocations per step:     {ours['allocations_per_step']:.3f} (after warm-up)")
    print(f"  peak RSS, train_vae 1 epoch:   {ours['peak_rss_mb']:.1f} MB")

    from bench_conv import conv_section  # scripts/bench_conv.py: the conv layers and the conv VAE
    conv_section(args.build, args.data, args.epochs, 0, args.skip_pytorch)


if __name__ == "__main__":
    main()
