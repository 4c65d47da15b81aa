#!/usr/bin/python3
"""Our ops against PyTorch's where the random graphs never go: NaN, infinities, ties, empty
tensors and other edge cases, each a one-op graph with its values chosen by hand.

Run by `meson test` as: check_edge_cases_torch.py PATH/TO/graph_vs_torch (the C++ side of
check_graphs_torch.py, which reads the program and the leaves and writes every value and
gradient). PyTorch computes each case in float32, as we do: the edge cases are float32's (a
value that overflows in float32 but not in float64 is an edge of float32). Values and gradients
must agree within 1e-4 relative and 1e-5 absolute, NaN with NaN and each infinity with itself.
Exits 77 (skipped) when python3-torch is missing.
"""
import json
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

nan, inf = float("nan"), float("inf")


class Case:
    """One op over leaves (data, or (data, False) for a leaf without a gradient)."""

    def __init__(self, name, leaves, op, fn, seed=None, **settings):
        self.name, self.op, self.fn, self.settings, self.seed = name, op, fn, settings, seed
        self.leaves = [leaf if isinstance(leaf, tuple) else (leaf, True) for leaf in leaves]


# NaN, infinities and ties in one matrix: rows [1, nan, 3], [inf, -inf, 2], [2, 2, 1] (a tie),
# [-inf, -inf, -inf], [inf, inf, 0].
SPECIAL = [[1.0, nan, 3.0], [inf, -inf, 2.0], [2.0, 2.0, 1.0], [-inf, -inf, -inf], [inf, inf, 0.0]]
TIES = [[2.0, 2.0, 1.0, 2.0], [0.0, 0.0, 0.0, 0.0], [-1.0, 3.0, 3.0, -1.0]]  # integer-valued


def reduction_cases():
    """max and min as torch.amax and amin (a tie shares the gradient, a NaN maximum makes its
    slice's gradient NaN), logsumexp, var and std: NaN, infinities, ties, empty results."""
    out = []
    for op in ("max", "min"):
        torch_op = getattr(torch, "a" + op)
        for axes in ([0], [1], [-1], [0, 1]):
            for data, what in ((SPECIAL, "special"), (TIES, "ties")):
                out.append(Case(f"{op}_{what}_{axes}", [data], op,
                                lambda t, f=torch_op, a=axes: f(t, dim=a, keepdim=True), axes=axes, keepdim=True))
        # a non-empty axis of an empty tensor: an empty result, not an error
        out.append(Case(f"{op}_empty_result", [np.zeros((0, 3))], op,
                        lambda t, f=torch_op: f(t, dim=1, keepdim=False), axes=[1], keepdim=False))
    for op in ("sum", "mean"):  # NaN and infinities carried through, as IEEE adds them
        for axes in ([0], [1], [0, 1]):
            out.append(Case(f"{op}_special_{axes}", [SPECIAL], op,
                            lambda t, f=getattr(torch, op), a=axes: f(t, dim=a, keepdim=True), axes=axes, keepdim=True))
    for axes in ([0], [1], [0, 1]):  # a NaN beside +inf stays NaN
        out.append(Case(f"logsumexp_special_{axes}", [SPECIAL], "logsumexp",
                        lambda t, a=axes: torch.logsumexp(t, dim=a, keepdim=True), axes=axes, keepdim=True))
    for op in ("var", "std"):
        f = getattr(torch, op)
        # one element with Bessel's correction: 0 / 0 (it was refused); a negative correction
        out.append(Case(f"{op}_of_one_element", [[[1.0, 2.0]]], op,
                        lambda t, f=f: f(t, dim=[0], correction=1, keepdim=True), axes=[0], keepdim=True, correction=1))
        out.append(Case(f"{op}_correction_minus_one", [[[1.0, 2.0], [4.0, 0.0]]], op,
                        lambda t, f=f: f(t, dim=[0], correction=-1, keepdim=False), axes=[0], keepdim=False,
                        correction=-1))
    # a correction at or beyond the count: the value divides by max(0, count - correction) (inf,
    # or NaN for 0 / 0), but PyTorch's gradient by count - correction itself: -inf / inf at 0,
    # a finite negative factor beyond (it was NaN: inf - inf through the mean)
    for correction in (2, 3, 5):
        for op in ("var", "std"):
            for data, what in (([[1.0, 2.0], [4.0, 0.0]], "spread"), ([[1.0, 2.0], [1.0, 2.0]], "equal")):
                out.append(Case(f"{op}_correction_{correction}_{what}", [data], op,
                                lambda t, f=getattr(torch, op), c=correction: f(t, dim=[0], correction=c, keepdim=False),
                                axes=[0], keepdim=False, correction=correction))
    # a variance past float's range: the standard deviation is still finite (the square root is
    # taken in double, as PyTorch's; it was sqrt(inf) = inf with a gradient of 0)
    for axes in ([1], [0, 1]):
        out.append(Case(f"std_past_the_variances_range_{axes}", [[[1e30, -1e30, 0.0], [3e19, 0.0, -2e19]]], "std",
                        lambda t, a=axes: torch.std(t, dim=a, keepdim=False), axes=axes, keepdim=False, correction=1))
    # every element equal: std's gradient is 0 (sqrt's 1 / 0 masked, as PyTorch's std_backward)
    out.append(Case("std_of_equal_elements", [[[1.0, 1.0, 1.0], [1.0, 2.0, 4.0]]], "std",
                    lambda t: torch.std(t, dim=[1], keepdim=True), axes=[1], keepdim=True, correction=1))
    return out


