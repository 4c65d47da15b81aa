#!/usr/bin/python3
"""Random graphs of our ops against PyTorch: every intermediate value and every leaf's gradient.

Run by `meson test` as: check_graphs_torch.py PATH/TO/graph_vs_torch [--graphs N] [--seed S].
Each graph starts from a few random leaves (rank 1 to 5, sizes of 1 included; some of small or
large magnitude, of whole numbers (ties, zeros) or with exact zeros) and chains up to 24 random
ops (elementwise, broadcasting, matmul of any rank, reductions, reshapes, losses, convolutions,
batch_norm, dropout, one_hot, argmax), feeding values back into later ops, using
one value twice in an op, and leaving some branches unused, as real models do. The script
builds each graph in PyTorch as it draws it, in float64 (the reference) and float32 (to measure
how far float32 alone strays); writes the program and the leaves for graph_vs_torch; and
compares our values and gradients with the reference, allowing 10 times PyTorch's own float32
error plus 1e-4 of the tensor's scale.

The draw keeps the comparison fair: no op is applied where its result would hinge on rounding
(a kink or an argmax within 1e-3 of a tie, log of a value near 0, exp of a large one), but exact
ties (a value used twice, zeros out of relu) are kept, since there PyTorch's conventions apply.
Exits 77 (skipped) when python3-torch is missing.
"""
import argparse
import json
import math
import os
import random
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

MAX_NUMEL = 1500  # per value: the graphs stay quick
MAX_NUMEL_LARGE = 150_000  # in the one graph in ten that is large enough for the SIMD and threaded paths
MAX_ABS = 1e4  # a step whose values grow beyond this is drawn again
GAP = 1e-3  # how far from a kink or a tie a value must be (relative to the tensor's scale)


class Rejected(Exception):
    """The drawn op does not fit the value it was drawn for; draw another."""


def reduce_loss(e, reduction):
    """Our Reduction on an elementwise loss e, as a tensor of our shape ([1, 1] once reduced)."""
    if reduction == "none":
        return e
    total = {"sum": e.sum(), "mean": e.mean(), "batch_mean": e.sum() / e.shape[0]}[reduction]
    return total.reshape(1, 1)


def clear_of(x, points, scale):
    """Every element of x is exactly at one of `points` or at least GAP * scale away from all."""
    for p in points:
        d = (x - p).abs()
        if bool(((d > 0) & (d < GAP * scale)).any()):
            return False
    return True


def top_two_apart(x, dims, ties=False):
    """Along the reduced dims, the largest element leads the next by GAP (or the dims hold one);
    with `ties`, an exact tie passes too (amax and amin share the gradient there)."""
    keep = [d for d in range(x.dim()) if d not in dims]
    flat = x.permute(*keep, *dims).reshape(*[x.shape[d] for d in keep], -1)
    if flat.shape[-1] < 2:
        return True
    top = flat.topk(2, dim=-1).values
    scale = max(1.0, x.abs().max().item())
    lead = top[..., 0] - top[..., 1]
    return bool(((lead > GAP * scale) | ((lead == 0) & ties)).all())


def numel(shape):
    return math.prod(shape)


