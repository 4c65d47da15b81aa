#!/usr/bin/python3
"""End-to-end tests of tools/train_vae: outputs, exact resume, and every kind of bad input.

Run by `meson test` as: test_train_vae.py PATH/TO/train_vae. Standard library only; the data
is written here with struct + gzip (an IDX writer independent of the C++ one).
"""
import gzip
import json
import os
import shutil
import struct
import subprocess
import sys
import tempfile
import unittest

TRAIN_VAE = None
FASHION = "/usr/share/datasets/fashion-mnist"


def write_idx(path, dims, payload, type_code=0x08, compress=True):
    header = struct.pack(">BBBB", 0, 0, type_code, len(dims)) + b"".join(struct.pack(">I", d) for d in dims)
    opener = gzip.open if compress else open
    with opener(path, "wb") as f:
        f.write(header + payload)


def make_images(folder, n_train=256, n_test=64, side=8):
    """Four prototype patterns with 5% of pixels flipped, as bytes, with labels."""
    os.makedirs(folder, exist_ok=True)
    protos = [[255 if ((i * 7 + k * 13) % 5) < 2 else 0 for i in range(side * side)] for k in range(4)]
    state = 12345

    def rand():
        nonlocal state
        state = (1103515245 * state + 12345) % (1 << 31)
        return state / (1 << 31)

    for split, n in (("train", n_train), ("t10k", n_test)):
        pixels, labels = bytearray(), bytearray()
        for i in range(n):
            k = i % 4
            pixels += bytes(255 - p if rand() < 0.05 else p for p in protos[k])
            labels.append(k)
        write_idx(os.path.join(folder, f"{split}-images-idx3-ubyte.gz"), [n, side, side], bytes(pixels))
        write_idx(os.path.join(folder, f"{split}-labels-idx1-ubyte.gz"), [n], bytes(labels))


def read_safetensors(path):
    with open(path, "rb") as f:
        blob = f.read()
    (n,) = struct.unpack("<Q", blob[:8])
    header = json.loads(blob[8 : 8 + n])
    return header, blob[8 + n :]


def write_safetensors(path, header, data):
    text = json.dumps(header).encode()
    with open(path, "wb") as f:
        f.write(struct.pack("<Q", len(text)) + text + data)


def run(*args, expect=0):
    result = subprocess.run([TRAIN_VAE, "--no-progress", *args], capture_output=True, text=True,
                            stdin=subprocess.DEVNULL, timeout=600)
    if expect is not None and result.returncode != expect:
        raise AssertionError(f"train_vae {' '.join(args)} exited {result.returncode}, expected {expect}\n"
                             f"stdout:\n{result.stdout}\nstderr:\n{result.stderr}")
    return result


