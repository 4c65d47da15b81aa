#!/usr/bin/python3
"""The speed benchmark: our figures, the machine's and the references', side by side, in one invocation.

  bash scripts/bench.sh            (installs, builds, then runs this)

Prints, for the default VAE on Fashion-MNIST:
  - the machine's arithmetic peak (an FMA loop of ours on the threads training uses) and the
    epoch's efficiency: (GEMM FLOPs of one epoch, from the model's shapes / epoch seconds) / peak;
  - seconds per training epoch at batch 128, 32 and 512: ours, libtorch C++ (bench_libtorch,
    where Debian's libtorch-dev is installed) and PyTorch 1.13 from Python, each reference at its
    fastest thread setting, with the ratios ours / reference (below 1: we are faster);
  - inference throughput (encode + decode, no gradient, batch 500), the three side by side;
  - GEMM GFLOP/s against OpenBLAS on the model's shapes, the per-op overhead of record +
    backward, heap allocations per step, and the peak RSS of train_vae.
Timings on shared machines drift: compare within one run, and quote ratios, not seconds.
"""
import argparse
import json
import os
import subprocess
import sys
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
BATCHES = (128, 32, 512)
# (torch threads, OpenBLAS threads): Debian's torch runs its matrix products in OpenBLAS, whose
# own threads add to torch's; the four ways of using two cores.
SETTINGS = [(1, 2), (2, 1), (2, 2), (1, 1)]


def run_json_lines(cmd, env=None):
    out = subprocess.run(cmd, capture_output=True, text=True, env=env, stdin=subprocess.DEVNULL)
    if out.returncode != 0:
        raise RuntimeError(f"{' '.join(cmd)} failed ({out.returncode}):\n{out.stderr}")
    return [json.loads(line) for line in out.stdout.splitlines() if line.startswith("{")]


def threads_env(torch_threads, blas_threads):
    return dict(os.environ, OPENBLAS_NUM_THREADS=str(blas_threads), OMP_NUM_THREADS=str(torch_threads))


def label(setting):
    return f"{setting[0]} torch thread(s), OPENBLAS_NUM_THREADS={setting[1]}"


def reference_best(name, command, settings, batch):
    """(seconds, setting, last output line) of the fastest thread setting; command(setting) gives the argv."""
    results = []
    for setting in settings:
        lines = run_json_lines(command(setting), threads_env(*setting))
        seconds = min(line["seconds"] if "seconds" in line else line["epoch_seconds"] for line in lines)
        print(f"  {name}, batch {batch}, {label(setting)}: {seconds:.3f} s/epoch", flush=True)
        results.append((seconds, setting, lines[-1]))
    return min(results, key=lambda r: r[0])


def reference_batches(name, command, settings):
    """{batch: (seconds, setting, line)} of a reference; command(batch, setting) gives the argv.
    Every setting at batch 128; the other batches try the two fastest there."""
    best = {128: reference_best(name, lambda s: command(128, s), settings, 128)}
    order = [best[128][1]] + [s for s in settings if s != best[128][1]]
    for b in BATCHES[1:]:
        best[b] = reference_best(name, lambda s: command(b, s), order[:2], b)
    return best