class Graph:
    """One random graph: its leaves, its steps, and their PyTorch values in two precisions."""

    def __init__(self, name, rng, max_numel):
        self.name, self.rng, self.max_numel = name, rng, max_numel
        self.leaves, self.steps = [], []  # the program's entries of each kind
        self.nodes = []  # both, in the order drawn: node k is value k
        self.v64, self.v32 = [], []  # every value
        self.leaf_value, self.step_value = [], []  # which value each leaf and each step is
        self.tensors = {}  # the leaves' float32 data, for IN

    def leaf(self, data, grad=True):
        tensor = f"{self.name}.l{len(self.leaves)}"
        self.leaves.append({"tensor": tensor, "grad": grad})
        self.nodes.append(self.leaves[-1])
        self.leaf_value.append(len(self.v64))
        data32 = torch.as_tensor(data, dtype=torch.float32).clone()
        self.tensors[tensor] = data32
        self.v32.append(data32.clone().requires_grad_(grad))
        self.v64.append(data32.double().requires_grad_(grad))
        return len(self.v64) - 1

    def width(self, small):
        """A new dimension: 1 to `small`, or, in a large graph, wide enough for several GEMM panels."""
        return self.rng.randint(1, small) if self.max_numel == MAX_NUMEL else self.rng.randint(8, 150)

    def random_leaf(self, shape, grad=True, low=-2.0, high=2.0):
        data = torch.rand(*shape, generator=self.gen) * (high - low) + low
        if (low, high) == (-2.0, 2.0):  # (not a leaf drawn in a range an op needs, as a log-variance)
            kind = self.rng.random()
            if kind < 0.08:
                data = data * 1e-3  # small magnitudes
            elif kind < 0.14:
                data = data * 300  # large ones (a step beyond MAX_ABS is drawn again)
            elif kind < 0.24:
                data = data.round()  # whole numbers: ties and exact zeros
            elif kind < 0.32:
                data = data * (torch.rand(*shape, generator=self.gen) < 0.6)  # exact zeros among the values
        return self.leaf(data, grad)

    def constant(self, data):
        return self.leaf(data, grad=False)

    def step(self, op, ins, fn, **settings):
        """Appends op over the values `ins` (fn builds it in PyTorch) unless its values go wild."""
        y64 = fn(*[self.v64[i] for i in ins])
        if numel(y64.shape) > self.max_numel or y64.dim() == 0:
            raise Rejected
        if not bool(torch.isfinite(y64).all()) or y64.abs().max().item() > MAX_ABS:
            raise Rejected
        self.v64.append(y64)
        self.v32.append(fn(*[self.v32[i] for i in ins]))
        self.steps.append({"op": op, "in": list(ins), **settings})
        self.nodes.append(self.steps[-1])
        self.step_value.append(len(self.v64) - 1)
        return len(self.v64) - 1

    def program(self):
        return {"name": self.name, "nodes": self.nodes}


# ---- the ops a graph draws from; each takes the graph and a value index, or raises Rejected ----

def shape_of(g, i):
    return list(g.v64[i].shape)


def scale_of(g, i):
    return max(1.0, g.v64[i].abs().max().item())


def values_min(g, i):
    return g.v64[i].min().item()


def op_unary(g, i):
    x = g.v64[i]
    smooth = {
        "neg": (torch.neg, {}), "square": (torch.square, {}), "sigmoid": (torch.sigmoid, {}),
        "tanh": (torch.tanh, {}), "softplus": (F.softplus, {}), "log_sigmoid": (F.logsigmoid, {}),
        "gelu": (F.gelu, {}), "silu": (F.silu, {}), "sin": (torch.sin, {}), "cos": (torch.cos, {}),
    }
    r = g.rng
    choice = r.choice(list(smooth) + ["exp", "expm1", "log", "log1p", "sqrt", "rsqrt", "reciprocal", "pow", "elu",
                                      "leaky_relu", "add_scalar", "mul_scalar", "rsub_scalar", "rdiv_scalar"])
    if choice in smooth:
        return g.step(choice, [i], smooth[choice][0])
    if choice in ("exp", "expm1"):
        if x.max().item() > 6:
            raise Rejected
        return g.step(choice, [i], getattr(torch, choice))
    if choice in ("log", "sqrt", "rsqrt"):
        if values_min(g, i) < 0.05:
            raise Rejected
        return g.step(choice, [i], getattr(torch, choice))
    if choice == "log1p":
        if values_min(g, i) < -0.95:
            raise Rejected
        return g.step(choice, [i], torch.log1p)
    if choice == "reciprocal":
        if x.abs().min().item() < 0.2:
            raise Rejected
        return g.step(choice, [i], torch.reciprocal)
    if choice == "pow":
        p = r.choice([2.0, 3.0, -1.0, 0.5, 1.5, 0.0, 1.0, -0.5, -2.0, 2.5])
        if p in (0.5, 1.5, -0.5, 2.5) and values_min(g, i) < 0.05:
            raise Rejected
        if p in (-1.0, -2.0) and x.abs().min().item() < 0.2:
            raise Rejected
        return g.step("pow", [i], lambda t: t ** p, p=p)
    if choice == "elu":
        alpha = r.choice([0.5, 1.0, 1.7])
        return g.step("elu", [i], lambda t: F.elu(t, alpha), alpha=alpha)
    if choice == "leaky_relu":
        slope = r.choice([0.01, 0.2])
        return g.step("leaky_relu", [i], lambda t: F.leaky_relu(t, slope), slope=slope)
    c = r.choice([-1.5, 0.5, 2.0])
    if choice == "add_scalar":
        return g.step(choice, [i], lambda t: t + c, c=c)
    if choice == "mul_scalar":
        return g.step(choice, [i], lambda t: t * c, c=c)
    if choice == "rsub_scalar":
        return g.step(choice, [i], lambda t: c - t, c=c)
    if x.abs().min().item() < 0.2:
        raise Rejected
    return g.step("rdiv_scalar", [i], lambda t: c / t, c=c)


