#!/usr/bin/python3
"""The same VAE in PyTorch: loads our checkpoints, and is the speed/quality reference.

  /usr/bin/python3 scripts/vae_pytorch.py evaluate runs/vae/model.safetensors
      -> the test loss of our checkpoint computed by PyTorch (compare with results.json)
  /usr/bin/python3 scripts/vae_pytorch.py train --epochs 10 --seed 1 [--arch conv]
      -> the pytorch/examples VAE (or the conv VAE of `vae train --arch conv`) trained by
         PyTorch, with seconds per epoch

Needs Debian's python3-torch and python3-numpy (use /usr/bin/python3: another python3 on
PATH may lack them). Exits 77 when torch is missing, which meson counts as a skipped test.
"""
import argparse
import gzip
import json
import math
import os
import struct
import sys
import time

import numpy as np

try:
    import torch
    from torch import nn
    import torch.nn.functional as F
except ImportError:
    print("vae_pytorch: python3-torch is not installed; skipping", file=sys.stderr)
    sys.exit(77)

FASHION = "/usr/share/datasets/fashion-mnist"


# ---- the checkpoint: safetensors read with json + numpy (no safetensors package in Debian 12) ----

def load_safetensors(path):
    with open(path, "rb") as f:
        (n,) = struct.unpack("<Q", f.read(8))
        header = json.loads(f.read(n))
        data = f.read()
    metadata = header.pop("__metadata__", {})
    dtypes = {"F32": "<f4", "F64": "<f8", "I64": "<i8", "I32": "<i4", "U8": "u1"}
    tensors = {}
    for name, info in header.items():
        begin, end = info["data_offsets"]
        tensors[name] = np.frombuffer(data[begin:end], dtype=dtypes[info["dtype"]]).reshape(info["shape"])
    return tensors, metadata


