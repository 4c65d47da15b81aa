#!/usr/bin/python3
"""Our modules against PyTorch's, with state dicts exchanged through safetensors both ways.

Run by `meson test` as: check_modules_torch.py PATH/TO/modules_vs_torch. For each module the
script writes a PyTorch module's state dict (random weights, and for BatchNorm1d non-trivial
running statistics), an input and an upstream gradient; modules_vs_torch loads the state,
runs forward and backward, and writes the output, the gradients and its state dict after the
step, which PyTorch loads (strictly) and compares with its own module after the same step.
Exits 77 (skipped) when python3-torch is missing.
"""
import os
import subprocess
import sys
import tempfile

try:
    import numpy as np
    import torch
    from torch import nn
except ImportError:
    print("python3-torch is not installed; skipping")
    sys.exit(77)
from check_safetensors_numpy import read, write  # noqa: E402  (the independent numpy reader)

gen = torch.Generator().manual_seed(3)


def rand(*shape):
    return torch.rand(*shape, generator=gen) * 4 - 2


def to_numpy(t):
    a = t.detach().numpy()  # (np.array keeps a 0-d array 0-d; ascontiguousarray would not)
    return np.array(a, dtype=np.int64 if a.dtype == np.int64 else np.float32, order="C")


def save(path, tensors):
    write(path, {k: to_numpy(v) for k, v in tensors.items()}, {})


def load(path):
    return {k: torch.from_numpy(v.copy()) for k, v in read(path)[0].items()}


def randomized(module):
    with torch.no_grad():
        for p in module.parameters():
            p.copy_(rand(*p.shape))
        if isinstance(module, nn.BatchNorm1d):
            module.running_mean.copy_(rand(module.num_features))
            module.running_var.copy_(rand(module.num_features).abs() + 0.5)
            module.num_batches_tracked.fill_(3)
    return module


cases = {
    "layer_norm": (randomized(nn.LayerNorm(5)), rand(4, 5), True),
    "batch_norm_train": (randomized(nn.BatchNorm1d(5)), rand(4, 5), True),
    "batch_norm_eval": (randomized(nn.BatchNorm1d(5)), rand(4, 5), False),
    "layer_norm_last_two": (randomized(nn.LayerNorm((3, 4))), rand(2, 3, 4), True),
    "batch_norm_sequence_train": (randomized(nn.BatchNorm1d(3)), rand(4, 3, 5), True),
    "batch_norm_sequence_eval": (randomized(nn.BatchNorm1d(3)), rand(4, 3, 5), False),
    "embedding": (nn.Embedding(6, 3), torch.tensor([[1.0, 5.0], [1.0, 0.0], [2.0, 1.0]]), True),
    "leaky_relu": (nn.LeakyReLU(0.1), rand(4, 5), True),
    "gelu": (nn.GELU(), rand(4, 5), True),
    "silu": (nn.SiLU(), rand(4, 5), True),
    "flatten": (nn.Flatten(), rand(2, 3, 4), True),
    "unflatten": (nn.Unflatten(1, (2, 2)), rand(3, 4), True),
    "identity": (nn.Identity(), rand(3, 4), True),
    "dropout_eval": (nn.Dropout(0.5), rand(3, 4), False),
    "conv2d": (randomized(nn.Conv2d(3, 4, (3, 2), stride=2, padding=1)), rand(2, 3, 7, 6), True),
    "conv2d_no_bias": (randomized(nn.Conv2d(2, 3, 3, dilation=2, bias=False)), rand(2, 2, 6, 7), True),
    "conv_transpose2d": (randomized(nn.ConvTranspose2d(3, 2, 4, stride=2, padding=1)), rand(2, 3, 4, 5), True),
    "max_pool2d": (nn.MaxPool2d(2), rand(2, 3, 6, 5), True),
    "avg_pool2d": (nn.AvgPool2d(3, 2, 1), rand(2, 3, 6, 5), True),
    "upsample": (nn.Upsample(scale_factor=2), rand(2, 3, 3, 4), True),
}

failures = checks = 0


def compare(what, got, want):
    global failures, checks
    checks += 1
    want = want.detach().float()
    got = got.float()
    if tuple(got.shape) != tuple(want.shape):
        print(f"FAILED {what}: shape {tuple(got.shape)}, PyTorch {tuple(want.shape)}")
        failures += 1
    elif not torch.allclose(got, want, rtol=1e-4, atol=1e-5):
        print(f"FAILED {what}: largest difference {(got - want).abs().max().item():.3g}")
        failures += 1


with tempfile.TemporaryDirectory() as tmp:
    inputs, expected = {}, {}
    for name, (module, x, training) in cases.items():
        module.train(training)
        state = module.state_dict()
        if state:
            save(os.path.join(tmp, name + ".state.safetensors"), dict(state))
        integer = name == "embedding"
        leaf = x.clone() if integer else x.clone().requires_grad_(True)
        y = module(leaf.long() if integer else leaf)
        seed = rand(*y.shape)
        y.backward(seed)
        inputs[name + ".x"], inputs[name + ".seed"] = x, seed
        grads = {"grad." + n: p.grad for n, p in module.named_parameters()}
        if not integer:
            grads["grad.x"] = leaf.grad
        expected[name] = ({"out": y, **grads}, module)
    save(os.path.join(tmp, "inputs.safetensors"), inputs)
    subprocess.run([sys.argv[1], tmp], check=True, stdin=subprocess.DEVNULL)
    for name, (want, module) in expected.items():
        ours = load(os.path.join(tmp, name + ".ours.safetensors"))
        for key, value in want.items():
            compare(f"{name} {key}", ours[key], value)
        # Our state dict after the step, loaded strictly into a fresh PyTorch module.
        after = load(os.path.join(tmp, name + ".after.safetensors"))
        mine = {k: v.clone() for k, v in module.state_dict().items()}
        if set(after) != set(mine):
            print(f"FAILED {name} state dict names: ours {sorted(after)}, PyTorch {sorted(mine)}")
            failures += 1
            continue
        module.load_state_dict({k: after[k].to(mine[k].dtype).reshape(mine[k].shape) for k in after}, strict=True)
        for k, v in module.state_dict().items():
            compare(f"{name} state {k}", v, mine[k])
print(f"{checks - failures} passed, {failures} failed")
sys.exit(1 if failures else 0)