def op_kink(g, i):
    """relu, abs, clamp: at exact kinks PyTorch's convention applies; near them, no draw."""
    x, scale, r = g.v64[i], scale_of(g, i), g.rng
    choice = r.choice(["relu", "abs", "clamp"])
    if choice in ("relu", "abs"):
        if not clear_of(x, [0.0], scale):
            raise Rejected
        return g.step(choice, [i], getattr(torch, choice))
    flat = x.detach().flatten().sort().values
    lo = flat[r.randrange(len(flat))].item() + r.choice([0.0, -0.01, 0.01])
    hi = lo + r.choice([0.5, 1.0, 3.0])
    lo, hi = float(np.float32(lo)), float(np.float32(hi))
    if not clear_of(x, [lo, hi], scale):
        raise Rejected
    return g.step("clamp", [i], lambda t: torch.clamp(t, lo, hi), lo=lo, hi=hi)


def broadcastable_shape(r, shape):
    """A shape that broadcasts to `shape`: some dims set to 1, maybe leading ones dropped."""
    s = [d if r.random() < 0.6 else 1 for d in shape]
    drop = r.randrange(len(s)) if r.random() < 0.3 else 0
    return s[drop:]


def other_operand(g, i):
    """A second operand for a binary op on value i: i itself, an earlier value that broadcasts
    with it, or a new leaf of a broadcastable shape."""
    r, shape = g.rng, shape_of(g, i)
    pick = r.random()
    if pick < 0.15:
        return i
    if pick < 0.55:
        fits = [j for j in range(len(g.v64)) if j != i and broadcasts(shape_of(g, j), shape)]
        if fits:
            return r.choice(fits)
    if r.random() < 0.5:
        return g.random_leaf(broadcastable_shape(r, shape))
    # a shape that only together with x gives the result: x [3, 1] with [1, 4] -> [3, 4]
    return g.random_leaf(broadcastable_shape(r, shape) if r.random() < 0.5 else
                         [r.randint(2, 3) if d == 1 else 1 for d in shape])


def broadcasts(a, b):
    for da, db in zip(reversed(a), reversed(b)):
        if da != db and da != 1 and db != 1:
            return False
    return True


def op_binary(g, i):
    r = g.rng
    j = other_operand(g, i)
    a, b = (i, j) if r.random() < 0.7 else (j, i)
    out_shape = list(torch.broadcast_shapes(g.v64[a].shape, g.v64[b].shape))
    if numel(out_shape) > g.max_numel:
        raise Rejected
    choice = r.choice(["add", "sub", "mul", "div", "maximum", "minimum", "where"])
    if choice == "div":
        if g.v64[b].abs().min().item() < 0.2:
            raise Rejected
        return g.step("div", [a, b], torch.div)
    if choice in ("maximum", "minimum"):
        diff = g.v64[a] - g.v64[b]
        if not clear_of(diff, [0.0], max(scale_of(g, a), scale_of(g, b))):
            raise Rejected
        return g.step(choice, [a, b], getattr(torch, choice))
    if choice == "where":
        mask = g.constant((torch.rand(*broadcastable_shape(r, out_shape), generator=g.gen) < 0.5).float())
        return g.step("where", [mask, a, b], lambda m, x, y: torch.where(m != 0, x, y))
    return g.step(choice, [a, b], {"add": torch.add, "sub": torch.sub, "mul": torch.mul}[choice])


def op_broadcast_to(g, i):
    r, shape = g.rng, shape_of(g, i)
    target = [r.randint(2, 3) if d == 1 and r.random() < 0.7 else d for d in shape]
    if r.random() < 0.4 and len(target) < 4:
        target = [r.randint(1, 3)] + target
    return g.step("broadcast_to", [i], lambda t: t.expand(*target), shape=target)