# NaN, infinities, signed zeros, a value below the float's range and large ones, in one row.
ROW = [[nan, inf, -inf, 0.0, -0.0, 1.0, -1.0, 1e-30, 100.0, -100.0, 0.5, 3.0, -3.0, 89.0, -89.0]]


# An upstream gradient as long as ROW: NaN, infinities and zeros against each of ROW's values.
NONFINITE_SEED = [[nan, inf, -inf, 0.0, nan, inf, -inf, nan, inf, -inf, nan, 0.0, inf, -inf, nan]]


def elementwise_cases():
    """Every value of ROW through the elementwise ops that take it."""
    unary = {"exp": torch.exp, "expm1": torch.expm1, "log": torch.log, "log1p": torch.log1p, "rsqrt": torch.rsqrt,
             "reciprocal": torch.reciprocal, "sin": torch.sin, "cos": torch.cos, "square": torch.square,
             "sqrt": torch.sqrt, "abs": torch.abs, "sigmoid": torch.sigmoid, "tanh": torch.tanh,
             "softplus": F.softplus, "log_sigmoid": F.logsigmoid, "gelu": F.gelu, "silu": F.silu, "neg": torch.neg,
             "relu": torch.relu}  # relu at NaN passes the gradient on, as torch (it gave 0)
    out = [Case(op, [ROW], op, f) for op, f in unary.items()]
    # pow: x^0's gradient is 0 everywhere (it was NaN at 0, NaN and infinities). PyTorch computes
    # x^0.5 as sqrt and x^-0.5 as rsqrt: (-inf)^0.5 is NaN and (-0)^-0.5 is -inf (std::pow gives
    # inf and inf), also inside the gradient's x^(p - 1) (p = 1.5, 0.5)
    for p in (0.0, 1.0, 2.0, 3.0, -1.0, 2.5, 0.5, -0.5, 1.5, -1.5, -2.0):
        out.append(Case(f"pow_{p}", [ROW], "pow", lambda t, p=p: torch.pow(t, p), p=p))
    # clamp: lo above hi gives hi everywhere (it was refused)
    for lo, hi in ((-1.0, 1.0), (0.0, 0.0), (1.0, -1.0)):
        out.append(Case(f"clamp_{lo}_{hi}", [ROW], "clamp", lambda t, lo=lo, hi=hi: torch.clamp(t, lo, hi), lo=lo, hi=hi))
    for slope in (0.01, 0.0, -0.5):
        out.append(Case(f"leaky_relu_{slope}", [ROW], "leaky_relu", lambda t, s=slope: F.leaky_relu(t, s), slope=slope))
    # elu at NaN passes the gradient on (it was NaN)
    for alpha in (1.0, 0.0, 2.0):
        out.append(Case(f"elu_{alpha}", [ROW], "elu", lambda t, a=alpha: F.elu(t, a), alpha=alpha))
    # an upstream gradient of NaN and infinities: a rule that masks (where(mask, g, 0)) gives 0
    # where PyTorch's does, one that multiplies gives NaN where PyTorch's does (pow(x, 0) and
    # clamp gave NaN, where PyTorch's zeros_like and where give 0)
    # (Not sigmoid and silu: at x = -100 PyTorch's 1 / (1 + e^-x) rounds to 0, so its gradient
    # there is inf * 0 = NaN; ours keeps e^-100 and so the true derivative's sign, -inf.)
    for case in [c for c in out if c.op not in ("sigmoid", "silu")]:
        out.append(Case(f"{case.name}_nonfinite_grad", [ROW], case.op, case.fn, seed=NONFINITE_SEED, **case.settings))
    other = [[nan, 1.0, 0.0, inf, -inf, 2.0, -0.0, 2.0, nan, 0.0, 1.0, -3.0, 3.0, 1.0, 0.0]]
    for op, f in {"add": torch.add, "sub": torch.sub, "mul": torch.mul, "div": torch.div, "minimum": torch.minimum,
                  "maximum": torch.maximum}.items():
        out.append(Case(op, [ROW, other], op, f))
        out.append(Case(f"{op}_nonfinite_grad", [ROW, other], op, f, seed=NONFINITE_SEED))
    return out


