#!/usr/bin/python3
"""Our ops against PyTorch's: values and gradients on the same inputs.

Run by `meson test` as: check_ops_torch.py PATH/TO/ops_vs_torch. The script writes the inputs
and, per case, an upstream gradient; ops_vs_torch computes each case's output and the
gradient of every input; this script computes the same with PyTorch and compares them.
Exits 77 (skipped) when python3-torch is missing.
"""
import os
import subprocess
import sys
import tempfile

try:
    import numpy as np
    import torch
    import torch.nn.functional as F
except ImportError:
    print("python3-torch is not installed; skipping")
    sys.exit(77)
from check_safetensors_numpy import read, write  # noqa: E402  (the independent numpy reader)


def save(path, tensors):
    write(path, {k: np.ascontiguousarray(v.detach().numpy().astype(np.float32)) for k, v in tensors.items()}, {})


def load(path):
    return {k: torch.from_numpy(v.copy()) for k, v in read(path)[0].items()}

torch.manual_seed(0)
gen = torch.Generator().manual_seed(1)


def rand(*shape):
    return torch.rand(*shape, generator=gen) * 4 - 2


x = rand(4, 5)
inputs = {
    "x": x,
    "row": rand(1, 5),
    "col": rand(3, 1),
    "x3": rand(2, 3, 4),
    "y3": rand(2, 4, 3),
    "w5": rand(5),
    "b5": rand(5),
    "targets": torch.tensor([3.0, 0.0, 3.0, 4.0]),
    "targets3": torch.tensor([[2.0, 0.0, 1.0, 2.0], [1.0, 1.0, 0.0, 2.0]]),  # x3's classes per position
    "w34": rand(3, 4),
    "b34": rand(3, 4),
    "w3": rand(3),
    "b3": rand(3),
    "mask": torch.tensor([[1.0, 0.0, 0.0, 1.0, 1.0]]),
    "index": torch.tensor([[0.0, 0.0], [4.0, 1.0], [2.0, 2.0], [3.0, 0.0]]),
    "rows": torch.tensor([2.0, 0.0, 2.0]),
    "img": rand(2, 3, 7, 6),
    "cw": rand(4, 3, 3, 3),
    "cb": rand(4),
    "ctw": rand(3, 2, 4, 4),
    "ctb": rand(2),
    # over 48 channels on the weight's GEMM side: the implicit GEMM's path (conv_panels.hpp)
    "cw_wide": rand(50, 3, 3, 3),
    "cb_wide": rand(50),
    "img_wide": rand(2, 50, 4, 3),
    "ctw_wide": rand(50, 2, 4, 4),
    # kernel 4, stride 2, padding 1, channels multiples of 8: the batch-in-lanes path on AVX-512
    # (conv_lanes.hpp); 20 images, one chunk of 16 and one of 4 filled with zero images
    "img_lanes": rand(20, 8, 6, 10),
    "cw_lanes": rand(16, 8, 4, 4),
    "cb_lanes": rand(16),
    "img_lanes_small": rand(20, 16, 3, 5),
}


def L(t):
    return t.long()