def op_matmul(g, i):
    r, shape = g.rng, shape_of(g, i)
    if r.random() < 0.5:
        out, bias = g.width(6), r.random() < 0.6
        w = g.random_leaf([out, shape[-1]])
        if bias:
            b = g.random_leaf([out])
            return g.step("linear", [i, w, b], F.linear)
        return g.step("linear", [i, w], F.linear)
    n = g.width(6)
    if len(shape) == 1 or r.random() < 0.2:  # a vector on the right: [..., M, K] x [K] -> [..., M]
        if len(shape) == 1:
            a = g.random_leaf([r.randint(1, 3)] * r.randint(0, 2) + [g.width(5), shape[0]])
            return g.step("matmul", [a, i], torch.matmul)
        return g.step("matmul", [i, g.random_leaf([shape[-1]])], torch.matmul)
    # the other operand's batch dimensions: some of the value's (each kept or 1), maybe more in front
    batch = [d if r.random() < 0.5 else 1 for d in shape[:-2]][r.randrange(len(shape) - 1):]
    if r.random() < 0.3 and len(shape) < 5:
        batch = [r.randint(1, 3)] + [1] * (len(shape) - 2 - len(batch)) + batch
    if r.random() < 0.2:
        w_shape = [shape[-1]]  # a vector on the left: [K] x [..., K, N] -> [..., N], seen from the value
        return g.step("matmul", [i, g.random_leaf(batch + [shape[-1], n])], torch.matmul) if r.random() < 0.5 \
            else g.step("matmul", [g.random_leaf([shape[-2]]), i], torch.matmul)
    if r.random() < 0.3:
        # the other way round: [..., n', m] x [..., m, k] needs the value on the right
        return g.step("matmul", [g.random_leaf(batch + [g.width(5), shape[-2]]), i], torch.matmul)
    return g.step("matmul", [i, g.random_leaf(batch + [shape[-1], n])], torch.matmul)


def random_axes(r, rank):
    count = r.randint(1, rank)
    axes = sorted(r.sample(range(rank), count))
    return [a - rank if r.random() < 0.3 else a for a in axes]


def op_reduce(g, i):
    r, shape = g.rng, shape_of(g, i)
    rank = len(shape)
    choice = r.choice(["sum", "mean", "max", "min", "var", "std", "logsumexp", "sum_all", "mean_all", "softmax",
                       "log_softmax"])
    if choice in ("sum_all", "mean_all"):
        fn = torch.sum if choice == "sum_all" else torch.mean
        return g.step(choice, [i], lambda t: fn(t).reshape([1] * rank))
    if choice in ("softmax", "log_softmax"):
        axis = r.randrange(-rank, rank)
        return g.step(choice, [i], lambda t: getattr(F, choice)(t, axis), axis=axis)
    axes = random_axes(r, rank)
    keepdim = r.random() < 0.5 or len(axes) == rank  # a result of rank 0 is not ours
    dims = sorted(a % rank for a in axes)
    if choice in ("max", "min"):
        sign = 1 if choice == "max" else -1
        if not top_two_apart(sign * g.v64[i], dims, ties=True):
            raise Rejected
        extreme = torch.amax if choice == "max" else torch.amin
        fn = lambda t: extreme(t, dim=dims, keepdim=keepdim)  # noqa: E731
    elif choice in ("var", "std"):
        correction = r.choice([0, 1])
        if numel([shape[d] for d in dims]) <= correction:
            raise Rejected
        spread = torch.var(g.v64[i], dim=dims, unbiased=False)
        if choice == "std" and bool((spread < (GAP * scale_of(g, i)) ** 2).any()):
            raise Rejected  # std's gradient grows without bound as the spread goes to 0
        fn = lambda t: getattr(torch, choice)(t, dim=dims, unbiased=bool(correction), keepdim=keepdim)  # noqa: E731
        return g.step(choice, [i], fn, axes=axes, keepdim=keepdim, correction=correction)
    elif choice == "logsumexp":
        fn = lambda t: torch.logsumexp(t, dim=dims, keepdim=keepdim)  # noqa: E731
    else:
        fn = lambda t: getattr(torch, choice)(t, dim=dims, keepdim=keepdim)  # noqa: E731
    return g.step(choice, [i], fn, axes=axes, keepdim=keepdim)


def random_factorization(r, n, rank):
    dims = []
    for _ in range(rank - 1):
        divisors = [d for d in range(1, n + 1) if n % d == 0]
        d = r.choice(divisors)
        dims.append(d)
        n //= d
    dims.append(n)
    r.shuffle(dims)
    return dims


