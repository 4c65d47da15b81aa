#!/usr/bin/python3
"""End-to-end tests of `vae train --conditional` and the subcommands on a conditional model.

Run by `meson test` as: test_conditional_tool.py PATH/TO/vae. Needs numpy (Debian's
python3-numpy); the data is generated (four noisy 8x8 patterns, labelled), so no download.
The model's forward pass is recomputed here in numpy from the weights in model.safetensors,
so the checks do not trust the C++ code they test; where python3-torch is installed,
scripts/vae_pytorch.py loads the checkpoints (MLP and conv) and must reconstruct the same.
"""
import json
import os
import shutil
import struct
import sys
import tempfile
import unittest

import test_vae_tool  # its run() and patterns(); exits 77 (skipped) without numpy
from test_vae_tool import patterns, run

import numpy as np

try:  # PyTorch loads the checkpoints in scripts/vae_pytorch.py; the other checks need only numpy
    import torch

    sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "scripts"))
    import vae_pytorch
except ImportError:
    torch = None

CLASSES = 4  # patterns() draws four classes


def read_safetensors(path):
    """(metadata, {name: float32 array}) of a safetensors file."""
    with open(path, "rb") as f:
        blob = f.read()
    (n,) = struct.unpack("<Q", blob[:8])
    header = json.loads(blob[8:8 + n])
    data = blob[8 + n:]
    tensors = {}
    for name, entry in header.items():
        if name == "__metadata__":
            continue
        begin, end = entry["data_offsets"]
        tensors[name] = np.frombuffer(data[begin:end], dtype=np.float32).reshape(entry["shape"])
    return header.get("__metadata__", {}), tensors


class Numpy:
    """The conditional VAE's forward pass (one hidden layer, ReLU), from its weights."""

    def __init__(self, weights):
        self.w = weights

    def layer(self, name, x):
        return x @ self.w[name + ".weight"].T.astype(np.float64) + self.w[name + ".bias"]

    def encode(self, x, labels):
        h = np.maximum(self.layer("encoder.0", np.hstack([x, np.eye(CLASSES)[labels]])), 0)
        return self.layer("mu", h), self.layer("logvar", h)

    def decode(self, z, labels):
        h = np.maximum(self.layer("decoder.0", np.hstack([z, np.eye(CLASSES)[labels]])), 0)
        return 1 / (1 + np.exp(-self.layer("out", h)))  # Bernoulli: the expected pixels