class TrainVae(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.tmp = tempfile.mkdtemp(prefix="train_vae_test_")
        cls.data = os.path.join(cls.tmp, "data")
        make_images(cls.data)

    @classmethod
    def tearDownClass(cls):
        shutil.rmtree(cls.tmp, ignore_errors=True)

    def out(self, name):
        return os.path.join(self.tmp, name)

    def small(self, out, *extra):
        return ["--data", self.data, "--batch", "32", "--hidden", "32", "--out", out, *extra]

    def test_outputs_of_a_2d_latent_run(self):
        out = self.out("latent2")
        r = run(*self.small(out, "--latent", "2", "--epochs", "2", "--iwae", "8"))
        for name in ("model.safetensors", "checkpoint.safetensors", "metrics.csv", "results.json",
                     "samples.png", "reconstructions.png", "latent.png", "manifold.png"):
            self.assertTrue(os.path.isfile(os.path.join(out, name)), name)
        for name in ("samples.png", "reconstructions.png", "latent.png", "manifold.png"):
            with open(os.path.join(out, name), "rb") as f:
                self.assertEqual(f.read(8), b"\x89PNG\r\n\x1a\n", name)
        with open(os.path.join(out, "metrics.csv")) as f:
            rows = f.read().splitlines()
        self.assertTrue(rows[0].startswith("epoch,train_loss,test_loss,recon,kl,seconds"))
        self.assertEqual(len(rows), 3)
        epoch2 = dict(zip(rows[0].split(","), rows[2].split(",")))
        self.assertAlmostEqual(float(epoch2["test_loss"]), float(epoch2["recon"]) + float(epoch2["kl"]), places=2)
        self.assertIn("epoch   2/2", r.stdout)
        header, _ = read_safetensors(os.path.join(out, "model.safetensors"))
        self.assertEqual(header["encoder.0.weight"]["shape"], [32, 64])
        self.assertEqual(header["encoder.0.bias"]["shape"], [32])
        self.assertEqual(header["mu.weight"]["shape"], [2, 32])
        self.assertEqual(header["out.weight"]["shape"], [64, 32])
        self.assertEqual(header["__metadata__"]["latent"], "2")
        self.assertFalse(any(k.startswith("optimizer.") for k in header))
        with open(os.path.join(out, "results.json")) as f:
            results = json.load(f)
        # The importance-weighted NLL is at most the negative ELBO (up to sampling noise).
        self.assertLess(results["test_nll_iwae"], results["test_loss"] + 1.0)

    def test_resume_is_bit_identical(self):
        straight, split = self.out("straight"), self.out("split")
        run(*self.small(straight, "--epochs", "4", "--seed", "5"))
        run(*self.small(split, "--epochs", "2", "--seed", "5"))
        run("--resume", os.path.join(split, "checkpoint.safetensors"), "--data", self.data, "--out", split,
            "--epochs", "4")
        for name in ("model.safetensors", "checkpoint.safetensors"):
            a_header, a_data = read_safetensors(os.path.join(straight, name))
            b_header, b_data = read_safetensors(os.path.join(split, name))
            self.assertEqual(a_data, b_data, f"{name}: tensors differ")
        with open(os.path.join(straight, "metrics.csv")) as f:
            a = [row.split(",")[:5] for row in f.read().splitlines()]
        with open(os.path.join(split, "metrics.csv")) as f:
            b = [row.split(",")[:5] for row in f.read().splitlines()]
        self.assertEqual(a, b)

    def test_resume_of_a_checkpoint_from_before_later_options(self):
        # A checkpoint written before --arch and --conditional existed lacks both: it holds an MLP,
        # not conditional. One lacking an option that was always stored is refused.
        straight, split = self.out("old_straight"), self.out("old_split")
        run(*self.small(straight, "--epochs", "2", "--seed", "4"))
        run(*self.small(split, "--epochs", "1", "--seed", "4"))
        checkpoint = os.path.join(split, "checkpoint.safetensors")
        header, data = read_safetensors(checkpoint)
        self.assertEqual(header["__metadata__"].pop("option.arch"), "mlp")
        self.assertEqual(header["__metadata__"].pop("option.conditional"), "0")
        self.assertEqual(header["__metadata__"].pop("option.lr-schedule"), "constant")
        for later in ("cosine-epochs", "lr-warmup", "weight-decay", "clip-grad"):
            header["__metadata__"].pop("option." + later)
        write_safetensors(checkpoint, header, data)
        run("--resume", checkpoint, "--data", self.data, "--out", split, "--epochs", "2")
        self.assertEqual(read_safetensors(os.path.join(straight, "model.safetensors"))[1],
                         read_safetensors(os.path.join(split, "model.safetensors"))[1])
        header, data = read_safetensors(checkpoint)
        del header["__metadata__"]["option.latent"]
        write_safetensors(checkpoint, header, data)
        r = run("--resume", checkpoint, "--data", self.data, "--out", split, "--epochs", "3", expect=1)
        self.assertIn("lacks option 'latent'", r.stderr)

    def assert_resume_matches(self, straight, split, extra, first_part=()):
        """3 epochs straight, and 1 epoch then resumed up to 3, give the same weights; returns the
        straight run's result and its weights."""
        r = run("--data", self.data, "--out", straight, "--epochs", "3", *extra)
        run("--data", self.data, "--out", split, "--epochs", "1", *first_part, *extra)
        run("--resume", os.path.join(split, "checkpoint.safetensors"), "--data", self.data, "--out", split,
            "--epochs", "3")
        _, a = read_safetensors(os.path.join(straight, "model.safetensors"))
        _, b = read_safetensors(os.path.join(split, "model.safetensors"))
        self.assertEqual(a, b)
        return r, a

    def test_resume_with_binarize_and_kl_warmup_mid_warmup(self):
        straight, split = self.out("bw_straight"), self.out("bw_split")
        # Batches of 48 leave a partial last batch of 256 % 48 = 16.
        extra = ("--binarize", "--kl-warmup", "3", "--batch", "48", "--hidden", "32")
        self.assert_resume_matches(straight, split, extra)
        r = run("--resume", os.path.join(split, "checkpoint.safetensors"), "--data", self.data, "--out", split,
                "--epochs", "3", expect=1)
        self.assertIn("already trained 3 epochs", r.stderr)

    def test_schedule_weight_decay_and_clipping_resume_exactly_and_change_the_run(self):
        straight, split, plain = self.out("opt_straight"), self.out("opt_split"), self.out("opt_plain")
        # cosine over 3 epochs after half an epoch of warm-up, AdamW, clipping that binds
        extra = ("--lr-schedule", "cosine", "--lr-warmup", "0.5", "--weight-decay", "0.05", "--clip-grad", "1",
                 "--batch", "48", "--hidden", "32", "--lr", "0.003")
        # the first part knows the cosine's length (--cosine-epochs 3), as a run of --epochs 3 stopped
        # after one epoch would; its checkpoint keeps it
        r, a = self.assert_resume_matches(straight, split, extra, first_part=("--cosine-epochs", "3"))
        self.assertIn("AdamW lr 0.003 (weight decay 0.05), cosine schedule, lr warm-up 0.5 epochs, "
                      "gradients clipped to norm 1", r.stdout)
        r = run("--resume", os.path.join(split, "checkpoint.safetensors"), "--data", self.data, "--out", split,
                "--epochs", "4", expect=2)
        self.assertIn("--epochs 4: the cosine schedule ends at epoch 3", r.stderr)
        run("--data", self.data, "--out", plain, "--epochs", "3", "--batch", "48", "--hidden", "32", "--lr", "0.003")
        self.assertNotEqual(a, read_safetensors(os.path.join(plain, "model.safetensors"))[1])
        # metrics.csv's last column: the learning rate of each epoch's last step
        def lr_column(folder):
            with open(os.path.join(folder, "metrics.csv")) as f:
                rows = [row.split(",") for row in f.read().splitlines()]
            self.assertEqual(rows[0][-1], "lr")
            return [float(row[-1]) for row in rows[1:]]
        self.assertEqual(lr_column(plain), [0.003] * 3)
        cosine = lr_column(straight)  # half an epoch of warm-up, then the cosine down to 0 at the end of epoch 3
        self.assertEqual(len(cosine), 3)
        self.assertTrue(0.003 > cosine[0] > cosine[1] > cosine[2] >= 0, cosine)
        self.assertEqual(lr_column(split), cosine)
        r = run("--resume", os.path.join(split, "checkpoint.safetensors"), "--data", self.data, "--out", split,
                "--epochs", "4", "--lr-schedule", "constant", expect=1)
        self.assertIn("--lr-schedule constant contradicts", r.stderr)
        r = run("--data", self.data, "--out", self.out("opt_bad"), "--lr-schedule", "linear", expect=2)
        self.assertIn("--lr-schedule: 'linear' is not constant or cosine", r.stderr)

    def test_patience_stops_early_and_best_safetensors_holds_the_lowest_loss_epoch(self):
        out = self.out("patience")
        # 40 examples, 400 hidden units, lr 0.01: the test loss stops falling long before epoch 60
        folder = self.out("patience_data")
        make_images(folder, n_train=40, n_test=20)
        args = ("--data", folder, "--batch", "8", "--lr", "0.01")
        r = run(*args, "--epochs", "60", "--patience", "2", "--out", out)
        self.assertIn("stopped early: no lower test loss for 2 epochs since epoch", r.stdout)
        with open(os.path.join(out, "metrics.csv")) as f:
            rows = [row.split(",") for row in f.read().splitlines()[1:]]
        losses = [float(row[2]) for row in rows]
        best = min(range(len(losses)), key=lambda i: (losses[i], i)) + 1
        self.assertEqual(len(losses), best + 2)  # stopped 2 epochs after the best
        self.assertLess(len(losses), 60)
        header, _ = read_safetensors(os.path.join(out, "best.safetensors"))
        self.assertEqual(header["__metadata__"]["epochs"], str(best))
        self.assertEqual(header["__metadata__"]["test_loss"], f"{losses[best - 1]:.4f}")
        with open(os.path.join(out, "results.json")) as f:
            results = json.load(f)
        self.assertEqual(results["best_epoch"], best)
        self.assertEqual(results["epochs"], best + 2)
        # the checkpoint stopped early: resuming it asks for a larger --patience
        r = run("--resume", os.path.join(out, "checkpoint.safetensors"), *args, "--epochs", "60", "--patience", "2",
                "--out", out, expect=1)
        self.assertIn("stopped early after epoch", r.stderr)
        r = run("--resume", os.path.join(out, "checkpoint.safetensors"), *args, "--patience", "0", "--keep-best",
                "--epochs", str(best + 3), "--out", out)
        self.assertIn("best: epoch", r.stdout)
        # a new run over it (--force) without --keep-best leaves no best.safetensors of the old run
        run(*args, "--epochs", "1", "--out", out, "--force")
        self.assertFalse(os.path.exists(os.path.join(out, "best.safetensors")))

    def test_tiny_test_set_with_a_2d_latent(self):
        folder = self.out("tiny")
        make_images(folder, n_train=40, n_test=5)
        out = self.out("tiny_out")
        run("--data", folder, "--batch", "16", "--hidden", "8", "--latent", "2", "--epochs", "1", "--out", out)
        for name in ("reconstructions.png", "latent.png", "manifold.png"):
            self.assertTrue(os.path.isfile(os.path.join(out, name)), name)

    def test_same_seed_and_threads_give_identical_weights(self):
        for threads in ("1", "2"):
            first, second = self.out(f"det_a_{threads}"), self.out(f"det_b_{threads}")
            run(*self.small(first, "--epochs", "2", "--seed", "9", "--threads", threads))
            run(*self.small(second, "--epochs", "2", "--seed", "9", "--threads", threads))
            _, a = read_safetensors(os.path.join(first, "model.safetensors"))
            _, b = read_safetensors(os.path.join(second, "model.safetensors"))
            self.assertEqual(a, b, f"--threads {threads}")
        other = self.out("det_other_seed")
        run(*self.small(other, "--epochs", "2", "--seed", "10", "--threads", "2"))
        _, c = read_safetensors(os.path.join(other, "model.safetensors"))
        self.assertNotEqual(a, c)

    def test_resume_refuses_contradicting_flags_and_wrong_files(self):
        out = self.out("resume_checks")
        run(*self.small(out, "--epochs", "1"))
        r = run("--resume", os.path.join(out, "checkpoint.safetensors"), "--data", self.data, "--out", out,
                "--epochs", "2", "--latent", "7", expect=1)
        self.assertIn("--latent 7 contradicts", r.stderr)
        r = run("--resume", os.path.join(out, "model.safetensors"), "--data", self.data, "--out", out,
                "--epochs", "2", expect=1)
        self.assertIn("not a training checkpoint", r.stderr)
        broken = os.path.join(self.tmp, "broken.safetensors")
        with open(os.path.join(out, "checkpoint.safetensors"), "rb") as f:
            blob = f.read()
        with open(broken, "wb") as f:
            f.write(blob[: len(blob) // 2])
        r = run("--resume", broken, "--data", self.data, "--out", out, "--epochs", "2", expect=1)
        self.assertIn("broken.safetensors", r.stderr)

    def test_bad_flags_exit_2_and_name_the_flag(self):
        for args, flag in ((["--latent", "0"], "--latent"), (["--decoder", "poisson"], "--decoder"),
                           (["--hidden", "32,x"], "--hidden"), (["--bogus"], "--bogus"),
                           (["--batch", "-3"], "--batch"), (["--lr", "abc"], "--lr")):
            r = run("--data", self.data, *args, expect=2)
            self.assertIn(flag, r.stderr + r.stdout, args)

    def test_missing_and_corrupt_data_exit_1_and_say_what(self):
        r = run("--data", self.out("nowhere"), expect=1)
        self.assertIn("does not exist", r.stderr)
        corrupt = self.out("corrupt")
        shutil.copytree(self.data, corrupt)
        path = os.path.join(corrupt, "train-images-idx3-ubyte.gz")
        with gzip.open(path, "rb") as f:
            raw = f.read()
        with gzip.open(path, "wb") as f:
            f.write(raw[:-100])  # truncated pixel data
        r = run("--data", corrupt, "--out", self.out("corrupt_out"), expect=1)
        self.assertIn("train-images-idx3-ubyte.gz", r.stderr)
        self.assertNotIn("Traceback", r.stderr)

    def test_divergence_stops_with_epoch_and_step_and_keeps_the_good_checkpoint(self):
        out = self.out("diverge")
        run(*self.small(out, "--epochs", "1"))
        with open(os.path.join(out, "model.safetensors"), "rb") as f:
            good = f.read()
        r = run(*self.small(out, "--epochs", "1", "--lr", "1e30", "--force"), expect=3)
        self.assertIn("epoch 1, step", r.stderr)
        with open(os.path.join(out, "model.safetensors"), "rb") as f:
            self.assertEqual(f.read(), good)
        self.assertFalse([n for n in os.listdir(out) if ".tmp" in n])

    def test_non_image_vectors_with_the_gaussian_decoder(self):
        folder = self.out("vectors")
        os.makedirs(folder)
        for split, n in (("train", 200), ("t10k", 50)):
            values = [((i * 37 + j * 11) % 17) / 17.0 - 0.5 for i in range(n) for j in range(10)]
            write_idx(os.path.join(folder, f"{split}-images-idx2-float"), [n, 10],
                      struct.pack(f">{len(values)}f", *values), type_code=0x0D, compress=False)
        r = run("--data", folder, "--epochs", "1", "--out", self.out("vectors_bernoulli"), expect=1)
        self.assertIn("--decoder gaussian", r.stderr)  # values outside [0, 1]: not Bernoulli data
        out = self.out("vectors_out")
        r = run("--data", folder, "--decoder", "gaussian", "--hidden", "16", "--latent", "3", "--batch", "20",
                "--epochs", "2", "--out", out)
        self.assertIn("200 training / 50 test examples of 10 features", r.stdout)
        self.assertTrue(os.path.isfile(os.path.join(out, "model.safetensors")))

    @unittest.skipUnless(os.path.isdir(FASHION), "Fashion-MNIST is not installed")
    def test_fashion_mnist_subset_end_to_end(self):
        out = self.out("fashion")
        r = run("--limit", "1000", "--epochs", "1", "--out", out)
        self.assertIn("1000 training / 10000 test examples of 784 features", r.stdout)
        with open(os.path.join(out, "results.json")) as f:
            results = json.load(f)
        self.assertLess(results["test_loss"], 450.0)  # an untrained decoder scores ~545
        for name in ("model.safetensors", "checkpoint.safetensors", "metrics.csv", "samples.png",
                     "reconstructions.png"):
            self.assertTrue(os.path.isfile(os.path.join(out, name)), name)


if __name__ == "__main__":
    TRAIN_VAE = os.path.abspath(sys.argv.pop(1))
    unittest.main(verbosity=2)