def op_shape(g, i):
    r, shape = g.rng, shape_of(g, i)
    rank = len(shape)
    choice = r.choice(["reshape", "flatten", "unsqueeze", "squeeze", "permute", "transpose", "slice",
                       "concat", "stack", "broadcast_to", "index_select", "gather"])
    if choice == "reshape":
        new = random_factorization(r, numel(shape), r.choice([1, 2, 3, 4, 4, 5, 6]))
        return g.step("reshape", [i], lambda t: t.reshape(new), shape=new)
    if choice == "flatten":
        start = r.randrange(rank)
        end = r.randrange(start, rank)
        s, e = (start - rank if r.random() < 0.3 else start), (end - rank if r.random() < 0.5 else end)
        return g.step("flatten", [i], lambda t: torch.flatten(t, s, e), start=s, end=e)
    if choice == "unsqueeze":
        if rank >= 6:
            raise Rejected
        axis = r.randrange(-rank - 1, rank + 1)
        return g.step("unsqueeze", [i], lambda t: t.unsqueeze(axis), axis=axis)
    if choice == "squeeze":
        ones = [a for a, d in enumerate(shape) if d == 1]
        axis = r.choice(ones) if ones and r.random() < 0.8 else r.randrange(rank)
        if rank == 1 and shape[0] == 1:
            raise Rejected  # would leave rank 0
        return g.step("squeeze", [i], lambda t: t.squeeze(axis), axis=axis)
    if choice == "permute":
        dims = list(range(rank))
        r.shuffle(dims)
        return g.step("permute", [i], lambda t: t.permute(*dims), dims=dims)
    if choice == "transpose":
        a, b = r.randrange(rank), r.randrange(rank)
        return g.step("transpose", [i], lambda t: t.transpose(a, b), a=a, b=b)
    axis = r.randrange(-rank, rank)
    size = shape[axis]
    if choice == "slice":
        begin = r.randrange(size)
        end = r.randint(begin + 1, size)
        return g.step("slice", [i], lambda t: t.narrow(axis, begin, end - begin), axis=axis, begin=begin, end=end)
    if choice in ("concat", "stack"):
        parts = [i]
        for _ in range(r.randint(1, 2)):
            if r.random() < 0.3:
                parts.append(i)
                continue
            other = list(shape)
            if choice == "concat":
                other[axis] = r.randint(1, 3)
            same = [j for j in range(len(g.v64)) if shape_of(g, j) == other and j != i]
            parts.append(r.choice(same) if same and r.random() < 0.5 else g.random_leaf(other))
        r.shuffle(parts)
        if choice == "concat":
            return g.step("concat", parts, lambda *t: torch.cat(t, axis), axis=axis)
        if rank >= 6:
            raise Rejected
        new_axis = r.randrange(-rank - 1, rank + 1)
        return g.step("stack", parts, lambda *t: torch.stack(t, new_axis), axis=new_axis)
    if choice == "broadcast_to":
        return op_broadcast_to(g, i)
    if choice == "index_select":
        index = g.constant(torch.tensor([float(r.randrange(size)) for _ in range(r.randint(1, 5))]))
        return g.step("index_select", [i, index], lambda t, k: torch.index_select(t, axis, k.long()), axis=axis)
    # gather: an index of x's rank, sizes at most x's off the axis
    index_shape = [r.randint(1, d) for d in shape]
    index_shape[axis] = r.randint(1, 4)
    index = g.constant(torch.randint(0, size, index_shape, generator=g.gen).float())
    return g.step("gather", [i, index], lambda t, k: torch.gather(t, axis, k.long()), axis=axis)