class Conditional(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.tmp = tempfile.mkdtemp(prefix="vae_conditional_")
        images, labels = patterns(400)
        cls.data = os.path.join(cls.tmp, "p.npy")
        np.save(cls.data, images)
        np.save(os.path.join(cls.tmp, "p-labels.npy"), labels)
        cls.images = images.reshape(len(images), -1).astype(np.float64) / 255
        cls.labels = labels
        cls.out = os.path.join(cls.tmp, "m")
        cls.train_output = run(*cls.small(cls.out, "--epochs", "2")).stdout
        cls.model = os.path.join(cls.out, "model.safetensors")
        cls.meta, weights = read_safetensors(cls.model)
        cls.net = Numpy(weights)

    @classmethod
    def tearDownClass(cls):
        shutil.rmtree(cls.tmp, ignore_errors=True)

    @classmethod
    def small(cls, out, *extra):
        return ("train", "--no-progress", "--conditional", "--data", cls.data, "--batch", "32", "--hidden", "16",
                "--latent", "3", "--val-split", "0.25", "--out", out, *extra)

    def path(self, name):
        return os.path.join(self.tmp, name)

    def test_the_checkpoint_names_the_model_and_its_classes(self):
        self.assertEqual(self.meta["model"], "conditional-vae")
        self.assertEqual(self.meta["classes"], str(CLASSES))
        ckpt, _ = read_safetensors(os.path.join(self.out, "checkpoint.safetensors"))
        self.assertEqual(ckpt["option.conditional"], "1")
        # The one-hot class adds CLASSES input columns to the encoder and to the decoder.
        self.assertEqual(self.net.w["encoder.0.weight"].shape, (16, 64 + CLASSES))
        self.assertEqual(self.net.w["decoder.0.weight"].shape, (16, 3 + CLASSES))
        self.assertIn("ConditionalVae(input=64, classes=4", self.train_output)
        r = run("info", self.model)
        self.assertIn("conditional on 4 classes", r.stdout)

    def test_samples_of_a_class_are_reproducible_and_decode_that_class(self):
        a, b = self.path("a.npy"), self.path("b.npy")
        run("sample", self.model, "--label", "2", "-n", "6", "--seed", "4", "--out", a)
        run("sample", self.model, "--label", "2", "-n", "6", "--seed", "4", "--out", b)
        with open(a, "rb") as f, open(b, "rb") as g:
            self.assertEqual(f.read(), g.read())
        self.assertEqual(np.load(a).shape, (6, 8, 8))
        # At temperature 0 every draw is z = 0: the decoder's image of class K, computed here.
        for k in range(CLASSES):
            cold = self.path(f"cold{k}.npy")
            run("sample", self.model, "--label", str(k), "-n", "2", "--temperature", "0", "--out", cold)
            expected = self.net.decode(np.zeros((1, 3)), np.array([k]))[0].reshape(8, 8)
            self.assertTrue(np.allclose(np.load(cold), expected, atol=1e-5), k)
        # Without --label: one row per class, -n draws each.
        grid = self.path("grid.npy")
        r = run("sample", self.model, "-n", "3", "--temperature", "0", "--out", grid)
        self.assertIn("3 of each of 4 classes", r.stdout)
        x = np.load(grid)
        self.assertEqual(x.shape, (12, 8, 8))
        for k in range(CLASSES):
            self.assertTrue(np.allclose(x[3 * k:3 * k + 3], np.load(self.path(f"cold{k}.npy"))[0], atol=1e-6))
        png = self.path("grid.png")
        run("sample", self.model, "--out", png)
        with open(png, "rb") as f:
            self.assertEqual(f.read(8), b"\x89PNG\r\n\x1a\n")

    def numpy_iwae_nll(self, x, labels, k, seed):
        """-log p(x | y) by the importance-weighted bound with K draws of numpy's own, mean over x."""
        mu, logvar = self.net.encode(x, labels)
        eps = np.random.default_rng(seed).standard_normal((k,) + mu.shape)
        z = mu + np.exp(0.5 * logvar) * eps  # [K, n, Z]
        onehot = np.broadcast_to(np.eye(CLASSES)[labels], (k, len(x), CLASSES))
        logits = self.net.layer("out", np.maximum(self.net.layer("decoder.0", np.concatenate([z, onehot], axis=2)), 0))
        log_px = np.sum(x * logits - np.logaddexp(0, logits), axis=2)  # Bernoulli
        log_pz = np.sum(-0.5 * (z ** 2 + np.log(2 * np.pi)), axis=2)
        log_qz = np.sum(-0.5 * (eps ** 2 + np.log(2 * np.pi) + logvar), axis=2)
        log_w = log_px + log_pz - log_qz
        top = log_w.max(axis=0)
        return -np.mean(top + np.log(np.mean(np.exp(log_w - top), axis=0)))

    def test_the_importance_weighted_bound_matches_one_computed_in_numpy(self):
        # Two estimates of -log p(x | y) from independent draws agree within their sampling
        # noise; giving every example class 1 instead of its own gives another figure.
        n, k = 40, 2000
        x, labels = self.images[:n], self.labels[:n]
        nll = []
        for flags, classes in (((), labels), (("--label", "1"), np.ones(n, dtype=int))):
            result = self.path("iwae.json")
            run("evaluate", self.model, "--data", self.data, "--limit", str(n), "--iwae", str(k), "--json", result,
                "--force", *flags)
            with open(result) as f:
                figures = json.load(f)
            expected = self.numpy_iwae_nll(x, classes, k, seed=3)
            self.assertAlmostEqual(figures["nll_iwae"], expected, delta=0.015, msg=flags)  # measured: 0.004
            self.assertLess(figures["nll_iwae"], figures["neg_elbo"], flags)
            nll.append(figures["nll_iwae"])
        self.assertGreater(abs(nll[1] - nll[0]), 0.05)  # measured: 0.09 for this briefly trained model

    def test_a_2d_latent_draws_one_manifold_per_class(self):
        out = self.path("m2")
        args = list(self.small(out, "--epochs", "1"))
        args[args.index("--latent") + 1] = "2"
        r = run(*args)
        pictures = []
        for k in range(CLASSES):
            with open(os.path.join(out, f"manifold-{k}.png"), "rb") as f:
                pictures.append(f.read())
        self.assertTrue(all(p.startswith(b"\x89PNG\r\n\x1a\n") for p in pictures))
        self.assertEqual(len(set(pictures)), CLASSES)  # each class decodes its own plane
        self.assertFalse(os.path.exists(os.path.join(out, "manifold.png")))
        self.assertIn("manifold-3.png", r.stdout)

    def test_evaluate_and_reconstruct_match_the_model_computed_in_numpy(self):
        result, recon = self.path("eval.json"), self.path("recon.npy")
        run("evaluate", self.model, "--data", self.data, "--limit", "100", "--json", result)
        with open(result) as f:
            figures = json.load(f)
        mu, logvar = self.net.encode(self.images[:100], self.labels[:100])
        kl = np.mean(np.sum(-0.5 * (1 + logvar - mu ** 2 - np.exp(logvar)), axis=1))
        self.assertAlmostEqual(figures["kl"], kl, delta=1e-4 * kl)
        self.assertAlmostEqual(figures["neg_elbo"], figures["reconstruction"] + figures["kl"], places=6)
        run("reconstruct", self.model, "--data", self.data, "--limit", "100", "--out", recon)
        expected = self.net.decode(mu, self.labels[:100]).reshape(100, 8, 8)
        self.assertTrue(np.allclose(np.load(recon), expected, atol=1e-5))
        # --label K gives every example class K instead of its own.
        run("reconstruct", self.model, "--data", self.data, "--limit", "100", "--label", "1", "--out", recon, "--force")
        mu1, _ = self.net.encode(self.images[:100], np.ones(100, dtype=int))
        self.assertTrue(np.allclose(np.load(recon), self.net.decode(mu1, np.ones(100, dtype=int)).reshape(100, 8, 8),
                                    atol=1e-5))
        # score's per-example figures average to evaluate's.
        scores = self.path("scores.csv")
        run("score", self.model, "--data", self.data, "--limit", "100", "--out", scores)
        values = np.loadtxt(scores, delimiter=",", skiprows=1, usecols=2)
        self.assertLess(abs(values.mean() - figures["neg_elbo"]), 1e-3)

    def test_encode_then_decode_with_the_label_column_equals_reconstruct(self):
        codes, decoded, recon = self.path("codes.csv"), self.path("decoded.npy"), self.path("recon2.npy")
        run("encode", self.model, "--data", self.data, "--limit", "50", "--out", codes)
        run("decode", self.model, codes, "--out", decoded)
        run("reconstruct", self.model, "--data", self.data, "--limit", "50", "--out", recon)
        self.assertTrue(np.allclose(np.load(decoded), np.load(recon), atol=1e-5))
        # CODES.CSV (upper case) lost its label column to a CODES-labels.npy, which decode does not read.
        upper = self.path("CODES.CSV")
        run("encode", self.model, "--data", self.data, "--limit", "50", "--out", upper)
        run("decode", self.model, upper, "--out", decoded, "--force")
        self.assertTrue(np.allclose(np.load(decoded), np.load(recon), atol=1e-5))
        self.assertFalse(os.path.exists(self.path("CODES-labels.npy")))
        npy = self.path("codes.npy")
        run("encode", self.model, "--data", self.data, "--limit", "50", "--out", npy)
        r = run("decode", self.model, npy, "--out", decoded, expect=2)  # no label column: which class?
        self.assertIn("--label", r.stderr)
        run("decode", self.model, npy, "--label", "3", "--out", decoded, "--force")
        z = np.load(npy)[:, :3]
        self.assertTrue(np.allclose(np.load(decoded), self.net.decode(z, np.full(50, 3)).reshape(50, 8, 8),
                                    atol=1e-5))
        run("traverse", self.model, "--label", "0", "--dims", "1", "--steps", "3", "--out", self.path("t.npy"))
        r = run("traverse", self.model, "--out", self.path("t.npy"), expect=2)
        self.assertIn("--label", r.stderr)
        strip = self.path("path.npy")
        run("interpolate", self.model, "--data", self.data, "--limit", "10", "--from", "1", "--to", "2", "--steps",
            "3", "--out", strip)
        ends = self.net.decode(self.net.encode(self.images[1:3], self.labels[1:3])[0], np.full(2, self.labels[1]))
        self.assertTrue(np.allclose(np.load(strip)[0], ends[0].reshape(8, 8), atol=1e-5))

    def test_resuming_gives_the_run_trained_in_one_go(self):
        out = self.path("m_resumed")
        run(*self.small(out, "--epochs", "1"))
        run("train", "--resume", os.path.join(out, "checkpoint.safetensors"), "--data", self.data, "--epochs", "2",
            "--out", out, "--no-progress")
        _, resumed = read_safetensors(os.path.join(out, "model.safetensors"))
        self.assertEqual(sorted(resumed), sorted(self.net.w))
        for name, value in resumed.items():
            self.assertTrue(np.array_equal(value, self.net.w[name]), name)

    def test_wrong_labels_and_unlabelled_data_are_refused(self):
        plain = self.path("m_plain")
        run("train", "--no-progress", "--data", self.data, "--batch", "32", "--hidden", "16", "--latent", "3",
            "--epochs", "1", "--out", plain)
        r = run("train", "--resume", os.path.join(plain, "checkpoint.safetensors"), "--data", self.data,
                "--conditional", "--epochs", "2", "--out", plain, expect=1)
        self.assertIn("--conditional 1 contradicts", r.stderr)
        out = self.path("never.npy")
        r = run("sample", os.path.join(plain, "model.safetensors"), "--label", "1", "--out", out, expect=2)
        self.assertIn("--label", r.stderr)
        self.assertIn("without --conditional", r.stderr)
        r = run("sample", self.model, "--label", "4", "--out", out, expect=2)
        self.assertIn("--label: 4 is out of range", r.stderr)
        # -n is per class without --label: its bound of a million draws was multiplied by the classes.
        r = run("sample", self.model, "-n", "300000", "--out", out, expect=2)
        self.assertIn("-n: 300000 for each of 4 classes is more than 1000000 draws", r.stderr)
        self.assertFalse(os.path.exists(out))
        unlabelled = self.path("u.npy")
        np.save(unlabelled, patterns(64)[0])
        r = run("train", "--conditional", "--data", unlabelled, "--out", self.path("m_u"), expect=2)
        self.assertIn("--conditional", r.stderr)
        self.assertIn("no labels", r.stderr)
        self.assertFalse(os.path.exists(self.path("m_u")))
        r = run("evaluate", self.model, "--data", unlabelled, expect=1)
        self.assertIn("u.npy (train split) has no labels", r.stderr)
        # Labelled training examples, an unlabelled test split: refused at the first evaluation,
        # after an epoch of training, naming neither, and the run's folder was left behind empty.
        half = self.path("half_labelled.npz")
        images, labels = patterns(64)
        np.savez(half, x_train=images[:48], y_train=labels[:48], x_test=images[48:])
        r = run("train", "--conditional", "--data", half, "--out", self.path("m_half"), expect=1)
        self.assertIn(f"--conditional: the test examples of {half} have no labels", r.stderr)
        self.assertFalse(os.path.exists(self.path("m_half")))
        # A label the model lacks said neither the file nor the example it came from.
        seven = self.path("seven.npy")
        images, labels = patterns(16)
        labels[5] = 7
        np.save(seven, images)
        np.save(self.path("seven-labels.npy"), labels)
        for command in ("evaluate", "encode", "reconstruct", "score"):
            extra = {"encode": ["--out", self.path("c.npy")], "reconstruct": ["--out", self.path("r.npy")],
                     "score": ["--out", self.path("s.csv")]}.get(command, [])
            r = run(command, self.model, "--data", seven, *extra, expect=1)
            self.assertIn("seven.npy (train split): example 6: label 7 is not one of the model's 4 classes",
                          r.stderr, command)
        r = run("score", self.model, "--data", self.data, "--threshold-from", seven, "--out", self.path("s.csv"), expect=1)
        self.assertIn("seven.npy (--threshold-from): example 6: label 7", r.stderr)
        run("evaluate", self.model, "--data", unlabelled, "--label", "2")
        # decode's label column (encode's last): a label past int32 was cast as it came
        # (undefined behaviour, the sanitizers' report), a fraction was truncated.
        z = np.zeros((2, 7), np.float32)
        for bad, text in ((1e10, "10000000000"), (1.5, "1.5"), (-1, "-1")):
            z[1, 6] = bad
            codes = self.path("bad-codes.npy")
            np.save(codes, z)
            r = run("decode", self.model, codes, "--out", out, expect=1)
            self.assertIn(f"bad-codes.npy: row 2: label {text} (the last column) is not one of the model's", r.stderr)
            self.assertFalse(os.path.exists(out))

    @unittest.skipUnless(torch, "python3-torch is not installed")
    def test_pytorch_loads_the_checkpoint_and_reconstructs_the_same(self):
        model = vae_pytorch.model_from_checkpoint(self.model)
        recon = self.path("recon_torch.npy")
        run("reconstruct", self.model, "--data", self.data, "--limit", "100", "--out", recon)
        with torch.no_grad():
            expected = model.reconstruct(torch.from_numpy(self.images[:100]).float(),
                                         torch.from_numpy(self.labels[:100])).numpy()
        self.assertTrue(np.allclose(np.load(recon).reshape(100, -1), expected, atol=1e-5))


class ConvConditional(unittest.TestCase):
    """--conditional --arch conv on colour images: the class enters the encoder as constant channels."""

    @classmethod
    def setUpClass(cls):
        cls.tmp = tempfile.mkdtemp(prefix="vae_conditional_conv_")
        images, labels = patterns(160)
        rgb = np.stack([images, 255 - images, images // 2], axis=1)  # channels first: [N, 3, 8, 8]
        cls.data = os.path.join(cls.tmp, "rgb.npy")
        np.save(cls.data, rgb)
        np.save(os.path.join(cls.tmp, "rgb-labels.npy"), labels)
        cls.rgb, cls.labels = rgb, labels
        cls.out = os.path.join(cls.tmp, "m")
        run(*cls.args(cls.out, "--epochs", "2"))
        cls.model = os.path.join(cls.out, "model.safetensors")

    @classmethod
    def tearDownClass(cls):
        shutil.rmtree(cls.tmp, ignore_errors=True)

    @classmethod
    def args(cls, out, *extra):
        return ("train", "--no-progress", "--conditional", "--arch", "conv", "--data", cls.data, "--batch", "32",
                "--latent", "3", "--val-split", "0.25", "--out", out, *extra)

    def test_the_class_adds_input_channels_and_decoder_inputs(self):
        meta, weights = read_safetensors(self.model)
        self.assertEqual(meta["model"], "conditional-vae")
        self.assertEqual(meta["arch"], "conv")
        self.assertEqual(weights["encoder.0.weight"].shape, (32, 3 + CLASSES, 4, 4))
        self.assertEqual(weights["decoder.0.weight"].shape, (256, 3 + CLASSES))
        self.assertEqual(weights["out.weight"].shape, (32, 3, 4, 4))
        samples = os.path.join(self.tmp, "s.npy")
        run("sample", self.model, "--label", "2", "-n", "4", "--out", samples)
        self.assertEqual(np.load(samples).shape, (4, 3, 8, 8))

    def test_resuming_gives_the_run_trained_in_one_go(self):
        out = os.path.join(self.tmp, "resumed")
        run(*self.args(out, "--epochs", "1"))
        checkpoint = os.path.join(out, "checkpoint.safetensors")
        # Without --data the run reads the checkpoint's data; gone, it is named.
        moved = self.data + ".moved"
        os.rename(self.data, moved)
        try:
            r = run("train", "--resume", checkpoint, "--epochs", "2", "--out", out, "--no-progress", expect=1)
        finally:
            os.rename(moved, self.data)
        self.assertIn(f"was trained on {self.data}, which is not there any more", r.stderr)
        run("train", "--resume", checkpoint, "--epochs", "2", "--out", out, "--no-progress")
        with open(self.model, "rb") as a, open(os.path.join(out, "model.safetensors"), "rb") as b:
            self.assertEqual(a.read(), b.read())

    def test_the_learned_variance_decoder_trains_and_resumes(self):
        out, resumed = os.path.join(self.tmp, "learned"), os.path.join(self.tmp, "learned_resumed")
        run(*self.args(out, "--epochs", "2", "--decoder", "gaussian-learned"))
        _, weights = read_safetensors(os.path.join(out, "model.safetensors"))
        self.assertEqual(weights["out_logvar.weight"].shape, (32, 3, 4, 4))
        run(*self.args(resumed, "--epochs", "1", "--decoder", "gaussian-learned"))
        run("train", "--resume", os.path.join(resumed, "checkpoint.safetensors"), "--data", self.data, "--epochs", "2",
            "--out", resumed, "--no-progress")
        with open(os.path.join(out, "model.safetensors"), "rb") as a, \
                open(os.path.join(resumed, "model.safetensors"), "rb") as b:
            self.assertEqual(a.read(), b.read())
        if torch:
            self.check_pytorch_reconstructs_the_same(os.path.join(out, "model.safetensors"))

    @unittest.skipUnless(torch, "python3-torch is not installed")
    def test_pytorch_loads_the_checkpoint_and_reconstructs_the_same(self):
        self.check_pytorch_reconstructs_the_same(self.model)

    def check_pytorch_reconstructs_the_same(self, path):
        model = vae_pytorch.model_from_checkpoint(path)
        for label in (None, "1"):
            recon = os.path.join(self.tmp, f"recon{label}.npy")
            run("reconstruct", path, "--data", self.data, "--out", recon, "--force", *(("--label", label) if label else ()))
            labels = self.labels if label is None else np.full(len(self.labels), int(label))
            rows = torch.from_numpy(self.rgb.transpose(0, 2, 3, 1).reshape(len(self.rgb), -1) / 255).float()
            with torch.no_grad():
                expected = model.reconstruct(rows, torch.from_numpy(labels)).numpy()
            expected = expected.reshape(-1, 8, 8, 3).transpose(0, 3, 1, 2)  # back to the data's layout
            self.assertTrue(np.allclose(np.load(recon), expected, atol=1e-5), label)


if __name__ == "__main__":
    test_vae_tool.VAE = os.path.abspath(sys.argv.pop(1))
    unittest.main(verbosity=2)