def pytorch_inference(threads):
    """Child mode: images/s of encode + decode of the test set by vae_pytorch's model, batch 500."""
    import torch
    sys.path.insert(0, os.path.join(ROOT, "scripts"))
    from vae_pytorch import VAE, load_split
    torch.set_num_threads(threads)
    model = VAE()
    x = load_split("/usr/share/datasets/fashion-mnist", "t10k")
    best = 1e30
    with torch.no_grad():
        for _ in range(4):
            start = time.perf_counter()
            for i in range(0, len(x), 500):
                h = model.encoder(x[i : i + 500])
                mu, _ = model.mu(h), model.logvar(h)
                torch.sigmoid(model.out(model.decoder(mu)))
            best = min(best, time.perf_counter() - start)
    print(json.dumps({"inference_images_per_second": len(x) / best}))


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--build", default=os.path.join(ROOT, "build"))
    parser.add_argument("--data", default="/usr/share/datasets/fashion-mnist")
    parser.add_argument("--epochs", type=int, default=3, help="epochs timed per side at batch 128 (the best counts)")
    parser.add_argument("--other-epochs", type=int, default=2, help="the same at batch 32 and 512")
    parser.add_argument("--skip-pytorch", action="store_true")
    parser.add_argument("--skip-libtorch", action="store_true")
    parser.add_argument("--skip-gemm", action="store_true")
    parser.add_argument("--settings", default=",".join(f"{t}x{b}" for t, b in SETTINGS),
                        help="thread settings of the references to try, TORCHxOPENBLAS, comma-separated (on a "
                             "loaded machine, 2 torch threads can spin for minutes: try 1x2,1x1)")
    parser.add_argument("--pytorch-inference", type=int, metavar="THREADS", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.pytorch_inference:
        pytorch_inference(args.pytorch_inference)
        return
    bench_vae = os.path.join(args.build, "bench", "bench_vae")
    bench_gemm = os.path.join(args.build, "bench", "bench_gemm")
    bench_libtorch = os.path.join(args.build, "bench", "bench_libtorch")
    train_vae = os.path.join(args.build, "tools", "train_vae")
    settings = [tuple(int(n) for n in item.split("x")) for item in args.settings.split(",")]
    epochs = {b: args.epochs if b == 128 else args.other_epochs for b in BATCHES}

    if not args.skip_gemm:
        print("== GEMM on the VAE's shapes (ours vs OpenBLAS, 2 threads)", flush=True)
        subprocess.run([bench_gemm], check=True)

    print("\n== ours: default VAE on Fashion-MNIST", flush=True)
    ours = {}
    for b in BATCHES:
        extra = ["--train-vae", train_vae] if b == 128 else ["--epoch-only"]
        ours[b] = run_json_lines([bench_vae, "--json", "--epochs", str(epochs[b]), "--batch", str(b),
                                  "--data", args.data] + extra)[0]
        print(f"  ours, batch {b}: {ours[b]['epoch_seconds']:.3f} s/epoch ({ours[b]['threads']} threads)", flush=True)
    main_run = ours[128]

    libtorch = {}
    if not args.skip_libtorch:
        print("\n== libtorch C++ (bench_libtorch, Debian's libtorch-dev): the same model and loop", flush=True)
        if not os.path.exists(bench_libtorch):
            print("  libtorch-dev is not installed (or bench_libtorch not built): no reference")
        else:
            libtorch = reference_batches("libtorch", lambda b, s: [
                bench_libtorch, "--json", "--epochs", str(epochs[b]), "--batch", str(b), "--threads", str(s[0]),
                "--data", args.data], settings)
            libtorch["inference"] = libtorch[128][2]["inference_images_per_second"]  # at the best setting

    pytorch = {}
    if not args.skip_pytorch:
        print("\n== PyTorch 1.13 from Python (scripts/vae_pytorch.py): the same model and loop", flush=True)
        try:
            import torch  # noqa: F401
        except ImportError:
            print("  python3-torch is not installed: no reference")
        else:
            script = os.path.join(ROOT, "scripts", "vae_pytorch.py")
            pytorch = reference_batches("PyTorch", lambda b, s: [
                sys.executable, script, "train", "--epochs", str(epochs[b]), "--batch", str(b), "--threads", str(s[0]),
                "--data", args.data], settings)
            s = pytorch[128][1]
            pytorch["inference"] = run_json_lines([sys.executable, os.path.abspath(__file__), "--pytorch-inference",
                                                   str(s[0])], threads_env(*s))[0]["inference_images_per_second"]

    cpu = next((line.split(":", 1)[1].strip() for line in open("/proc/cpuinfo") if line.startswith("model name")), "?")
    print(f"\n== summary  (CPU: {cpu}, {main_run['threads']} threads; seconds differ between CPUs: compare ratios)")
    print(f"  FMA peak:                      {main_run['peak_gflops']:.1f} GFLOP/s ({main_run['peak_isa']}, "
          f"{main_run['peak_lanes']} floats per FMA, {main_run['threads']} threads)")
    print(f"  epoch GEMM work:               {main_run['epoch_gflop']:.1f} GFLOP (floor at peak: "
          f"{main_run['epoch_gflop'] / main_run['peak_gflops']:.3f} s)")
    for b in BATCHES:
        r = ours[b]
        efficiency = r["epoch_gflops"] / main_run["peak_gflops"]
        line = f"  batch {b:3}: ours {r['epoch_seconds']:.3f} s (efficiency {efficiency:.2f})"
        if b in libtorch:
            line += f"  libtorch {libtorch[b][0]:.3f} s  ours/libtorch {r['epoch_seconds'] / libtorch[b][0]:.2f}"
        if b in pytorch:
            line += f"  PyTorch {pytorch[b][0]:.3f} s  ours/PyTorch {r['epoch_seconds'] / pytorch[b][0]:.2f}"
        print(line)
    for name, ref in (("libtorch", libtorch), ("PyTorch", pytorch)):
        if ref:
            print(f"  {name + ' best setting:':<31}{label(ref[128][1])}")
    line = f"  inference, images/s:           ours {main_run['inference_images_per_second']:.0f}"
    for name, ref in (("libtorch", libtorch), ("PyTorch", pytorch)):
        if "inference" in ref:
            line += f"  {name} {ref['inference']:.0f} (ours/{name} time {ref['inference'] / main_run['inference_images_per_second']:.2f})"
    print(line)
    print(f"  per-op overhead:               {main_run['per_op_ns']:.1f} ns (record + backward, 1 element)")
    print(f"  heap allocations per step:     {main_run['allocations_per_step']:.3f} (after warm-up)")
    print(f"  peak RSS, train_vae 1 epoch:   {main_run['peak_rss_mb']:.1f} MB")

    from bench_conv import conv_section  # scripts/bench_conv.py: the conv layers and the conv VAE
    conv_section(args.build, args.data, args.epochs, 0, args.skip_pytorch)


if __name__ == "__main__":
    main()