def op_loss(g, i):
    r, shape = g.rng, shape_of(g, i)
    reduction = r.choice(["none", "sum", "mean", "batch_mean"])
    choice = r.choice(["bce_with_logits", "mse_loss", "gaussian_nll", "kl_to_standard_normal",
                       "cross_entropy", "reparameterize", "layer_norm"])
    if choice == "bce_with_logits":
        t = g.constant(torch.rand(*shape, generator=g.gen))
        return g.step(choice, [i, t], lambda x, y: reduce_loss(
            F.binary_cross_entropy_with_logits(x, y, reduction="none"), reduction), reduction=reduction)
    if choice == "mse_loss":
        same = [j for j in range(len(g.v64)) if shape_of(g, j) == shape]
        y = r.choice(same) if r.random() < 0.5 else g.random_leaf(shape)
        return g.step(choice, [i, y], lambda a, b: reduce_loss((a - b) ** 2, reduction), reduction=reduction)
    if choice == "gaussian_nll":
        mean = g.random_leaf(shape)
        logvar = g.random_leaf(broadcastable_shape(r, shape), low=-1.0, high=1.0)
        return g.step(choice, [i, mean, logvar], lambda x, m, lv: reduce_loss(
            0.5 * (math.log(2 * math.pi) + lv + (x - m) ** 2 / torch.exp(lv)), reduction), reduction=reduction)
    if choice == "kl_to_standard_normal":
        if g.v64[i].max().item() > 6:
            raise Rejected
        mu = g.random_leaf(shape)
        return g.step(choice, [mu, i], lambda m, lv: reduce_loss(
            -0.5 * (1 + lv - m ** 2 - torch.exp(lv)), reduction), reduction=reduction)
    if choice == "reparameterize":
        if g.v64[i].max().item() > 6:
            raise Rejected
        mu = g.random_leaf(shape)
        eps = g.constant(torch.randn(*shape, generator=g.gen))
        return g.step(choice, [mu, i, eps], lambda m, lv, e: m + torch.exp(lv / 2) * e)
    if choice == "layer_norm":
        dims = r.randint(1, min(2, len(shape)))
        if numel(shape[-dims:]) < 2:
            raise Rejected
        flat = g.v64[i].reshape(-1, numel(shape[-dims:]))
        if bool((torch.var(flat, dim=1, unbiased=False) < (GAP * scale_of(g, i)) ** 2).any()):
            raise Rejected  # a constant row: its gradient is a sum of terms of 1/sqrt(eps) cancelling
        w, b = g.random_leaf(shape[-dims:]), g.random_leaf(shape[-dims:])
        return g.step(choice, [i, w, b], lambda x, ww, bb: F.layer_norm(x, shape[-dims:], ww, bb, 1e-5), dims=dims)
    # cross_entropy: classes along dimension 1
    if len(shape) < 2:
        raise Rejected
    smoothing = r.choice([0.0, 0.0, 0.1])
    targets = g.constant(torch.randint(0, shape[1], [shape[0]] + shape[2:], generator=g.gen).float())

    def ce(x, t):
        if reduction == "batch_mean":
            return (F.cross_entropy(x, t.long(), reduction="sum", label_smoothing=smoothing) / x.shape[0]).reshape(1, 1)
        y = F.cross_entropy(x, t.long(), reduction=reduction, label_smoothing=smoothing)
        return y if reduction == "none" else y.reshape(1, 1)
    return g.step(choice, [i, targets], ce, reduction=reduction, smoothing=smoothing)


def windows_clear(x, kernel, stride, padding):
    """max_pool2d: in every window the largest element leads the next by GAP."""
    padded = F.pad(x.detach(), (padding[1], padding[1], padding[0], padding[0]), value=-math.inf)
    cols = F.unfold(padded.reshape(-1, 1, *padded.shape[2:]), kernel, stride=stride)
    if cols.shape[1] < 2:
        return True
    top = cols.topk(2, dim=1).values
    scale = max(1.0, x.abs().max().item())
    return bool(((top[:, 0] - top[:, 1]) > GAP * scale).all())