class VAE(nn.Module):
    """Attribute names match the C++ model, so its state dict loads as is.

    arch "mlp": Linear + ReLU layers of the hidden widths. arch "conv": the convolutional
    networks of models/conv_nets.hpp for images of image = (channels, height, width), whose
    examples arrive flat with the channels interleaved ([H, W, C] per example).
    classes > 0: the conditional VAE (models/conditional_vae.hpp), whose networks also take the
    class as a one-hot vector: appended to the input columns (conv: as constant image channels
    after the image's own) and to z."""

    def __init__(self, input_dim=784, hidden=(400,), latent=20, decoder="bernoulli", arch="mlp", image=None,
                 classes=0):
        super().__init__()
        self.decoder_kind, self.arch, self.image, self.classes = decoder, arch, image, classes
        if arch == "conv":
            c, h, w = image
            flat = 64 * (h // 4) * (w // 4)
            self.encoder = nn.Sequential(
                nn.Conv2d(c + classes, 32, 4, 2, 1), nn.ReLU(), nn.Conv2d(32, 64, 4, 2, 1), nn.ReLU(),
                nn.Flatten(), nn.Linear(flat, 256), nn.ReLU())
            self.mu, self.logvar = nn.Linear(256, latent), nn.Linear(256, latent)
            self.decoder = nn.Sequential(
                nn.Linear(latent + classes, 256), nn.ReLU(), nn.Linear(256, flat), nn.ReLU(),
                nn.Unflatten(1, (64, h // 4, w // 4)), nn.ConvTranspose2d(64, 32, 4, 2, 1), nn.ReLU())
            self.out = nn.ConvTranspose2d(32, c, 4, 2, 1)
            if decoder == "gaussian-learned":
                self.out_logvar = nn.ConvTranspose2d(32, c, 4, 2, 1)
            return
        layers, width = [], input_dim + classes
        for h in hidden:
            layers += [nn.Linear(width, h), nn.ReLU()]
            width = h
        self.encoder = nn.Sequential(*layers)
        self.mu = nn.Linear(width, latent)
        self.logvar = nn.Linear(width, latent)
        layers, width = [], latent + classes
        for h in reversed(hidden):
            layers += [nn.Linear(width, h), nn.ReLU()]
            width = h
        self.decoder = nn.Sequential(*layers)
        self.out = nn.Linear(width, input_dim)
        if decoder == "gaussian-learned":
            self.out_logvar = nn.Linear(width, input_dim)

    def to_images(self, x):
        c, h, w = self.image
        return x.reshape(len(x), h, w, c).permute(0, 3, 1, 2)

    def with_class(self, x, labels):
        """x with the labels' one-hot vectors: more columns, or more channels for images."""
        if not self.classes:
            return x
        onehot = F.one_hot(labels, self.classes).to(x.dtype)
        if x.dim() == 2:
            return torch.cat([x, onehot], 1)
        planes = onehot[:, :, None, None].expand(-1, -1, x.shape[2], x.shape[3])
        return torch.cat([x, planes], 1)

    def head(self, layer, d):
        """The decoder's last layer, its output flat as the examples are."""
        y = layer(d)
        return y.permute(0, 2, 3, 1).reshape(len(y), -1) if self.arch == "conv" else y

    def encode(self, x, labels=None):
        h = self.encoder(self.with_class(self.to_images(x) if self.arch == "conv" else x, labels))
        return self.mu(h), self.logvar(h)

    def forward(self, x, labels=None):
        mu, logvar = self.encode(x, labels)
        z = mu + torch.exp(0.5 * logvar) * torch.randn_like(mu)
        d = self.decoder(self.with_class(z, labels))
        return self.head(self.out, d), mu, logvar, d

    def reconstruct(self, x, labels=None):
        """The expected data decoded from the posterior mean, as `vae reconstruct` gives it."""
        mean = self.head(self.out, self.decoder(self.with_class(self.encode(x, labels)[0], labels)))
        return torch.sigmoid(mean) if self.decoder_kind == "bernoulli" else mean

    def loss(self, x, labels=None):
        """Per-batch sums of reconstruction and KL, as the C++ model defines them."""
        mean, mu, logvar, d = self(x, labels)
        if self.decoder_kind == "bernoulli":
            recon = F.binary_cross_entropy_with_logits(mean, x, reduction="sum")
        elif self.decoder_kind == "gaussian":
            recon = ((mean - x) ** 2).sum()
        else:
            lv = -6.0 + F.softplus(self.head(self.out_logvar, d) + 6.0)
            recon = 0.5 * (np.log(2 * np.pi) + lv + (x - mean) ** 2 / torch.exp(lv)).sum()
        kl = -0.5 * torch.sum(1 + logvar - mu.pow(2) - logvar.exp())
        return recon, kl


def model_from_checkpoint(path):
    tensors, meta = load_safetensors(path)
    hidden = [int(h) for h in meta["hidden"].split(",") if h] if meta.get("hidden") else []
    image = tuple(int(v) for v in meta["image"].split(",")) if meta.get("arch") == "conv" else None
    classes = int(meta["classes"]) if meta.get("model") == "conditional-vae" else 0
    model = VAE(int(meta["input_dim"]), hidden, int(meta["latent"]), meta["decoder"], meta.get("arch", "mlp"), image,
                classes)
    model.load_state_dict({k: torch.from_numpy(v.copy()) for k, v in tensors.items()})
    return model


# ---- data ----

def read_idx(path):
    opener = gzip.open if open(path, "rb").read(2) == b"\x1f\x8b" else open
    with opener(path, "rb") as f:
        raw = f.read()
    rank = raw[3]
    dims = struct.unpack(f">{rank}I", raw[4 : 4 + 4 * rank])
    dtype = {0x08: "u1", 0x0D: ">f4"}[raw[2]]
    return np.frombuffer(raw[4 + 4 * rank :], dtype=dtype).reshape(dims)


def find_idx(folder, split, kind):
    for name in (f"{split}-{kind}-idx{1 if kind == 'labels' else 3}-ubyte",
                 f"{split}-{kind}-idx{1 if kind == 'labels' else 3}-ubyte.gz"):
        path = os.path.join(folder, name)
        if os.path.exists(path):
            return read_idx(path)
    raise SystemExit(f"vae_pytorch: no {split} {kind} IDX file in {folder}")


def load_split(folder, split):
    images = find_idx(folder, split, "images")
    x = images.reshape(len(images), -1).astype(np.float32)
    return torch.from_numpy(x / 255.0 if images.dtype == np.uint8 else x)


def load_labels(folder, split):
    return torch.from_numpy(find_idx(folder, split, "labels").astype(np.int64))


@torch.no_grad()
def test_loss(model, x, labels=None, batch=500, seed=0):
    torch.manual_seed(seed)
    recon = kl = 0.0
    for i in range(0, len(x), batch):
        r, k = model.loss(x[i : i + batch], None if labels is None else labels[i : i + batch])
        recon, kl = recon + r.item(), kl + k.item()
    return (recon + kl) / len(x), recon / len(x), kl / len(x)


# ---- commands ----

def evaluate(args):
    model = model_from_checkpoint(args.checkpoint)
    labels = load_labels(args.data, "t10k") if model.classes else None
    loss, recon, kl = test_loss(model, load_split(args.data, "t10k"), labels)
    print(json.dumps({"test_loss": loss, "test_recon": recon, "test_kl": kl}))


def learning_rate(args, steps_per_epoch):
    """The learning rate of step t (from 0) as `vae train` sets it (tools/optimization.cpp):
    --lr, or half a cosine from --lr to 0 over --cosine-epochs, after a linear --lr-warmup."""
    epochs = args.cosine_epochs or args.epochs if args.lr_schedule == "cosine" else args.epochs
    total = max(1, epochs * steps_per_epoch)
    warmup = min(total - 1, math.floor(args.lr_warmup * steps_per_epoch + 0.5))

    def after_warmup(t):
        if args.lr_schedule == "constant":
            return args.lr
        return 0.0 if t >= total - warmup else args.lr * (1 + math.cos(math.pi * t / (total - warmup))) / 2

    return lambda t: after_warmup(t - warmup) if t >= warmup else after_warmup(0) * (t + 1) / warmup


def train(args):
    torch.set_num_threads(args.threads)
    torch.manual_seed(args.seed)
    x_train, x_test = load_split(args.data, "train"), load_split(args.data, "t10k")
    if args.limit:
        x_train = x_train[: args.limit]
    model = VAE(arch=args.arch, image=(1, 28, 28))
    if args.weight_decay > 0:
        opt = torch.optim.AdamW(model.parameters(), lr=args.lr, weight_decay=args.weight_decay)
    else:
        opt = torch.optim.Adam(model.parameters(), lr=args.lr)
    steps_per_epoch = (len(x_train) + args.batch - 1) // args.batch
    lr_at = learning_rate(args, steps_per_epoch)
    times, step = [], 0
    for epoch in range(1, args.epochs + 1):
        start = time.perf_counter()
        for idx in torch.randperm(len(x_train)).split(args.batch):
            recon, kl = model.loss(x_train[idx])
            loss = (recon + kl) / len(idx)
            opt.zero_grad()
            loss.backward()
            if args.clip_grad > 0:
                torch.nn.utils.clip_grad_norm_(model.parameters(), args.clip_grad)
            for group in opt.param_groups:
                group["lr"] = lr_at(step)
            opt.step()
            step += 1
        times.append(time.perf_counter() - start)
        loss, recon, kl = test_loss(model, x_test)
        print(json.dumps({"epoch": epoch, "seconds": times[-1], "test_loss": loss}), flush=True)


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = parser.add_subparsers(dest="command", required=True)
    e = sub.add_parser("evaluate", help="test loss of a model.safetensors written by train_vae")
    e.add_argument("checkpoint")
    e.add_argument("--data", default=FASHION)
    t = sub.add_parser("train", help="train the default VAE in PyTorch, printing seconds per epoch")
    t.add_argument("--epochs", type=int, default=1)
    t.add_argument("--seed", type=int, default=1)
    t.add_argument("--threads", type=int, default=1)
    t.add_argument("--batch", type=int, default=128)
    t.add_argument("--arch", choices=["mlp", "conv"], default="mlp")
    t.add_argument("--limit", type=int, default=0, help="train on the first N images only (0: all)")
    # The optimization flags of `vae train`, with the same meaning:
    t.add_argument("--lr", type=float, default=1e-3)
    t.add_argument("--lr-schedule", choices=["constant", "cosine"], default="constant")
    t.add_argument("--cosine-epochs", type=int, default=0, help="the cosine's length (0: --epochs)")
    t.add_argument("--lr-warmup", type=float, default=0.0, help="epochs of linear warm-up")
    t.add_argument("--weight-decay", type=float, default=0.0, help="> 0: AdamW")
    t.add_argument("--clip-grad", type=float, default=0.0, help="> 0: clip the gradients' global norm")
    t.add_argument("--data", default=FASHION)
    args = parser.parse_args()
    {"evaluate": evaluate, "train": train}[args.command](args)


if __name__ == "__main__":
    main()