cases = {
    "softmax": (["x"], lambda x: F.softmax(x, 1)),
    "log_softmax0": (["x"], lambda x: F.log_softmax(x, 0)),
    "cross_entropy": (["x", "i:targets"], lambda x, t: F.cross_entropy(x, L(t))),
    "cross_entropy_smooth_sum": (["x", "i:targets"],
                                 lambda x, t: F.cross_entropy(x, L(t), reduction="sum", label_smoothing=0.2)),
    "cross_entropy_none": (["x", "i:targets"], lambda x, t: F.cross_entropy(x, L(t), reduction="none")),
    "nll_loss": (["x", "i:targets"], lambda x, t: F.nll_loss(F.log_softmax(x, 1), L(t))),
    "pow": (["x"], lambda x: x ** 3),
    "abs": (["x"], torch.abs),
    "clamp": (["x"], lambda x: torch.clamp(x, -0.5, 0.75)),
    "minimum": (["x", "row"], torch.minimum),
    "maximum": (["x", "row"], torch.maximum),
    "where": (["i:mask", "x", "row"], lambda m, a, b: torch.where(m != 0, a, b)),
    "leaky_relu": (["x"], lambda x: F.leaky_relu(x, 0.2)),
    "elu": (["x"], lambda x: F.elu(x, 0.7)),
    "gelu": (["x"], F.gelu),
    "silu": (["x"], F.silu),
    "layer_norm": (["x", "w5", "b5"], lambda x, w, b: F.layer_norm(x, (5,), w, b)),
    "layer_norm_last_two": (["x3", "w34", "b34"], lambda x, w, b: F.layer_norm(x, (3, 4), w, b)),
    "batch_norm_sequence": (["x3", "w3", "b3"],
                            lambda x, w, b: F.batch_norm(x, torch.zeros(3), torch.ones(3), w, b, training=True)),
    "cross_entropy_per_position": (["x3", "i:targets3"], lambda x, t: F.cross_entropy(x, L(t))),
    "cross_entropy_per_position_none": (["x3", "i:targets3"],
                                        lambda x, t: F.cross_entropy(x, L(t), reduction="none", label_smoothing=0.1)),
    "nll_loss_per_position": (["x3", "i:targets3"], lambda x, t: F.nll_loss(F.log_softmax(x, 1), L(t), reduction="sum")),
    "batch_norm": (["x", "w5", "b5"],
                   lambda x, w, b: F.batch_norm(x, torch.zeros(5), torch.ones(5), w, b, training=True)),
    "sum_02": (["x3"], lambda x: x.sum((0, 2))),
    "mean_1_keepdim": (["x3"], lambda x: x.mean(1, keepdim=True)),
    "max_2": (["x3"], lambda x: x.max(2).values),
    "min_1_keepdim": (["x3"], lambda x: x.min(1, keepdim=True).values),
    "var_02": (["x3"], lambda x: x.var((0, 2))),
    "std_1_population": (["x3"], lambda x: x.std(1, unbiased=False)),
    "log1p": (["x"], lambda x: torch.log1p(x.abs())),
    "expm1": (["x"], torch.expm1),
    "rsqrt": (["x"], lambda x: torch.rsqrt(x.abs() + 0.5)),
    "reciprocal": (["x"], torch.reciprocal),
    "sin_cos": (["x"], lambda x: torch.sin(x) * torch.cos(x * 3)),
    "logsumexp_1": (["x3"], lambda x: torch.logsumexp(x, 1)),
    "permute": (["x3"], lambda x: x.permute(2, 0, 1)),
    "broadcast_add": (["x3", "col"], lambda a, b: a + b),
    "bmm": (["x3", "y3"], torch.matmul),
    "gather": (["x", "i:index"], lambda x, i: torch.gather(x, 1, L(i))),
    "index_select": (["x", "i:rows"], lambda x, i: torch.index_select(x, 0, L(i))),
    "concat": (["x", "x"], lambda a, b: torch.cat([a, b], 0)),
    "conv2d": (["img", "cw", "cb"], F.conv2d),
    "conv2d_s2_p1": (["img", "cw", "cb"], lambda x, w, b: F.conv2d(x, w, b, stride=2, padding=1)),
    "conv2d_dilation": (["img", "cw"], lambda x, w: F.conv2d(x, w, stride=(1, 2), padding=(2, 1), dilation=2)),
    "conv_transpose2d": (["img", "ctw", "ctb"], F.conv_transpose2d),
    "conv_transpose2d_s2_p1": (["img", "ctw", "ctb"],
                               lambda x, w, b: F.conv_transpose2d(x, w, b, stride=2, padding=1)),
    "conv_transpose2d_output_padding": (["img", "ctw"], lambda x, w: F.conv_transpose2d(
        x, w, stride=(2, 3), padding=(0, 1), output_padding=(1, 2))),
    "conv2d_wide": (["img", "cw_wide", "cb_wide"], lambda x, w, b: F.conv2d(x, w, b, stride=2, padding=1)),
    "conv_transpose2d_wide": (["img_wide", "ctw_wide", "ctb"], lambda x, w, b: F.conv_transpose2d(
        x, w, b, stride=2, padding=1, output_padding=1)),
    "conv2d_lanes_relu": (["img_lanes", "cw_lanes", "cb_lanes"],
                          lambda x, w, b: F.relu(F.conv2d(x, w, b, stride=2, padding=1))),
    "conv_transpose2d_lanes_relu": (["img_lanes_small", "cw_lanes", "cb_lanes"],
                                    lambda x, w, b: F.relu(F.conv_transpose2d(x, w, b[:8], stride=2, padding=1))),
    "conv_transpose2d_lanes": (["img_lanes_small", "cw_lanes"],
                               lambda x, w: F.conv_transpose2d(x, w, stride=2, padding=1)),
    "max_pool2d": (["img"], lambda x: F.max_pool2d(x, 2)),
    "max_pool2d_3_s2_p1": (["img"], lambda x: F.max_pool2d(x, 3, 2, 1)),
    "avg_pool2d": (["img"], lambda x: F.avg_pool2d(x, (2, 3))),
    "avg_pool2d_3_s2_p1": (["img"], lambda x: F.avg_pool2d(x, 3, 2, 1)),
    "upsample_nearest2d": (["img"], lambda x: F.interpolate(x, scale_factor=(2, 3), mode="nearest")),
}

ours_exe = sys.argv[1]
expected = {}
for name, (names, f) in cases.items():
    leaves = []
    for n in names:
        t = inputs[n.removeprefix("i:")].clone()
        if not n.startswith("i:"):
            t.requires_grad_(True)
        leaves.append(t)
    y = f(*leaves)
    if y.dim() == 0:
        y = y.reshape(1, 1)  # our reduced losses are [1, 1]
    seed = rand(*y.shape)
    inputs[name + ".seed"] = seed
    y.backward(seed)
    expected[name + ".out"] = y.detach()
    for k, t in enumerate(leaves):
        if t.requires_grad:
            expected[f"{name}.grad{k}"] = t.grad

failures = 0
with tempfile.TemporaryDirectory() as tmp:
    path_in, path_out = os.path.join(tmp, "in.safetensors"), os.path.join(tmp, "out.safetensors")
    save(path_in, {k: v for k, v in inputs.items()})
    subprocess.run([ours_exe, path_in, path_out], check=True, stdin=subprocess.DEVNULL)
    ours = load(path_out)
    for key, want in expected.items():
        if key not in ours:
            print(f"FAILED {key}: missing from our output")
            failures += 1
            continue
        got = ours[key]
        if tuple(got.shape) != tuple(want.shape):
            print(f"FAILED {key}: shape {tuple(got.shape)}, PyTorch {tuple(want.shape)}")
            failures += 1
        elif not torch.allclose(got, want.float(), rtol=1e-4, atol=1e-5):
            print(f"FAILED {key}: largest difference {(got - want).abs().max().item():.3g}")
            failures += 1
print(f"{len(expected) - failures} passed, {failures} failed")
sys.exit(1 if failures else 0)