def op_conv(g, i):
    r, shape = g.rng, shape_of(g, i)
    if len(shape) != 4:
        raise Rejected
    _, c, h, w = shape
    choice = r.choice(["conv2d", "conv_transpose2d", "max_pool2d", "avg_pool2d", "upsample_nearest2d"])
    kernel = [r.randint(1, 3), r.randint(1, 3)]
    stride = [r.randint(1, 2), r.randint(1, 2)]
    padding = [r.randint(0, kernel[0] // 2), r.randint(0, kernel[1] // 2)]
    if choice in ("conv2d", "conv_transpose2d"):
        dilation = [r.randint(1, 2), r.randint(1, 2)]
        o = g.width(4) if g.max_numel == MAX_NUMEL else r.randint(4, 40)
        bias = r.random() < 0.6
        settings = {"stride": stride, "padding": padding, "dilation": dilation}
        if choice == "conv2d":
            if any(s + 2 * p < dl * (k - 1) + 1 for s, p, dl, k in zip((h, w), padding, dilation, kernel)):
                raise Rejected
            wt = g.random_leaf([o, c] + kernel)
            fn = lambda x, ww, bb=None: F.conv2d(x, ww, bb, stride, padding, dilation)  # noqa: E731
        else:
            out_pad = [r.randrange(max(s, dl)) for s, dl in zip(stride, dilation)]
            settings["output_padding"] = out_pad
            if any((s - 1) * st - 2 * p + dl * (k - 1) + op + 1 < 1
                   for s, st, p, dl, k, op in zip((h, w), stride, padding, dilation, kernel, out_pad)):
                raise Rejected
            wt = g.random_leaf([c, o] + kernel)
            fn = lambda x, ww, bb=None: F.conv_transpose2d(x, ww, bb, stride, padding, out_pad, 1, dilation)  # noqa: E731
        ins = [i, wt] + ([g.random_leaf([o])] if bias else [])
        return g.step(choice, ins, fn, **settings)
    if choice == "upsample_nearest2d":
        scale = [r.randint(1, 3), r.randint(1, 2)]
        return g.step(choice, [i], lambda x: F.interpolate(x, scale_factor=scale, mode="nearest"), scale=scale)
    if h + 2 * padding[0] < kernel[0] or w + 2 * padding[1] < kernel[1]:
        raise Rejected
    settings = {"kernel": kernel, "stride": stride, "padding": padding}
    if choice == "avg_pool2d":
        return g.step(choice, [i], lambda x: F.avg_pool2d(x, kernel, stride, padding), **settings)
    if not windows_clear(g.v64[i], kernel, stride, padding):
        raise Rejected
    return g.step(choice, [i], lambda x: F.max_pool2d(x, kernel, stride, padding), **settings)


def op_misc(g, i):
    """dropout (evaluation, p = 0, p = 1), batch_norm (both modes), nll_loss, one_hot, argmax, view."""
    r, shape = g.rng, shape_of(g, i)
    choice = r.choice(["dropout", "batch_norm", "nll_loss", "one_hot", "argmax", "view"])
    if choice == "dropout":
        p, training = r.choice([(0.5, False), (1.0, False), (0.0, True), (1.0, True)])
        return g.step("dropout", [i], lambda t: F.dropout(t, p, training), p=p, training=training)
    if choice == "view":
        new = random_factorization(r, numel(shape), r.choice([1, 2, 3, 5]))
        return g.step("view", [i], lambda t: t.reshape(new), shape=new)
    if choice == "batch_norm":
        if len(shape) not in (2, 3):
            raise Rejected
        c, training = shape[1], r.random() < 0.5
        count = numel(shape) // c
        if training:
            if count < 2:
                raise Rejected
            dims = [0] if len(shape) == 2 else [0, 2]
            if bool((torch.var(g.v64[i], dim=dims, unbiased=False) < (GAP * scale_of(g, i)) ** 2).any()):
                raise Rejected  # a constant channel: the gradient hinges on rounding
        mean = torch.rand(c, generator=g.gen) - 0.5
        var = torch.rand(c, generator=g.gen) + 0.5
        affine = r.random() < 0.7
        ins = [i] + ([g.random_leaf([c]), g.random_leaf([c])] if affine else [])

        def bn(x, w=None, b=None):
            return F.batch_norm(x, mean.to(x.dtype).clone(), var.to(x.dtype).clone(), w, b, training, 0.1, 1e-5)
        return g.step("batch_norm", ins, bn, training=training, mean=mean.tolist(), var=var.tolist())
    if choice == "nll_loss":
        if len(shape) < 2:
            raise Rejected
        reduction = r.choice(["none", "sum", "mean", "batch_mean"])
        targets = g.constant(torch.randint(0, shape[1], [shape[0]] + shape[2:], generator=g.gen).float())

        def nll(x, t):
            x = x.contiguous()  # torch 1.13's nll_loss backward fails on a permuted input
            if reduction == "batch_mean":
                return (F.nll_loss(x, t.long(), reduction="sum") / x.shape[0]).reshape(1, 1)
            y = F.nll_loss(x, t.long(), reduction=reduction)
            return y if reduction == "none" else y.reshape(1, 1)
        return g.step("nll_loss", [i, targets], nll, reduction=reduction)
    if choice == "one_hot":  # a constant made from labels, multiplied into the value
        classes = shape[-1]
        labels = g.constant(torch.randint(0, classes, [r.randint(1, 4)], generator=g.gen).float())
        hot = g.step("one_hot", [labels], lambda t: F.one_hot(t.long(), classes).to(t.dtype), classes=classes)
        if not broadcasts(shape_of(g, hot), shape):
            return hot
        return g.step("mul", [i, hot], torch.mul)
    axis = r.randrange(-len(shape), len(shape))
    if not top_two_apart(g.v64[i], [axis % len(shape)]):
        raise Rejected
    keepdim = r.random() < 0.5 or len(shape) == 1
    return g.step("argmax", [i], lambda t: torch.argmax(t, axis, keepdim).to(t.dtype), axis=axis, keepdim=keepdim)


OPS = [(op_misc, 2), (op_unary, 6), (op_kink, 2), (op_binary, 6), (op_matmul, 2), (op_reduce, 3), (op_shape, 5),
       (op_loss, 1), (op_conv, 2)]


def draw_graph(name, seed):
    r = random.Random(seed)
    large = r.random() < 0.1
    g = Graph(name, r, MAX_NUMEL_LARGE if large else MAX_NUMEL)
    g.gen = torch.Generator().manual_seed(seed)
    for _ in range(r.randint(1, 3)):
        if r.random() < 0.25:
            shape = [r.randint(1, 3), r.randint(1, 3), r.randint(3, 7), r.randint(3, 7)]
            if large:
                shape = [r.randint(8, 40), r.randint(2, 16), r.randint(10, 28), r.randint(10, 28)]
        elif large:
            shape = [r.randint(64, 300), r.randint(17, 400)]
        else:
            shape = [r.randint(1, 5) for _ in range(r.randint(1, 5))]
        g.random_leaf(shape)
    target = r.randint(3, 24)
    tries = 0
    while len(g.steps) < target and tries < 200:
        tries += 1
        live = [j for j, v in enumerate(g.v64) if v.requires_grad]  # not the constants
        recent = live[-1 - min(int(r.expovariate(0.7)), len(live) - 1)]
        op = r.choices([f for f, _ in OPS], weights=[w for _, w in OPS])[0]
        try:
            op(g, recent)
        except Rejected:
            continue
    if not g.steps or not g.v64[-1].requires_grad:  # (one_hot and argmax make constants)
        g.step("neg", [max(j for j, v in enumerate(g.v64) if v.requires_grad)], torch.neg)
    seed_grad = torch.rand(*g.v64[-1].shape, generator=g.gen) * 2 - 1
    g.tensors[f"{name}.seed"] = seed_grad
    g.v64[-1].backward(seed_grad.double())
    g.v32[-1].backward(seed_grad)
    return g


def compare(key, ours, ref, f32):
    """None if ours is as close to the float64 reference as allowed, else what is wrong."""
    if tuple(ours.shape) != tuple(ref.shape):
        return f"shape {tuple(ours.shape)}, PyTorch {tuple(ref.shape)}"
    ours = ours.double()
    scale = max(1.0, ref.abs().max().item()) if ref.numel() else 1.0
    allowed = 10 * (f32.double() - ref).abs().max().item() + 1e-4 * scale if ref.numel() else 0
    err = (ours - ref).abs().max().item() if ref.numel() else 0
    if not math.isfinite(err) or err > allowed:
        return f"largest difference {err:.3g} (allowed {allowed:.3g}, scale {scale:.3g})"
    return None


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("exe")
    parser.add_argument("--graphs", type=int, default=400)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--verbose", action="store_true")
    args = parser.parse_args()
    torch.set_num_threads(1)
    graphs = [draw_graph(f"g{k}", args.seed * 1000003 + k) for k in range(args.graphs)]
    steps = sum(len(g.steps) for g in graphs)
    with tempfile.TemporaryDirectory() as tmp:
        program, path_in, path_out = (os.path.join(tmp, f) for f in ("program.json", "in.safetensors", "out.safetensors"))
        with open(program, "w") as f:
            json.dump({"graphs": [g.program() for g in graphs]}, f)
        write(path_in, {k: np.ascontiguousarray(v.numpy()) for g in graphs for k, v in g.tensors.items()}, {})
        run = subprocess.run([args.exe, program, path_in, path_out], stdin=subprocess.DEVNULL,
                             capture_output=True, text=True)
        if run.returncode != 0:
            print(f"FAILED: graph_vs_torch exited {run.returncode}: {run.stderr.strip()}")
            return 1
        ours = {k: torch.from_numpy(v.copy()) for k, v in read(path_out)[0].items()}
    failed = 0
    for g in graphs:
        problems = []
        for k, step in enumerate(g.steps):  # the first step that differs names the culprit
            v = g.step_value[k]
            why = compare(f"{g.name}.v{k}", ours[f"{g.name}.v{k}"], g.v64[v].detach(), g.v32[v].detach())
            if why:
                problems.append(f"step {k} {json.dumps(step)}: {why}")
                break
        for k, leaf in enumerate(g.leaves):
            if not leaf["grad"]:
                continue
            v64, v32 = g.v64[g.leaf_value[k]], g.v32[g.leaf_value[k]]
            ref = v64.grad if v64.grad is not None else torch.zeros_like(v64)
            f32 = v32.grad if v32.grad is not None else torch.zeros_like(v32)
            why = compare(f"{g.name}.grad{k}", ours[f"{g.name}.grad{k}"], ref.detach(), f32.detach())
            if why:
                problems.append(f"gradient of leaf {k} {list(v64.shape)}: {why}")
        if problems:
            failed += 1
            print(f"FAILED {g.name} (seed {args.seed * 1000003 + int(g.name[1:])}):")
            for p in problems:
                print(f"  {p}")
            if args.verbose:
                for k, node in enumerate(g.nodes):
                    print(f"  value {k}: {json.dumps(node)} -> {list(g.v64[k].shape)}")
    print(f"{len(graphs) - failed} of {len(graphs)} graphs passed ({steps} ops), {failed} failed")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
