#!/usr/bin/python3
"""End-to-end tests of tools/vae's subcommands, checking what their outputs contain.

Run by `meson test` as: test_vae_tool.py PATH/TO/vae. Needs numpy (Debian's python3-numpy)
and Fashion-MNIST (a model trained for one epoch on 2,000 of its images); exits 77
(skipped) without them.
"""
import gzip
import json
import math
import os
import shutil
import struct
import subprocess
import sys
import tempfile
import unittest
import zlib

try:
    import numpy as np
except ImportError:
    print("numpy is not installed; skipping")
    sys.exit(77)

VAE = None
FASHION = "/usr/share/datasets/fashion-mnist"


def run(*args, expect=0):
    result = subprocess.run([VAE, *args], capture_output=True, text=True, stdin=subprocess.DEVNULL, timeout=600)
    if expect is not None and result.returncode != expect:
        raise AssertionError(f"vae {' '.join(args)} exited {result.returncode}, expected {expect}\n"
                             f"stdout:\n{result.stdout}\nstderr:\n{result.stderr}")
    return result


def read_safetensors(path):
    with open(path, "rb") as f:
        blob = f.read()
    (n,) = struct.unpack("<Q", blob[:8])
    return json.loads(blob[8:8 + n]), blob[8 + n:]


def rewrite_metadata(src, dst, **changes):
    """A copy of a safetensors file with some metadata values replaced."""
    header, data = read_safetensors(src)
    header["__metadata__"].update(changes)
    text = json.dumps(header).encode()
    text += b" " * (-len(text) % 8)
    with open(dst, "wb") as f:
        f.write(struct.pack("<Q", len(text)) + text + data)


def write_png(path, pixels):
    """An 8-bit PNG from a uint8 array, [h, w] gray or [h, w, 3] RGB (zlib + struct)."""
    h, w = pixels.shape[:2]
    colour = 2 if pixels.ndim == 3 else 0
    raw = b"".join(b"\x00" + pixels[r].tobytes() for r in range(h))

    def chunk(kind, body):
        return struct.pack(">I", len(body)) + kind + body + struct.pack(">I", zlib.crc32(kind + body) & 0xFFFFFFFF)

    with open(path, "wb") as f:
        f.write(b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", struct.pack(">IIBBBBB", w, h, 8, colour, 0, 0, 0))
                + chunk(b"IDAT", zlib.compress(raw)) + chunk(b"IEND", b""))


def patterns(n, side=8, seed=3):
    """n noisy copies of four prototype patterns, uint8 [n, side, side], and their labels."""
    rng = np.random.default_rng(seed)
    protos = (rng.random((4, side, side)) < 0.4) * 255
    labels = np.arange(n) % 4
    flips = rng.random((n, side, side)) < 0.05
    images = np.where(flips, 255 - protos[labels], protos[labels]).astype(np.uint8)
    return images, labels.astype(np.int64)