def slice_cases():
    """slice(x, axis, begin, end) is Python's x[..., begin:end] along the axis: an empty range
    (begin >= end) or one past the end gives an empty tensor or the part inside, as PyTorch's
    indexing (it was refused)."""
    out = []
    data = np.arange(12, dtype=np.float32).reshape(3, 4)
    for axis in (0, 1, -1):
        for begin, end in ((0, 0), (2, 2), (3, 1), (1, 9), (4, 9), (9, 12), (0, 4)):
            def fn(t, a=axis, b=begin, e=end):
                return t[(slice(None),) * (a % 2) + (slice(b, e),)]
            out.append(Case(f"slice_{axis}_{begin}_{end}", [data], "slice", fn, axis=axis, begin=begin, end=end))
    return out


CASES = reduction_cases() + elementwise_cases() + slice_cases() + [
    # a logit of -inf at another class than the target's: the loss stays finite, +inf at the
    # target's (it was NaN: the smoothing term's 0 * -inf without smoothing)
    Case("cross_entropy_of_infinite_logits", [[[inf, 0.0, 1.0], [-inf, 0.0, 1.0], [0.0, -inf, 1.0]],
                                              ([1.0, 0.0, 2.0], False)], "cross_entropy",
         lambda x, t: F.cross_entropy(x, t.long(), reduction="none"), reduction="none", smoothing=0.0),
    # linear over inputs of no features is the bias (the rows were counted as numel / 0 = 0)
    Case("linear_of_no_features", [np.zeros((4, 0)), np.zeros((2, 0)), [0.5, -1.0]], "linear", F.linear),
    Case("linear_of_no_features_3d", [np.zeros((2, 3, 0)), np.zeros((2, 0)), [0.5, -1.0]], "linear", F.linear),
    # joined behind an empty dimension: the backward divided by the 0 blocks (SIGFPE)
    Case("stack_behind_an_empty_dimension", [np.zeros((0, 2)), np.zeros((0, 2))], "stack",
         lambda a, b: torch.stack([a, b], 1), axis=1),
    Case("concat_behind_an_empty_dimension", [np.zeros((2, 0, 2)), np.zeros((2, 0, 1))], "concat",
         lambda a, b: torch.cat([a, b], 2), axis=2),
]


def main():
    exe = sys.argv[1]
    graphs, tensors, expected = [], {}, {}
    for case in CASES:
        nodes, leaves = [], []
        for k, (data, grad) in enumerate(case.leaves):
            name = f"{case.name}.l{k}"
            tensors[name] = np.ascontiguousarray(np.asarray(data, dtype=np.float32))
            nodes.append({"tensor": name, "grad": grad})
            leaves.append(torch.from_numpy(tensors[name].copy()).requires_grad_(grad))
        nodes.append({"op": case.op, "in": list(range(len(leaves))), **case.settings})
        y = case.fn(*leaves)
        expected[f"{case.name}.v0"] = y.detach()
        seed = (torch.linspace(-1.0, 2.0, y.numel()) if case.seed is None else
                torch.tensor(case.seed, dtype=torch.float32)).reshape(y.shape)
        tensors[f"{case.name}.seed"] = seed.numpy().copy()
        if y.requires_grad:
            y.backward(seed)
            for k, leaf in enumerate(leaves):
                if leaf.requires_grad:
                    expected[f"{case.name}.grad{k}"] = leaf.grad if leaf.grad is not None else torch.zeros_like(leaf)
        else:  # (argmax, one_hot): a leaf added to the result takes the seed
            extra = f"{case.name}.extra"
            tensors[extra] = np.zeros(tuple(y.shape), np.float32)
            nodes.append({"tensor": extra, "grad": True})
            nodes.append({"op": "add", "in": [len(nodes) - 2, len(nodes) - 1]})
        graphs.append({"name": case.name, "nodes": nodes})

    failures = 0
    with tempfile.TemporaryDirectory() as tmp:
        program, path_in, path_out = (os.path.join(tmp, f) for f in ("program.json", "in.safetensors",
                                                                       "out.safetensors"))
        with open(program, "w") as f:
            json.dump({"graphs": graphs}, f)
        write(path_in, tensors, {})
        run = subprocess.run([exe, program, path_in, path_out], stdin=subprocess.DEVNULL, capture_output=True,
                             text=True)
        if run.returncode != 0:
            print(f"FAILED: graph_vs_torch exited {run.returncode}: {run.stderr.strip()}")
            return 1
        ours = {k: torch.from_numpy(v.copy()) for k, v in read(path_out)[0].items()}
    for key, want in expected.items():
        got = ours.get(key)
        if got is None:
            print(f"FAILED {key}: missing from our output")
            failures += 1
        elif tuple(got.shape) != tuple(want.shape):
            print(f"FAILED {key}: shape {tuple(got.shape)}, PyTorch {tuple(want.shape)}")
            failures += 1
        elif not torch.allclose(got, want.float(), rtol=1e-4, atol=1e-5, equal_nan=True):
            bad = ~torch.isclose(got, want.float(), rtol=1e-4, atol=1e-5, equal_nan=True)
            at = tuple(bad.nonzero()[0].tolist())
            print(f"FAILED {key}: at {at} ours {got[at].item()}, PyTorch {want[at].item()}")
            failures += 1
    print(f"{len(expected) - failures} passed, {failures} failed ({len(CASES)} cases)")
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