@unittest.skipUnless(os.path.isdir(FASHION), "Fashion-MNIST is not installed")
class Subcommands(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.tmp = tempfile.mkdtemp(prefix="vae_tool_test_")
        cls.model_dir = os.path.join(cls.tmp, "model")
        run("train", "--no-progress", "--limit", "2000", "--epochs", "1", "--hidden", "64", "--latent", "4",
            "--out", cls.model_dir)
        cls.model = os.path.join(cls.model_dir, "model.safetensors")
        cls.ckpt = os.path.join(cls.model_dir, "checkpoint.safetensors")

    @classmethod
    def tearDownClass(cls):
        shutil.rmtree(cls.tmp, ignore_errors=True)

    def path(self, name):
        return os.path.join(self.tmp, name)

    def test_sample_is_reproducible_and_shaped(self):
        a, b, c = self.path("s_a.npy"), self.path("s_b.npy"), self.path("s_c.npy")
        run("sample", self.model, "-n", "16", "--seed", "4", "--out", a)
        run("sample", self.model, "-n", "16", "--seed", "4", "--out", b)
        run("sample", self.model, "-n", "16", "--seed", "5", "--out", c)
        with open(a, "rb") as f, open(b, "rb") as g:
            self.assertEqual(f.read(), g.read())
        x = np.load(a)
        self.assertEqual(x.shape, (16, 28, 28))
        self.assertTrue(((x >= 0) & (x <= 1)).all())
        self.assertFalse(np.array_equal(x, np.load(c)))
        cold = self.path("s_cold.npy")
        run("sample", self.model, "-n", "16", "--seed", "4", "--temperature", "0", "--out", cold)
        cold = np.load(cold)
        self.assertTrue(np.allclose(cold, cold[0]))  # z = 0 for every draw
        png = self.path("s.png")
        run("sample", self.model, "-n", "16", "--out", png)
        with open(png, "rb") as f:
            self.assertEqual(f.read(8), b"\x89PNG\r\n\x1a\n")

    def test_encode_then_decode_equals_reconstruct(self):
        codes, decoded, recon = self.path("codes.npy"), self.path("decoded.npy"), self.path("recon.npy")
        run("encode", self.model, "--limit", "100", "--out", codes)
        run("decode", self.model, codes, "--out", decoded)
        run("reconstruct", self.model, "--limit", "100", "--out", recon)
        z = np.load(codes)
        self.assertEqual(z.shape, (100, 8))
        self.assertTrue(np.allclose(np.load(decoded), np.load(recon), atol=1e-6))
        labels = np.load(self.path("codes-labels.npy"))
        plain = os.path.join(FASHION, "t10k-labels-idx1-ubyte")
        with (open(plain, "rb") if os.path.exists(plain) else gzip.open(plain + ".gz", "rb")) as f:
            expected = np.frombuffer(f.read()[8:8 + 100], dtype=np.uint8)
        self.assertTrue(np.array_equal(labels, expected))
        # The CSV form: a header, the label as last column; decode reads it back the same.
        csv, decoded_csv = self.path("codes.csv"), self.path("decoded_csv.npy")
        run("encode", self.model, "--limit", "100", "--out", csv)
        with open(csv) as f:
            header = f.readline().strip().split(",")
        self.assertEqual(header[:2], ["mu0", "mu1"])
        self.assertEqual(header[-1], "label")
        table = np.loadtxt(csv, delimiter=",", skiprows=1)
        self.assertTrue(np.allclose(table[:, :8], z, atol=1e-6))
        self.assertTrue(np.array_equal(table[:, 8], expected))
        run("decode", self.model, csv, "--out", decoded_csv)
        self.assertTrue(np.allclose(np.load(decoded_csv), np.load(recon), atol=1e-5))

    def test_interpolation_endpoints_decode_the_two_means(self):
        codes, decoded, strip = self.path("i_codes.npy"), self.path("i_decoded.npy"), self.path("path.png")
        run("encode", self.model, "--limit", "10", "--out", codes)
        run("decode", self.model, codes, "--out", decoded)
        run("interpolate", self.model, "--limit", "10", "--from", "3", "--to", "7", "--steps", "5", "--out", strip)
        path = np.load(self.path("path.npy"))
        self.assertEqual(path.shape, (5, 28, 28))
        ends = np.load(decoded)
        self.assertTrue(np.allclose(path[0], ends[3], atol=1e-5))
        self.assertTrue(np.allclose(path[-1], ends[7], atol=1e-5))
        self.assertTrue(os.path.isfile(strip))
        run("interpolate", self.model, "--limit", "10", "--from", "3", "--to", "7", "--steps", "5", "--slerp",
            "--out", self.path("slerp.npy"))
        slerp = np.load(self.path("slerp.npy"))
        self.assertTrue(np.allclose(slerp[0], ends[3], atol=1e-5))
        self.assertFalse(np.allclose(slerp[2], path[2], atol=1e-6))
        r = run("interpolate", self.model, "--limit", "10", "--from", "3", "--to", "10", "--out", strip, expect=2)
        self.assertIn("--to", r.stderr)
        # --out STRIP.PNG: the strip was written as STRIP.png, and nothing under the name asked for.
        upper = self.path("STRIP.PNG")
        run("interpolate", self.model, "--limit", "10", "--steps", "3", "--out", upper)
        self.assertTrue(os.path.isfile(upper))
        self.assertTrue(os.path.isfile(self.path("STRIP.npy")))

    def test_traverse_rows_meet_at_the_prior_mean(self):
        out = self.path("traverse.npy")
        run("traverse", self.model, "--dims", "0,2", "--steps", "5", "--range", "2", "--out", out)
        x = np.load(out)
        self.assertEqual(x.shape, (10, 28, 28))
        self.assertTrue(np.allclose(x[2], x[7], atol=1e-6))   # z = 0 in both rows
        self.assertFalse(np.allclose(x[0], x[4], atol=1e-3))  # the sweep changes the image
        run("traverse", self.model, "--out", self.path("traverse.png"))
        r = run("traverse", self.model, "--dims", "4", "--out", out, expect=2)
        self.assertIn("--dims", r.stderr)

    def test_score_mean_equals_evaluate(self):
        scores, result = self.path("scores.csv"), self.path("eval.json")
        r = run("score", self.model, "--limit", "300", "--anomaly-classes", "1", "--out", scores)
        run("evaluate", self.model, "--limit", "300", "--json", result)
        with open(scores) as f:
            rows = f.read().splitlines()
        self.assertEqual(rows[0], "index,label,score_nats,bits_per_dim")
        values = [float(row.split(",")[2]) for row in rows[1:]]
        self.assertEqual(len(values), 300)
        bits = float(rows[1].split(",")[3])
        self.assertAlmostEqual(bits, values[0] / (784 * math.log(2)), places=4)
        with open(result) as f:
            figures = json.load(f)
        self.assertLess(abs(sum(values) / len(values) - figures["neg_elbo"]), 1e-3)
        self.assertAlmostEqual(figures["neg_elbo"], figures["reconstruction"] + figures["kl"], places=6)
        auroc = float(r.stdout.split("AUROC ")[1].split()[0])
        self.assertTrue(0.0 <= auroc <= 1.0)
        # A threshold at the 90th percentile of the same data flags about a tenth of it.
        run("score", self.model, "--limit", "300", "--threshold-from", FASHION, "--percentile", "90",
            "--out", scores, "--force")
        with open(scores) as f:
            flagged = [row.split(",")[4] for row in f.read().splitlines()[1:]]
        self.assertLessEqual(abs(flagged.count("1") - 30), 15)

    def test_iwae_bound_is_tighter_than_the_elbo(self):
        r = run("evaluate", self.model, "--limit", "100", "--iwae", "20")
        elbo = float(r.stdout.split("negative ELBO ")[1].split()[0])
        nll = float(r.stdout.split("NLL <= ")[1].split()[0])
        self.assertLess(nll, elbo + 1.0)

    def test_subcommands_refuse_to_replace_a_file_unless_forced(self):
        samples = self.path("kept.npy")
        run("sample", self.model, "-n", "4", "--seed", "1", "--out", samples)
        with open(samples, "rb") as f:
            before = f.read()
        r = run("sample", self.model, "-n", "4", "--seed", "2", "--out", samples, expect=1)
        self.assertIn(f"{samples} already exists; pass --force", r.stderr)
        with open(samples, "rb") as f:
            self.assertEqual(f.read(), before)
        run("sample", self.model, "-n", "4", "--seed", "2", "--out", samples, "--force")
        with open(samples, "rb") as f:
            self.assertNotEqual(f.read(), before)
        # Files written beside --out count too: reconstruct's picture, encode's labels.
        picture = self.path("kept_recon.png")
        with open(picture, "wb") as f:
            f.write(b"mine")
        r = run("reconstruct", self.model, "--limit", "10", "--out", self.path("kept_recon.npy"), expect=1)
        self.assertIn(picture, r.stderr)
        self.assertFalse(os.path.exists(self.path("kept_recon.npy")))
        labels = self.path("kept_codes-labels.npy")
        with open(labels, "wb") as f:
            f.write(b"mine")
        r = run("encode", self.model, "--limit", "10", "--out", self.path("kept_codes.npy"), expect=1)
        self.assertIn(labels, r.stderr)
        for name in ("kept_recon.png", "kept_codes-labels.npy"):
            with open(self.path(name), "rb") as f:
                self.assertEqual(f.read(), b"mine")
        # --picture naming --out's file: the reconstructions were written, then replaced by the PNG.
        same = self.path("same.npy")
        r = run("reconstruct", self.model, "--limit", "10", "--out", same, "--picture", same, expect=2)
        self.assertIn("--picture: ", r.stderr)
        self.assertFalse(os.path.exists(same))

    def test_a_png_too_large_to_draw_is_an_error_not_a_skipped_file(self):
        # 9,000 samples of 28 x 28 in 8 columns: 1,125 rows, 33,752 pixels tall. The warning
        # a run's extra pictures get used to end this command with exit 0 and no file.
        out = self.path("too_large.png")
        r = run("sample", self.model, "-n", "9000", "--out", out, expect=1)
        self.assertIn(f"{out}: not written, the picture would be too large", r.stderr)
        self.assertFalse(os.path.exists(out))

    def test_data_the_model_cannot_read_is_refused_naming_it(self):
        # --threshold-from was read without the check --data gets: the encoder's own message
        # ("Vae::encode: input [20, 64] has 64 features"), not naming the file.
        small = self.path("eight_by_eight.npy")
        np.save(small, patterns(20)[0])
        out = self.path("never_scores.csv")
        r = run("score", self.model, "--limit", "20", "--threshold-from", small, "--out", out, expect=1)
        self.assertIn(f"{small} (train split): examples of shape [8,8] (64 values), but the model reads [28,28]",
                      r.stderr)
        self.assertFalse(os.path.exists(out))
        # Values past [0, 1] are no probabilities: a Bernoulli model's loss of them used to be
        # printed as a figure (vae train refuses such data).
        bright = self.path("bright.npy")
        np.save(bright, np.full((20, 28, 28), 2.0, np.float32))
        for args in (["evaluate", "--data", bright], ["score", "--threshold-from", bright, "--out", out]):
            r = run(args[0], self.model, "--limit", "20", *args[1:], expect=1)
            self.assertIn(f"{bright}: the train split has values in [2, 2], outside the [0, 1] a Bernoulli decoder",
                          r.stderr)
        self.assertFalse(os.path.exists(out))

    def test_denoising_prints_consistent_figures(self):
        out = self.path("denoised.npy")
        r = run("reconstruct", self.model, "--limit", "100", "--noise", "gaussian:0.2", "--out", out)
        noisy = r.stdout.split("noisy vs clean:")[1].split()
        mse, psnr = float(noisy[1]), float(noisy[3])
        self.assertTrue(0.01 < mse < 0.04, mse)  # sigma^2 = 0.04, less where [0, 1] clips
        self.assertAlmostEqual(psnr, -10 * math.log10(mse), places=1)
        self.assertTrue(os.path.isfile(self.path("denoised.png")))
        clean = self.path("clean.npy")
        run("reconstruct", self.model, "--limit", "100", "--noise", "gaussian:0", "--out", out, "--force")
        run("reconstruct", self.model, "--limit", "100", "--out", clean)
        self.assertTrue(np.array_equal(np.load(out), np.load(clean)))
        for bad in ("gauss:0.1", "mask:2", "saltpepper:nan"):
            r = run("reconstruct", self.model, "--noise", bad, "--out", out, expect=2)
            self.assertIn("--noise", r.stderr)

    def test_info_lists_the_configuration_and_every_tensor(self):
        r = run("info", self.ckpt)
        header, _ = read_safetensors(self.model)
        total = sum(math.prod(v["shape"]) for k, v in header.items() if k != "__metadata__")
        self.assertIn(f"parameters: {total}", r.stdout)
        self.assertIn("hidden=[64]", r.stdout)
        self.assertIn("epochs: 1", r.stdout)
        self.assertIn("classes: T-shirt/top", r.stdout)

    def test_hostile_flags_exit_2_name_the_flag_and_touch_nothing(self):
        out = self.path("hostile")
        os.makedirs(out)
        for args, flag in ((["--batch", "18446744073709551615"], "--batch"),
                           (["--batch", "18446744073709551616"], "--batch"),
                           (["--limit", "-1"], "--limit"), (["--seed", "-1"], "--seed"),
                           (["--seed", "18446744073709551616"], "--seed"),
                           (["--beta", "nan"], "--beta"), (["--kl-warmup", "nan"], "--kl-warmup"),
                           (["--beta", "-1"], "--beta"), (["--lr", "inf"], "--lr"),
                           (["--hidden", "100000"], "--hidden"), (["--latent", "1000000"], "--latent"),
                           (["--val-split", "1e308"], "--val-split")):
            r = run("train", "--out", out, *args, expect=2)
            self.assertIn(flag, r.stderr, args)
            self.assertLess(len(r.stderr), 300, r.stderr)  # readable bounds, not a 300-digit number
            self.assertEqual(os.listdir(out), [], args)
        a_file = os.path.join(out, "notes.txt")
        with open(a_file, "w") as f:
            f.write("mine")
        r = run("train", "--out", a_file, "--force", expect=2)
        self.assertIn("that is a file, not a folder", r.stderr)
        # a file on the way: "filesystem error: cannot create directories", after the data was read
        r = run("train", "--out", os.path.join(a_file, "run"), expect=2)
        self.assertIn(f"{a_file} is a file, not a folder", r.stderr)
        r = run("smaple", "--out", a_file, expect=2)  # CLI11's "A subcommand is required" named no word
        self.assertIn("vae: error: 'smaple' is not a subcommand; they are train, sample, encode", r.stderr)
        r = run("train", "--out", "", expect=2)  # was exit 1, "filesystem error: cannot create directories"
        self.assertIn("--out: the value is empty", r.stderr)
        out = self.path("hostile_empty_values")
        os.makedirs(out)
        # An empty value is an error naming the flag: "--lr=" took the next argument for its value
        # ("--lr= --epochs 1": "argument not expected: 1"), "--label ''", "--label-names ''" and
        # "--exclude-classes ''" were taken as the flag's absence, "--data ''" read the folder "".
        for args, flag in ((["--lr="], "--lr"), (["--lr=", "--epochs", "1"], "--lr"), (["--lr", ""], "--lr"),
                           (["--label-names", ""], "--label-names"), (["--exclude-classes", " "], "--exclude-classes"),
                           (["--data", ""], "--data"), (["--epochs", "1", "--batch="], "--batch")):
            r = run("train", "--out", out, *args, expect=2)
            self.assertIn(f"error: {flag}: the value is empty", r.stderr, args)
            self.assertEqual(os.listdir(out), [], args)
        # A switch given a value other than true, false, 1 or 0 (CLI11 read "--binarize=2" as true);
        # --epochs 0 refused before the folder is made (it was left behind, empty).
        r = run("train", "--out", out, "--binarize=2", expect=2)
        self.assertIn("--binarize: '2' is not true or false", r.stderr)
        config = os.path.join(self.tmp, "binarize_two.toml")
        with open(config, "w") as f:
            f.write("binarize = 2\n")
        r = run("train", "--config", config, "--out", out, expect=2)
        self.assertIn("--binarize: '2' is not true or false", r.stderr)
        r = run("train", "--out", os.path.join(out, "new"), "--epochs", "0", expect=2)
        self.assertIn("--epochs: nothing to train (0 epochs)", r.stderr)
        self.assertEqual(os.listdir(out), [])
        for args in (["sample", self.model, "--out", os.path.join(out, "s.npy"), "--force=2"],
                     ["interpolate", self.model, "--out", os.path.join(out, "i.npy"), "--slerp=yes"]):
            r = run(*args, expect=2)
            self.assertIn(f"{args[-1].split('=')[0]}: '{args[-1].split('=')[1]}' is not true or false", r.stderr)
        r = run("sample", self.model, "--out", os.path.join(out, "s.npy"), "--label", "", expect=2)
        self.assertIn("error: --label: the value is empty", r.stderr)
        self.assertEqual(os.listdir(out), [])
        # A dimension may repeat: 1,001 rows of 1,000 steps were decoded at once (3 GB here).
        r = run("traverse", self.model, "--dims", ",".join(["0"] * 1001), "--steps", "1000", "--out",
                os.path.join(out, "t.npy"), expect=2)
        self.assertIn("--dims: 1001 dimensions of 1000 steps each are more than 1000000", r.stderr)
        # Classes no example has: the scores were written, then "AUROC needs examples of both kinds", exit 1.
        scores = os.path.join(out, "scores.csv")
        r = run("score", self.model, "--limit", "20", "--anomaly-classes", "99", "--out", scores, expect=2)
        self.assertIn("--anomaly-classes: none of the 20 examples", r.stderr)
        self.assertFalse(os.path.exists(scores))
        with open(a_file) as f:
            self.assertEqual(f.read(), "mine")

    def test_hostile_checkpoints_exit_1_before_allocating(self):
        huge = self.path("huge.safetensors")
        rewrite_metadata(self.ckpt, huge, hidden="1000000000,1000000000")
        r = run("info", huge, expect=1)
        self.assertIn("parameters", r.stderr)
        self.assertIn("huge.safetensors", r.stderr)
        out = self.path("resumed_huge")
        rewrite_metadata(self.ckpt, huge, **{"option.hidden": "1000000000"})
        r = run("train", "--resume", huge, "--epochs", "2", "--out", out, expect=1)
        self.assertIn("--hidden", r.stderr)
        negative = self.path("negative.safetensors")
        rewrite_metadata(self.ckpt, negative, **{"option.beta": "-1"})
        r = run("train", "--resume", negative, "--epochs", "2", "--out", out, expect=1)
        self.assertIn("--beta", r.stderr)
        rewrite_metadata(self.ckpt, negative, **{"option.kl-warmup": "nan"})
        r = run("train", "--resume", negative, "--epochs", "2", "--out", out, expect=1)
        self.assertIn("--kl-warmup", r.stderr)
        self.assertFalse(os.path.exists(out))
        # An example shape whose product wraps around 2^64 to the 784 inputs was believed: the
        # .npy written claimed [N, 2^62 + 196, 4].
        lying = self.path("lying_shape.safetensors")
        rewrite_metadata(self.model, lying, example_shape=f"{2**62 + 196},4")
        written = self.path("lying_shape.npy")
        run("sample", lying, "-n", "2", "--out", written)
        self.assertEqual(np.load(written).shape, (2, 784))
        rewrite_metadata(self.model, lying, example_shape="28,x")
        r = run("info", lying, expect=1)
        self.assertIn("lying_shape.safetensors: metadata example_shape: 'x' is not a whole number", r.stderr)
        # A NaN weight: sample wrote NaN examples (exit 0); a resumed run "diverged", blaming --lr.
        for src, name in ((self.model, "nan_weight.safetensors"), (self.ckpt, "nan_weight_ckpt.safetensors")):
            with open(src, "rb") as f:
                blob = bytearray(f.read())
            (n,) = struct.unpack("<Q", blob[:8])
            at = 8 + n + json.loads(blob[8:8 + n])["decoder.0.weight"]["data_offsets"][0] + 4 * 5
            blob[at:at + 4] = struct.pack("<f", float("nan"))
            with open(self.path(name), "wb") as f:
                f.write(blob)
        samples = self.path("nan_samples.npy")
        r = run("sample", self.path("nan_weight.safetensors"), "-n", "2", "--out", samples, expect=1)
        self.assertIn('nan_weight.safetensors: tensor "decoder.0.weight" holds a non-finite value (nan) at index 5',
                      r.stderr)
        self.assertFalse(os.path.exists(samples))
        r = run("train", "--resume", self.path("nan_weight_ckpt.safetensors"), "--epochs", "2", "--out", out, expect=1)
        self.assertIn('tensor "decoder.0.weight" holds a non-finite value (nan)', r.stderr)
        # No latent vectors: an empty .npy was written, a .png failed with write_grid's own words.
        empty = self.path("no_codes.npy")
        np.save(empty, np.zeros((0, 4), np.float32))
        for out in (self.path("no_codes_decoded.npy"), self.path("no_codes_decoded.png")):
            r = run("decode", self.model, empty, "--out", out, expect=1)
            self.assertIn(f"{empty}: holds no rows", r.stderr)
            self.assertFalse(os.path.exists(out))


class OwnData(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.tmp = tempfile.mkdtemp(prefix="vae_tool_data_")

    @classmethod
    def tearDownClass(cls):
        shutil.rmtree(cls.tmp, ignore_errors=True)

    def path(self, name):
        return os.path.join(self.tmp, name)

    def small(self, data, out, *extra):
        return ("train", "--no-progress", "--data", data, "--batch", "32", "--hidden", "16", "--latent", "2",
                "--epochs", "1", "--out", out, *extra)

    def test_npy_csv_and_png_folder_give_the_same_model(self):
        images, labels = patterns(200)
        np.save(self.path("p.npy"), images)
        np.save(self.path("p-labels.npy"), labels)
        folder = self.path("png")
        for k in range(4):
            os.makedirs(os.path.join(folder, f"class{k}"))
        for i, (image, label) in enumerate(zip(images, labels)):
            write_png(os.path.join(folder, f"class{label}", f"{i:04d}.png"), image)
        # Sorted file names within each class folder: the folder holds the examples class by class.
        order = np.argsort(labels, kind="stable")
        np.save(self.path("sorted.npy"), images[order])
        np.save(self.path("sorted-labels.npy"), labels[order])
        r = run(*self.small(self.path("sorted.npy"), self.path("m_npy")))
        self.assertIn("validation", r.stdout)  # no test split: 10% held out
        run(*self.small(folder, self.path("m_png")))
        _, a = read_safetensors(self.path("m_npy/model.safetensors"))
        _, b = read_safetensors(self.path("m_png/model.safetensors"))
        self.assertEqual(a, b)
        r = run("info", self.path("m_png/model.safetensors"))
        self.assertIn("classes: class0, class1, class2, class3", r.stdout)
        # CSV of floats p/255 with the label in column 1.
        with open(self.path("p.csv"), "w") as f:
            f.write("label," + ",".join(f"px{j}" for j in range(64)) + "\n")
            for image, label in zip(images[order], labels[order]):
                f.write(f"{label}," + ",".join(repr(v / 255.0) for v in image.reshape(-1)) + "\n")
        run(*self.small(self.path("p.csv"), self.path("m_csv"), "--label-column", "1"))
        codes = self.path("codes.npy")
        run("encode", self.path("m_npy/model.safetensors"), "--data", self.path("p.npy"), "--split", "train",
            "--out", codes)
        self.assertTrue(np.array_equal(np.load(self.path("codes-labels.npy")), labels))
        self.assertEqual(np.load(codes).shape, (200, 4))
        r = run("evaluate", self.path("m_npy/model.safetensors"), "--data", self.path("p.npy"))
        self.assertIn("200 examples (train split)", r.stdout)  # no test split: --split defaults to train

    def test_npy_of_any_byte_order_layout_and_number_type_gives_the_same_model(self):
        images, labels = patterns(100)
        x = (images / 255.0).astype(np.float32)
        variants = {"c": x, "big_endian": x.astype(">f4"), "fortran": np.asfortranarray(x), "f64": x.astype(np.float64)}
        weights = []
        for name, array in variants.items():
            np.save(self.path(f"{name}.npy"), array)
            np.save(self.path(f"{name}-labels.npy"), labels.astype(">i2" if name == "big_endian" else np.float64))
            run(*self.small(self.path(f"{name}.npy"), self.path(f"m_{name}")))
            weights.append(read_safetensors(self.path(f"m_{name}/model.safetensors"))[1])
        for other in weights[1:]:
            self.assertEqual(other, weights[0])
        r = run("info", self.path("m_fortran/model.safetensors"))
        self.assertIn("example shape: [8,8]", r.stdout)
        # binary masks saved as bool train too (0 and 1 are Bernoulli targets)
        np.save(self.path("masks.npy"), images > 127)
        run(*self.small(self.path("masks.npy"), self.path("m_masks")))
        self.assertTrue(os.path.exists(self.path("m_masks/model.safetensors")))

    def test_exclude_classes_and_splits_of_an_image_tree(self):
        root = self.path("tree")
        for split, n, seed in (("train", 100, 5), ("test", 40, 6)):
            images, labels = patterns(n, seed=seed)
            for i, (image, label) in enumerate(zip(images, labels)):
                os.makedirs(os.path.join(root, split, f"c{label}"), exist_ok=True)
                write_png(os.path.join(root, split, f"c{label}", f"{i:03d}.png"), image)
        r = run(*self.small(root, self.path("m_excl"), "--exclude-classes", "1,3"))
        self.assertIn("vae train: 50 training / 40 test examples of 64 features", r.stdout)
        codes = self.path("tree_codes.npy")
        run("encode", self.path("m_excl/model.safetensors"), "--data", root, "--split", "test", "--out", codes)
        self.assertEqual(np.load(codes).shape, (40, 4))
        self.assertEqual(sorted(np.load(self.path("tree_codes-labels.npy")).tolist()), sorted([0, 1, 2, 3] * 10))
        # A folder lacking one of the model's classes (c1) keeps the model's numbering, by name,
        # whether --data is the tree (its test split) or the test folder itself: c2 and c3 were 1 and 2.
        shutil.rmtree(os.path.join(root, "test", "c1"))
        for data in (root, os.path.join(root, "test")):
            run("encode", self.path("m_excl/model.safetensors"), "--data", data, "--out", codes, "--force")
            self.assertEqual(sorted(set(np.load(self.path("tree_codes-labels.npy")).tolist())), [0, 2, 3], data)
        r = run("train", "--no-progress", "--data", root, "--val-split", "0.2", "--epochs", "1", "--hidden", "8",
                "--out", self.path("m_val"))
        self.assertIn("80 training / 20 validation examples", r.stdout)
        r = run(*self.small(root, self.path("m_none"), "--exclude-classes", "0,1,2,3"), expect=2)
        self.assertIn("--exclude-classes", r.stderr)
        # A class no example has (a typo) trained on every class, as if one had been left out.
        r = run(*self.small(root, self.path("m_typo"), "--exclude-classes", "1,9"), expect=2)
        self.assertIn("--exclude-classes: no training example of", r.stderr)
        self.assertIn("is of class 9", r.stderr)
        images, _ = patterns(50)
        np.save(self.path("nolabels.npy"), images)
        r = run(*self.small(self.path("nolabels.npy"), self.path("m_nl"), "--exclude-classes", "1"), expect=2)
        self.assertIn("no labels", r.stderr)

    def test_rgb_images_train_and_reconstruct_in_colour(self):
        images, _ = patterns(60)
        folder = self.path("rgb")
        os.makedirs(folder)
        rgb = np.stack([images, 255 - images, images // 2], axis=-1).astype(np.uint8)  # [60, 8, 8, 3]
        for i, image in enumerate(rgb):
            write_png(os.path.join(folder, f"{i:02d}.png"), image)
        out = self.path("m_rgb")
        r = run(*self.small(folder, out, "--channels", "3", "--decoder", "gaussian"))
        self.assertIn("of 192 features", r.stdout)
        self.assertTrue(os.path.isfile(os.path.join(out, "samples.png")))
        recon = self.path("rgb_recon.npy")
        run("reconstruct", os.path.join(out, "model.safetensors"), "--data", folder, "--split", "train",
            "--channels", "3", "--out", recon)
        self.assertEqual(np.load(recon).shape, (60, 8, 8, 3))
        self.assertTrue(os.path.isfile(self.path("rgb_recon.png")))
        # The same files read as gray, and equal gray channels read as gray, are the gray values.
        gray_folder = self.path("gray_from_rgb")
        os.makedirs(gray_folder)
        for i, image in enumerate(images):
            write_png(os.path.join(gray_folder, f"{i:02d}.png"), np.stack([image] * 3, axis=-1))
        np.save(self.path("gray.npy"), images)
        run(*self.small(gray_folder, self.path("m_gray_png")))
        run(*self.small(self.path("gray.npy"), self.path("m_gray_npy")))
        _, a = read_safetensors(self.path("m_gray_png/model.safetensors"))
        _, b = read_safetensors(self.path("m_gray_npy/model.safetensors"))
        self.assertEqual(a, b)

    def test_conv_arch_on_rgb_images_resumes_exactly_and_every_subcommand_reads_it(self):
        images, _ = patterns(64)
        folder = self.path("rgb_conv")
        os.makedirs(folder)
        rgb = np.stack([images, 255 - images, images // 2], axis=-1).astype(np.uint8)  # [64, 8, 8, 3]
        for i, image in enumerate(rgb):
            write_png(os.path.join(folder, f"{i:02d}.png"), image)
        args = ("train", "--no-progress", "--data", folder, "--channels", "3", "--arch", "conv", "--batch", "16",
                "--latent", "3", "--decoder", "gaussian-learned", "--kl-warmup", "2", "--seed", "4")
        straight, split = self.path("conv_straight"), self.path("conv_split")
        run(*args, "--epochs", "3", "--out", straight)
        run(*args, "--epochs", "1", "--out", split)
        run("train", "--no-progress", "--resume", os.path.join(split, "checkpoint.safetensors"), "--data", folder,
            "--channels", "3", "--epochs", "3", "--out", split)
        for name in ("model.safetensors", "checkpoint.safetensors"):
            a_header, a = read_safetensors(os.path.join(straight, name))
            _, b = read_safetensors(os.path.join(split, name))
            self.assertEqual(a, b, name)
        self.assertEqual(a_header["encoder.0.weight"]["shape"], [32, 3, 4, 4])
        self.assertEqual(a_header["out_logvar.weight"]["shape"], [32, 3, 4, 4])
        self.assertEqual(a_header["__metadata__"]["arch"], "conv")
        self.assertEqual(a_header["__metadata__"]["image"], "3,8,8")
        self.assertTrue(os.path.isfile(os.path.join(straight, "samples.png")))
        model = os.path.join(straight, "model.safetensors")
        recon, samples, codes = self.path("conv_recon.npy"), self.path("conv_samples.npy"), self.path("conv_codes.npy")
        run("reconstruct", model, "--data", folder, "--split", "train", "--channels", "3", "--out", recon)
        self.assertEqual(np.load(recon).shape, (64, 8, 8, 3))
        run("sample", model, "-n", "5", "--out", samples)
        self.assertEqual(np.load(samples).shape, (5, 8, 8, 3))
        run("encode", model, "--data", folder, "--split", "train", "--channels", "3", "--out", codes)
        self.assertEqual(np.load(codes).shape, (64, 6))
        r = run("evaluate", model, "--data", folder, "--split", "train", "--channels", "3", "--iwae", "4")
        self.assertIn("64 examples", r.stdout)
        self.assertIn("Vae(arch=conv, image=3x8x8", run("info", model).stdout)
        # An image size of as many parameters (4 x 16 also leaves 64 x 1 x 4 after two halvings)
        # used to pass: the 8 x 8 images were reconstructed as 4 x 16 ones.
        lying = self.path("conv_lying.safetensors")
        rewrite_metadata(model, lying, image="3,4,16")
        r = run("reconstruct", lying, "--data", folder, "--split", "train", "--channels", "3", "--out",
                self.path("conv_lying.npy"), expect=1)
        self.assertIn("conv_lying.safetensors: metadata example_shape [8,8,3] is not the conv model's image 3x4x16",
                      r.stderr)
        # images whose sides do not divide by 4 cannot go through two stride-2 layers
        odd, _ = patterns(20, side=6)
        np.save(self.path("odd.npy"), odd)
        r = run("train", "--no-progress", "--data", self.path("odd.npy"), "--arch", "conv", "--epochs", "1",
                "--out", self.path("conv_odd"), expect=2)
        self.assertIn("--arch conv", r.stderr)
        self.assertIn("divide by 4", r.stderr)
        self.assertFalse(os.path.exists(os.path.join(self.path("conv_odd"), "model.safetensors")))

    def test_channels_first_npy_trains_like_the_image_folder_and_is_written_back_channels_first(self):
        images, _ = patterns(64)
        rgb = np.stack([images, 255 - images, images // 2], axis=-1).astype(np.uint8)  # [64, 8, 8, 3]
        folder = self.path("rgb_cf")
        os.makedirs(folder)
        for i, image in enumerate(rgb):
            write_png(os.path.join(folder, f"{i:02d}.png"), image)
        planar = self.path("planar.npy")
        np.save(planar, np.ascontiguousarray(rgb.transpose(0, 3, 1, 2)))  # PyTorch's [N, C, H, W]
        args = ("--no-progress", "--arch", "conv", "--batch", "16", "--latent", "3", "--epochs", "1")
        run("train", *args, "--data", folder, "--channels", "3", "--out", self.path("cf_png"))
        run("train", *args, "--data", planar, "--out", self.path("cf_npy"))
        _, a = read_safetensors(self.path("cf_png/model.safetensors"))
        _, b = read_safetensors(self.path("cf_npy/model.safetensors"))
        self.assertEqual(a, b)  # the same images in the same order: the same weights
        model = self.path("cf_npy/model.safetensors")
        self.assertIn("example shape: [3,8,8] (channels first)", run("info", model).stdout)
        recon_planar, recon_png = self.path("cf_recon_planar.npy"), self.path("cf_recon_png.npy")
        run("reconstruct", model, "--data", planar, "--out", recon_planar)
        run("reconstruct", model, "--data", folder, "--channels", "3", "--out", recon_png)
        planar_out = np.load(recon_planar)
        self.assertEqual(planar_out.shape, (64, 3, 8, 8))
        self.assertTrue(np.array_equal(planar_out, np.load(recon_png)))  # either input layout, the same output
        run("sample", model, "-n", "5", "--out", self.path("cf_samples.npy"))
        self.assertEqual(np.load(self.path("cf_samples.npy")).shape, (5, 3, 8, 8))
        # gray channels-first [N, 1, H, W] trains the same model as [N, H, W]
        np.save(self.path("gray_cf.npy"), images[:, None])
        np.save(self.path("gray_hw.npy"), images)
        run("train", *args, "--data", self.path("gray_cf.npy"), "--out", self.path("cf_gray1"))
        run("train", *args, "--data", self.path("gray_hw.npy"), "--out", self.path("cf_gray2"))
        _, a = read_safetensors(self.path("cf_gray1/model.safetensors"))
        _, b = read_safetensors(self.path("cf_gray2/model.safetensors"))
        self.assertEqual(a, b)
        # data of the model's size but another shape is refused, naming both shapes
        np.save(self.path("wide.npy"), rgb.reshape(64, 4, 16, 3))
        r = run("encode", model, "--data", self.path("wide.npy"), "--out", self.path("cf_codes.npy"), expect=1)
        self.assertIn("examples of shape [4,16,3] (192 values)", r.stderr)
        self.assertIn("the model reads [3,8,8] (channels first; 192 values)", r.stderr)  # as the user's files hold it
        np.save(self.path("wide_cf.npy"), np.ascontiguousarray(rgb.reshape(64, 4, 16, 3).transpose(0, 3, 1, 2)))
        r = run("encode", model, "--data", self.path("wide_cf.npy"), "--out", self.path("cf_codes.npy"), expect=1)
        self.assertIn("examples of shape [3,4,16] (channels first; 192 values)", r.stderr)
        self.assertFalse(os.path.exists(self.path("cf_codes.npy")))

    def test_progress_bar_on_a_terminal_has_an_eta_and_fits_80_columns(self):
        import pty
        images, _ = patterns(400)
        np.save(self.path("bar.npy"), images)
        pid, fd = pty.fork()
        if pid == 0:  # the child: stdout and stderr are the terminal
            os.execv(VAE, [VAE, "train", "--data", self.path("bar.npy"), "--batch", "8", "--hidden", "8",
                           "--epochs", "2", "--out", self.path("m_bar")])
        output = b""
        while True:
            try:
                chunk = os.read(fd, 4096)
            except OSError:
                break
            if not chunk:
                break
            output += chunk
        _, status = os.waitpid(pid, 0)
        self.assertEqual(os.waitstatus_to_exitcode(status), 0, output)
        lines = output.decode().replace("\x1b[K", "").replace("\r\n", "\n").replace("\r", "\n").split("\n")
        bars = [line for line in lines if "ETA" in line]
        self.assertTrue(bars, output)
        for line in bars:
            self.assertLessEqual(len(line), 79, line)
            self.assertRegex(line, r"^epoch [12]/2 \[[#.]{20}\] \d+/45 loss [\d.]+ \d+ img/s ETA \d+:\d\d$")
        for line in lines:
            if line.startswith("epoch ") and "ETA" not in line:
                self.assertLessEqual(len(line), 80, line)

    def test_epoch_lines_of_a_run_going_astray_fit_80_columns(self):
        # Values up to 100 under a Gaussian decoder give losses of 10^9 at first, which printed
        # with three decimals made an 83-column line; past 10^6 they have three digits and a power.
        np.save(self.path("wide_values.npy"), (np.random.RandomState(0).rand(300, 16) * 100).astype(np.float32))
        r = run("train", "--no-progress", "--data", self.path("wide_values.npy"), "--decoder", "gaussian",
                "--hidden", "8", "--epochs", "2", "--out", self.path("m_wide_values"))
        epochs = [line for line in r.stdout.splitlines() if line.startswith("epoch")]
        self.assertEqual(len(epochs), 2, r.stdout)
        self.assertRegex(epochs[0], r"train \d\.\d\de\+\d\d ")
        for line in epochs:
            self.assertLessEqual(len(line), 80, line)

    def test_a_loss_non_finite_before_any_update_blames_the_data_not_the_learning_rate(self):
        # Values of 10^6 overflow the initial model's first forward pass; the message said
        # "try a smaller --lr", which cannot help.
        np.save(self.path("huge_values.npy"), (np.random.RandomState(0).rand(300, 16) * 1e6).astype(np.float32))
        r = run("train", "--no-progress", "--data", self.path("huge_values.npy"), "--decoder", "gaussian",
                "--hidden", "8", "--epochs", "1", "--out", self.path("m_huge_values"), expect=3)
        self.assertIn("at epoch 1, step 1", r.stderr)
        self.assertIn("the initial model's loss, before any update: the data's values are too large", r.stderr)
        self.assertNotIn("--lr", r.stderr)

    def test_the_threshold_is_numpys_percentile_of_the_held_out_scores(self):
        # The nearest rank made the 99th percentile of 16 scores their largest, so that none of
        # the held-out examples could be flagged; numpy.percentile interpolates between ranks.
        images, _ = patterns(16)
        data = self.path("held_out.npy")
        np.save(data, images)
        model = self.path("m_held_out")
        run(*self.small(data, model, "--val-split", "0.25"))
        scores_csv = self.path("held_out_scores.csv")
        run("score", os.path.join(model, "model.safetensors"), "--data", data, "--out", scores_csv)
        scores = np.loadtxt(scores_csv, delimiter=",", skiprows=1, usecols=2)
        for p in ("99", "50", "37.5", "0", "100"):
            r = run("score", os.path.join(model, "model.safetensors"), "--data", data, "--threshold-from", data,
                    "--percentile", p, "--out", scores_csv, "--force")
            want = np.percentile(scores, float(p))
            self.assertIn(f"threshold: {want:.3f} nats, the {p}th percentile of 16 held-out scores", r.stdout)
            self.assertIn(f"anomalous: {int((scores > want + 1e-6).sum())} of 16", r.stdout)

    def test_an_evaluation_loss_non_finite_stops_the_run_as_a_divergence(self):
        # One step at --lr 1e30 leaves weights whose test loss is NaN while every step's loss was
        # finite: the run ended with exit 0 and "test -nan", results.json's losses null, and
        # --keep-best said the best epoch had been "trained before --keep-best".
        images, _ = patterns(60)
        np.save(self.path("one_step.npy"), images)
        out = self.path("m_one_step")
        r = run("train", "--no-progress", "--data", self.path("one_step.npy"), "--hidden", "8", "--latent", "2",
                "--batch", "64", "--epochs", "1", "--lr", "1e30", "--keep-best", "--out", out, expect=3)
        self.assertIn("the validation loss became", r.stderr)
        self.assertIn("after epoch 1 (lr 1e+30); training stopped. No checkpoint was written by this run", r.stderr)
        self.assertFalse(os.path.exists(os.path.join(out, "model.safetensors")))
        self.assertFalse(os.path.exists(os.path.join(out, "checkpoint.safetensors")))

    def test_bad_files_exit_1_and_say_where(self):
        images, _ = patterns(50)
        np.save(self.path("good.npy"), images)
        with open(self.path("good.npy"), "rb") as f:
            blob = f.read()
        cases = []
        with open(self.path("truncated.npy"), "wb") as f:
            f.write(blob[:-10])
        cases.append(("truncated.npy", "truncated"))
        with open(self.path("magic.npy"), "wb") as f:
            f.write(b"\x93NUMPZ" + blob[6:])
        cases.append(("magic.npy", "not an .npy file"))
        with open(self.path("stray.csv"), "w") as f:
            f.write("1,2,3\n4,five,6\n")
        cases.append(("stray.csv", "stray.csv:2: column 2: 'five' is not a number"))
        with open(self.path("ragged.csv"), "w") as f:
            f.write("1,2,3\n4,5\n")
        cases.append(("ragged.csv", "ragged.csv:2: 2 cells"))
        os.makedirs(self.path("empty"))
        cases.append(("empty", "no PNG or JPEG images"))
        os.makedirs(self.path("sizes"))
        write_png(self.path("sizes/a.png"), np.zeros((8, 8), np.uint8))
        write_png(self.path("sizes/b.png"), np.zeros((8, 9), np.uint8))
        cases.append(("sizes", "every image must have one size"))
        # A stray picture beside class folders: only it was read (or, alone, "too few examples").
        for folder in ("stray/shirts", "stray/shoes"):
            os.makedirs(self.path(folder))
            for i in range(10):
                write_png(self.path(f"{folder}/{i}.png"), np.zeros((8, 8), np.uint8))
        write_png(self.path("stray/preview.png"), np.zeros((8, 8), np.uint8))
        cases.append(("stray", "images (1, e.g. preview.png) beside class subfolders of images (shirts, ...)"))
        os.makedirs(self.path("notimage"))
        with open(self.path("notimage/x.png"), "wb") as f:
            f.write(b"not a png at all")
        cases.append(("notimage", "x.png"))
        for name, message in cases:
            out = self.path("out_" + name.replace(".", "_"))
            r = run(*self.small(self.path(name), out), expect=1)
            self.assertIn(message, r.stderr, name)
            self.assertNotIn("Traceback", r.stderr)
            self.assertFalse(os.path.exists(os.path.join(out, "model.safetensors")), name)

    def test_noise_is_refused_for_data_outside_pixel_range(self):
        # The noisy copies are clipped to [0, 1]: values up to 3 became at most 1, and the MSE
        # and PSNR printed measured the clipping, not the noise.
        vectors = np.random.default_rng(1).uniform(0, 3, (40, 6)).astype(np.float32)
        np.save(self.path("wide.npy"), vectors)
        model = self.path("wide_model")
        run(*self.small(self.path("wide.npy"), model, "--decoder", "gaussian"))
        out = self.path("wide_denoised.npy")
        r = run("reconstruct", os.path.join(model, "model.safetensors"), "--data", self.path("wide.npy"), "--noise",
                "gaussian:0.1", "--out", out, expect=2)
        self.assertIn("--noise: made for pixels in [0, 1], but the examples of", r.stderr)
        self.assertFalse(os.path.exists(out))
        run("reconstruct", os.path.join(model, "model.safetensors"), "--data", self.path("wide.npy"), "--out", out)

    def test_npz_archives_keras_layout_and_unnamed_arrays(self):
        images, labels = patterns(200)
        # np.savez's unnamed arrays (arr_0, arr_1), deflated or stored: the same model as the .npy pair
        np.save(self.path("z.npy"), images)
        np.save(self.path("z-labels.npy"), labels)
        np.savez(self.path("unnamed.npz"), images, labels)
        np.savez_compressed(self.path("named.npz"), x=images, y=labels.astype(np.int64))
        run(*self.small(self.path("z.npy"), self.path("m_z")))
        _, want = read_safetensors(self.path("m_z/model.safetensors"))
        for name in ("unnamed", "named"):
            r = run(*self.small(self.path(f"{name}.npz"), self.path(f"m_{name}")))
            self.assertIn("180 training / 20 validation", r.stdout)
            self.assertEqual(read_safetensors(self.path(f"m_{name}/model.safetensors"))[1], want, name)
        # Keras's layout: x_train / y_train and x_test / y_test are the two splits
        keras = self.path("keras.npz")
        np.savez_compressed(keras, x_train=images[:150], y_train=labels[:150], x_test=images[150:],
                            y_test=labels[150:])
        r = run(*self.small(keras, self.path("m_keras")))
        self.assertIn("150 training / 50 test", r.stdout)
        codes = self.path("keras_codes.npy")
        run("encode", self.path("m_keras/model.safetensors"), "--data", keras, "--out", codes)
        self.assertTrue(np.array_equal(np.load(self.path("keras_codes-labels.npy")), labels[150:]))
        # Bad archives: exit 1, naming the file (and member) and what is wrong
        with open(keras, "rb") as f:
            blob = f.read()
        cases = []
        with open(self.path("cut.npz"), "wb") as f:
            f.write(blob[: len(blob) // 2])
        cases.append(("cut.npz", "not a readable .npz archive"))
        np.savez(self.path("other.npz"), weights=images)
        cases.append(("other.npz", "holds weights.npy; name the examples x_train"))
        flipped = bytearray(blob)
        flipped[200] ^= 0xFF  # inside x_test's deflated bytes (the first member)
        with open(self.path("flipped.npz"), "wb") as f:
            f.write(bytes(flipped))
        cases.append(("flipped.npz", "member x_train.npy: cannot be inflated"))
        # a byte flipped in a stored (np.savez) member: its size stays right, only the CRC tells
        # (libzip compares it at the member's end, which reads of exactly its size never reached)
        with open(self.path("unnamed.npz"), "rb") as f:
            stored = bytearray(f.read())
        stored[stored.index(b"\x93NUMPY") + 200] ^= 0xFF
        with open(self.path("flipped_stored.npz"), "wb") as f:
            f.write(bytes(stored))
        cases.append(("flipped_stored.npz", "member arr_0.npy: is corrupt (CRC error)"))
        # a central directory claiming 2 GB for a member of a few kilobytes
        bomb = bytearray(blob)
        entry = bomb.index(b"PK\x01\x02")
        bomb[entry + 24:entry + 28] = struct.pack("<I", 0x7FFFFFF0)
        with open(self.path("bomb.npz"), "wb") as f:
            f.write(bytes(bomb))
        cases.append(("bomb.npz", "claims 2147483632 bytes, more than its"))
        with open(self.path("labels.npz"), "wb") as f:
            np.savez(f, x=images, y=labels[:10])
        cases.append(("labels.npz", "y.npy: 10 labels for 200 examples"))
        for name, message in cases:
            out = self.path("out_" + name.replace(".", "_"))
            r = run(*self.small(self.path(name), out), expect=1)
            self.assertIn(message, r.stderr, name)
            self.assertIn(name, r.stderr)
            self.assertFalse(os.path.exists(os.path.join(out, "model.safetensors")), name)

    def test_finished_runs_are_not_overwritten(self):
        images, labels = patterns(100)
        np.save(self.path("o.npy"), images)
        out = self.path("m_once")
        run(*self.small(self.path("o.npy"), out))
        with open(os.path.join(out, "model.safetensors"), "rb") as f:
            before = f.read()
        r = run(*self.small(self.path("o.npy"), out, "--seed", "2"), expect=1)
        self.assertIn("already holds a trained model", r.stderr)
        with open(os.path.join(out, "model.safetensors"), "rb") as f:
            self.assertEqual(f.read(), before)
        run(*self.small(self.path("o.npy"), out, "--seed", "2", "--force"))
        with open(os.path.join(out, "model.safetensors"), "rb") as f:
            self.assertNotEqual(f.read(), before)
        # A folder without a model holding a file of the user's with a name a run writes.
        mine = self.path("m_mine")
        os.makedirs(mine)
        with open(os.path.join(mine, "report.html"), "w") as f:
            f.write("mine")
        r = run(*self.small(self.path("o.npy"), mine), expect=1)
        self.assertIn("already holds report.html", r.stderr)
        with open(os.path.join(mine, "report.html")) as f:
            self.assertEqual(f.read(), "mine")
        self.assertEqual(os.listdir(mine), ["report.html"])

    def test_resume_on_other_data_is_refused_unless_forced(self):
        a, _ = patterns(100, seed=1)
        b, _ = patterns(100, seed=2)
        np.save(self.path("ra.npy"), a)
        np.save(self.path("rb.npy"), b)
        out = self.path("m_resume")
        run(*self.small(self.path("ra.npy"), out))
        ckpt = os.path.join(out, "checkpoint.safetensors")
        r = run("train", "--resume", ckpt, "--data", self.path("rb.npy"), "--epochs", "2", "--out", out, expect=1)
        self.assertIn("fingerprint", r.stderr)
        self.assertIn("--force", r.stderr)
        run("train", "--resume", ckpt, "--data", self.path("rb.npy"), "--epochs", "2", "--out", out, "--force",
            "--no-progress")

    def test_divergence_after_resume_elsewhere_names_an_existing_checkpoint(self):
        images, _ = patterns(100)
        np.save(self.path("d.npy"), images)
        first = self.path("m_first")
        run(*self.small(self.path("d.npy"), first))
        wild = os.path.join(first, "wild.safetensors")
        rewrite_metadata(os.path.join(first, "checkpoint.safetensors"), wild,
                         **{"option.lr": "1e30", "optimizer.lr": "1e30"})
        r = run("train", "--resume", wild, "--data", self.path("d.npy"), "--epochs", "3",
                "--out", self.path("m_second"), "--no-progress", expect=3)
        named = r.stderr.split("The last good checkpoint, after epoch 1, is ")[1].split(";")[0]
        self.assertTrue(os.path.isfile(named), named)


CONFIGS = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "configs")


@unittest.skipUnless(os.path.isdir(FASHION), "Fashion-MNIST is not installed")
class Configs(unittest.TestCase):
    def setUp(self):
        self.tmp = tempfile.mkdtemp(prefix="vae_tool_configs_")

    def tearDown(self):
        shutil.rmtree(self.tmp, ignore_errors=True)

    def test_every_shipped_config_gives_its_model(self):
        import tomllib
        names = sorted(n for n in os.listdir(CONFIGS) if n.endswith(".toml"))
        self.assertGreaterEqual(len(names), 7)
        for name in names:
            with open(os.path.join(CONFIGS, name), "rb") as f:
                config = tomllib.load(f)
            if "data" in config and not os.path.exists(config["data"]):
                continue  # (e) needs its generated data
            out = os.path.join(self.tmp, name)
            r = run("train", "--config", os.path.join(CONFIGS, name), "--limit", "300", "--epochs", "1",
                    "--out", out, "--no-progress")
            epochs = [line for line in r.stdout.splitlines() if line.startswith("epoch")]
            self.assertEqual(len(epochs), 1)
            self.assertLessEqual(len(epochs[0]), 80, epochs[0])
            meta = read_safetensors(os.path.join(out, "model.safetensors"))[0]["__metadata__"]
            hidden = config.get("hidden", "400")
            self.assertEqual(meta["hidden"], "" if hidden == "none" else hidden, name)
            self.assertEqual(meta["latent"], str(config.get("latent", 20)), name)
            self.assertEqual(meta["decoder"], config.get("decoder", "bernoulli"), name)
            self.assertEqual(meta.get("arch", "mlp"), config.get("arch", "mlp"), name)
            ckpt = read_safetensors(os.path.join(out, "checkpoint.safetensors"))[0]["__metadata__"]
            self.assertEqual(float.fromhex(ckpt["option.beta"]), config.get("beta", 1.0), name)
            self.assertEqual(int(ckpt["option.batch"]), config.get("batch", 128), name)

    def test_flags_override_the_file_and_bad_entries_exit_2(self):
        path = os.path.join(self.tmp, "mine.toml")
        with open(path, "w") as f:
            f.write('hidden = [24, 12]\nlatent = 3\nbeta = 0.5\nbinarize = true\nlimit = 200\nepochs = 1\n')
        out = os.path.join(self.tmp, "mine")
        run("train", "--config", path, "--beta", "2", "--out", out, "--no-progress")
        ckpt = read_safetensors(os.path.join(out, "checkpoint.safetensors"))[0]["__metadata__"]
        self.assertEqual(ckpt["option.hidden"], "24,12")
        self.assertEqual(ckpt["option.latent"], "3")
        self.assertEqual(ckpt["option.binarize"], "1")
        self.assertEqual(float.fromhex(ckpt["option.beta"]), 2.0)
        # An empty value took the next entry for its own: data = "--epochs=1".
        for text, flag in (("beta = nan\n", "--beta"), ("latent = -2\n", "--latent"), ("bogus = 1\n", "bogus"),
                           ('data = ""\nepochs = 1\n', "mine.toml: 'data' is empty"),
                           ("hidden = []\nepochs = 1\n", "mine.toml: 'hidden' is empty")):
            with open(path, "w") as f:
                f.write(text)
            r = run("train", "--config", path, "--out", os.path.join(self.tmp, "bad"), expect=2)
            self.assertIn(flag, r.stderr + r.stdout, text)
            self.assertFalse(os.path.exists(os.path.join(self.tmp, "bad")))
        r = run("sample", "--config", os.path.join(self.tmp, "missing.toml"), expect=2)
        self.assertIn("missing.toml", r.stderr)

    def test_a_misspelled_key_or_section_is_an_error_naming_the_file_and_the_key(self):
        # They were ignored without a word: [trian]'s batch and [train]'s epocks never applied.
        path = os.path.join(self.tmp, "typo.toml")
        for command, text, message in (
                ("train", "[trian]\nbatch = 64\n", "typo.toml: [trian] is not a section of vae's (did you mean [train]?)"),
                ("train", "epocks = 1\n", "typo.toml: unknown key 'epocks' (did you mean 'epochs'?)"),
                ("train", "[train]\nepocks = 1\n", "typo.toml: [train] unknown key 'epocks' (did you mean 'epochs'?)"),
                ("train", "[sample]\ntemprature = 0.5\n", "[sample] unknown key 'temprature' (did you mean 'temperature'?)"),
                ("train", "[train.sub]\nbatch = 64\n", "[train.sub] is not a section"),
                ("sample", "temperature = 0.5\n", "unknown key 'temperature'; the top of a config file holds vae "
                                                   "train's options, sample's own go in a [sample] section")):
            with open(path, "w") as f:
                f.write(text)
            r = run(command, "--config", path, "--out", os.path.join(self.tmp, "never"), expect=2)
            self.assertIn(message, r.stderr, text)
            self.assertFalse(os.path.exists(os.path.join(self.tmp, "never")))
        # Every shipped config passes the check (--help: parsed, nothing run).
        for name in sorted(n for n in os.listdir(CONFIGS) if n.endswith(".toml")):
            for command in ("train", "sample", "evaluate", "info"):
                run(command, "--config", os.path.join(CONFIGS, name), "--help")

    def test_config_files_in_odd_encodings_and_keys_given_twice(self):
        path = os.path.join(self.tmp, "odd.toml")
        # Windows editors write a UTF-8 byte-order mark first: it became part of the first key.
        with open(path, "wb") as f:
            f.write(b"\xef\xbb\xbfhidden = 8\nlatent = 2\nlimit = 100\nepochs = 1\n")
        out = os.path.join(self.tmp, "bom")
        run("train", "--config", path, "--out", out, "--no-progress")
        self.assertEqual(read_safetensors(os.path.join(out, "model.safetensors"))[0]["__metadata__"]["hidden"], "8")
        # Each of these exits 2 naming the file (and the line), its bytes never shown raw.
        for content, message in (
                ("epochs = 1\n".encode("utf-16"), "odd.toml: the file is UTF-16 or UTF-32 text"),
                (b"epochs = 1\nbatch = 6\x004\n", "odd.toml:2: a control byte (0x00)"),
                (bytes(range(256)), "odd.toml:1: a control byte (0x00)"),
                (b"epochs = 1\nbatch = 64\nepochs = 2\n", "odd.toml:3: Error while parsing key-value pair: cannot redefine existing integer 'epochs'"),
                (b"[sample]\ntemperature = 1\n[train]\nepochs = 1\n[sample]\ntemperature = 0.5\n",
                 "odd.toml:5: Error while parsing table header: cannot redefine existing table 'sample'"),
                (b"a" * 100000 + b" = 1\n", "unknown key '" + "a" * 60 + "...'")):
            with open(path, "wb") as f:
                f.write(content)
            r = run("train", "--config", path, "--out", os.path.join(self.tmp, "never"), expect=2)
            self.assertIn(message, r.stderr, content[:40])
            self.assertLess(len(r.stderr), 1000)
            self.assertFalse(os.path.exists(os.path.join(self.tmp, "never")))

    def test_config_files_read_as_toml_not_loosely(self):
        # CLI11's reader cut `out = "a # b"` at the '#' and kept the quote (the folder '"a'),
        # passed on an unterminated string or the text after one as part of the value, took the
        # lines after an unclosed array for its items, and read a multi-line array's '[' as one.
        out = os.path.join(self.tmp, "run # not a comment")
        path = os.path.join(self.tmp, "strict.toml")
        with open(path, "w") as f:
            f.write(f"hidden = [\n  8,  # the first layer\n  4,\n]\nlatent = 2\nlimit = 100\nepochs = 1\n"
                    f"out = '{out}'  # a literal string\n")
        run("train", "--config", path, "--no-progress")
        self.assertEqual(read_safetensors(os.path.join(out, "model.safetensors"))[0]["__metadata__"]["hidden"], "8,4")
        never = os.path.join(self.tmp, "never")
        for text, message in (
                (f'out = "{never}\nepochs = 1\n', "strict.toml:1: Error while parsing string"),
                (f'out = "{never}" extra\n', "strict.toml:1: Error while parsing key-value pair: expected a comment"),
                (f'hidden = [8, 4\nout = "{never}"\n', "strict.toml:2: Error while parsing array: expected comma"),
                ("epochs = 1979-05-27\n", "strict.toml:1: a date or time, which no flag takes"),
                ("epochs 1\n", "strict.toml:1: Error while parsing key-value pair: expected '='"),
                ("epochs =\n", "strict.toml:1: Error while parsing key-value pair: expected value"),
                ("hidden = {a = 1}\n", "strict.toml:1: an inline table"),
                ("hidden = [[8], [4]]\n", "strict.toml:1: an array inside an array"),
                ("[[train]]\nepochs = 1\n", "strict.toml:1: a table inside an array"),
                ('data = "C:\\data"\n', "strict.toml:1: Error while parsing string: unknown escape sequence '\\d'")):
            with open(path, "w") as f:
                f.write(text)
            r = run("train", "--config", path, "--out", never, expect=2)
            self.assertIn(message, r.stderr, text)
            self.assertFalse(os.path.exists(never), text)

    def test_train_vae_knows_a_section_for_every_subcommand(self):
        # train_vae does not link the other subcommands, so it knows their names from a list
        # (tools::kCommandNames); a subcommand missing there would make its section an error.
        help_text = run("--help").stdout
        names = [line.split()[0] for line in help_text.split("Subcommands:", 1)[1].splitlines() if line.strip()]
        self.assertIn("sample", names)
        train_vae = os.path.join(os.path.dirname(VAE), "train_vae")
        path = os.path.join(self.tmp, "sections.toml")
        with open(path, "w") as f:
            f.write("".join(f"[{name}]\nepochs = 1\n" for name in names))
        r = subprocess.run([train_vae, "--config", path, "--help"], capture_output=True, text=True,
                           stdin=subprocess.DEVNULL, timeout=60)
        self.assertEqual(r.returncode, 0, r.stderr)
        with open(path, "a") as f:
            f.write("[trian]\nepochs = 1\n")
        r = subprocess.run([train_vae, "--config", path, "--help"], capture_output=True, text=True,
                           stdin=subprocess.DEVNULL, timeout=60)
        self.assertEqual(r.returncode, 2)
        self.assertIn("[trian] is not a section", r.stderr)

    def test_a_subcommand_takes_a_training_configs_data_and_leaves_its_training_keys(self):
        # `vae sample --config configs/default.toml` exited 2 on --batch=128 and the others, and
        # took the run folder `out` for its output file.
        out = os.path.join(self.tmp, "m")
        run("train", "--limit", "300", "--epochs", "1", "--hidden", "8", "--latent", "2", "--out", out,
            "--no-progress")
        model = os.path.join(out, "model.safetensors")
        picture = os.path.join(self.tmp, "s.png")
        run("sample", model, "--config", os.path.join(CONFIGS, "default.toml"), "-n", "4", "--out", picture)
        self.assertTrue(os.path.isfile(picture))
        # A flag of one letter alone (sample's -n) from a file too: it was "unknown key 'n'".
        path = os.path.join(self.tmp, "n.toml")
        with open(path, "w") as f:
            f.write("[sample]\nn = 5\n")
        r = run("sample", model, "--config", path, "--out", os.path.join(self.tmp, "n.png"))
        self.assertIn("5 examples", r.stdout)
        r = run("sample", model, "--config", path, "-n", "3", "--out", os.path.join(self.tmp, "n3.png"))
        self.assertIn("3 examples", r.stdout)  # the command line overrides the file
        with open(path, "w") as f:
            f.write("[sample]\nn = -5\n")
        r = run("sample", model, "--config", path, "--out", os.path.join(self.tmp, "never.png"), expect=2)
        self.assertIn("-n: '-5' is not a whole number", r.stderr)
        path = os.path.join(self.tmp, "eval.toml")
        with open(path, "w") as f:
            f.write(f'data = "{FASHION}"\nlimit = 40\nbatch = 3\nepochs = 1\n[evaluate]\nsplit = "train"\n')
        r = run("evaluate", model, "--config", path)
        self.assertIn("40 examples (train split)", r.stdout)
        with open(path, "w") as f:
            f.write(f'data = "{os.path.join(self.tmp, "absent")}"\nbatch = 3\n')
        r = run("evaluate", model, "--config", path, expect=None)
        self.assertNotEqual(r.returncode, 0)
        self.assertIn("absent", r.stderr)


if __name__ == "__main__":
    VAE = os.path.abspath(sys.argv.pop(1))
    unittest.main(verbosity=2)
