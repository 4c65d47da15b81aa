#!/usr/bin/python3
"""train_vae on hostile files: each ends cleanly (exit code 1 with a message naming the file and
what is wrong, never a signal) and overwrites none of the previous results; a picture too large
to draw is skipped with a warning while the run succeeds.

Run by `meson test` as: test_hostile_inputs.py PATH/TO/train_vae. Standard library only.
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

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from test_train_vae import make_images, write_idx  # noqa: E402

TRAIN_VAE = None


def run(*args):
    return subprocess.run([TRAIN_VAE, "--no-progress", *args], capture_output=True, text=True,
                          stdin=subprocess.DEVNULL, timeout=600)


def snapshot(folder):
    out = {}
    for name in sorted(os.listdir(folder)):
        with open(os.path.join(folder, name), "rb") as f:
            out[name] = f.read()
    return out


class HostileInputs(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.tmp = tempfile.mkdtemp(prefix="hostile_inputs_test_")
        cls.data = os.path.join(cls.tmp, "data")
        make_images(cls.data, n_train=64, n_test=16)
        # A finished run whose results must survive every failed run below.
        cls.results = os.path.join(cls.tmp, "results")
        r = run("--data", cls.data, "--out", cls.results, "--epochs", "1", "--hidden", "8")
        assert r.returncode == 0, r.stderr

    @classmethod
    def tearDownClass(cls):
        shutil.rmtree(cls.tmp, ignore_errors=True)

    def assert_clean_failure(self, result, *parts):
        self.assertEqual(result.returncode, 1, f"stderr:\n{result.stderr}")  # not a signal (< 0)
        for part in parts:
            self.assertIn(part, result.stderr)

    def test_deeply_nested_json_in_a_checkpoint_header(self):
        # In a shape, where an error message once rendered the value recursively (SIGSEGV).
        nest = b"[" * 250000 + b"]" * 250000  # 500 KB
        header = b'{"w": {"dtype": "F32", "shape": [1, ' + nest + b'], "data_offsets": [0, 4]}}'
        path = os.path.join(self.tmp, "deep.safetensors")
        with open(path, "wb") as f:
            f.write(struct.pack("<Q", len(header)) + header + bytes(4))
        before = snapshot(self.results)
        r = run("--resume", path, "--data", self.data, "--out", self.results, "--epochs", "2")
        self.assert_clean_failure(r, path, "nests JSON 250003 levels deep")
        self.assertEqual(snapshot(self.results), before)

    def test_gzip_idx_header_claiming_more_than_the_file_holds(self):
        data = os.path.join(self.tmp, "lying")
        make_images(data, n_train=64, n_test=16)
        # [60000, 28, 28] claimed, 100 bytes present: a tiny gzip file cannot inflate to 47 MB.
        lying = os.path.join(data, "train-images-idx3-ubyte.gz")
        write_idx(lying, [60000, 28, 28], bytes(100))
        before = snapshot(self.results)
        # --force: the folder holds a finished run, which must survive the bad data anyway.
        r = run("--data", data, "--out", self.results, "--epochs", "1", "--force")
        self.assert_clean_failure(r, lying, "dims [60000, 28, 28] of u8 need 47040000 bytes",
                                  "inflates to at most")
        self.assertEqual(snapshot(self.results), before)

    def test_float_idx_holding_nan_is_refused_as_data_not_as_divergence(self):
        # Read as it was, the NaN made the first step's loss NaN: exit 3, "try a smaller --lr".
        data = os.path.join(self.tmp, "nan_idx")
        os.makedirs(data)
        values = [0.5] * (40 * 16)
        values[5 * 16 + 3] = float("nan")
        path = os.path.join(data, "train-images-idx2-float")
        write_idx(path, [40, 16], struct.pack(">640f", *values), type_code=0x0D, compress=False)
        r = run("--data", data, "--out", os.path.join(self.tmp, "nan_out"), "--decoder", "gaussian",
                "--epochs", "1")
        self.assert_clean_failure(r, path, "example 5 holds a non-finite value (nan)")
        self.assertFalse(os.path.exists(os.path.join(self.tmp, "nan_out", "model.safetensors")))

    def test_a_stray_huge_label_does_not_make_a_conditional_model_of_that_many_classes(self):
        # Label 2^31 - 1 asked for 2^31 one-hot inputs per layer (a label of 10^8 took 21 GB
        # before the kernel killed the run).
        data = os.path.join(self.tmp, "huge_label")
        make_images(data, n_train=64, n_test=16)
        labels = [i % 4 for i in range(64)]
        labels[7] = 2**31 - 1
        write_idx(os.path.join(data, "train-labels-idx1-ubyte.gz"), [64], struct.pack(">64i", *labels),
                  type_code=0x0C)
        r = run("--data", data, "--out", os.path.join(self.tmp, "huge_label_out"), "--conditional",
                "--epochs", "1", "--hidden", "8")
        self.assert_clean_failure(r, "label 2147483647 would make a model of 2147483648 classes",
                                  "at most 10000")

    def test_test_images_of_another_shape_with_as_many_pixels_are_refused(self):
        # 4 x 16 test images beside 8 x 8 training ones were evaluated (and drawn) as 8 x 8.
        data = os.path.join(self.tmp, "other_test_shape")
        make_images(data, n_train=64, n_test=16)
        write_idx(os.path.join(data, "t10k-images-idx3-ubyte.gz"), [16, 4, 16], bytes(16 * 64))
        out = os.path.join(self.tmp, "other_test_shape_out")
        r = run("--data", data, "--out", out, "--epochs", "1", "--hidden", "8")
        self.assert_clean_failure(r, f"{data}: test examples of shape [4,16], training examples [8,8]")
        self.assertFalse(os.path.exists(os.path.join(out, "model.safetensors")))

    def test_resuming_on_examples_of_another_shape_or_past_the_classes_is_refused(self):
        # The same bytes as 4 x 16 images have the same fingerprint: a conv model went on as one
        # of 4 x 16 images (as many parameters), even without --force.
        conv = os.path.join(self.tmp, "resume_conv")
        r = run("--data", self.data, "--out", conv, "--epochs", "1", "--arch", "conv", "--latent", "2")
        self.assertEqual(r.returncode, 0, r.stderr)
        reshaped = os.path.join(self.tmp, "reshaped")
        os.makedirs(reshaped)
        for split, n in (("train", 64), ("t10k", 16)):
            with gzip.open(os.path.join(self.data, f"{split}-images-idx3-ubyte.gz")) as f:
                pixels = f.read()[16:]
            write_idx(os.path.join(reshaped, f"{split}-images-idx3-ubyte.gz"), [n, 4, 16], pixels)
        checkpoint = os.path.join(conv, "checkpoint.safetensors")
        before = snapshot(conv)
        r = run("--resume", checkpoint, "--data", reshaped, "--out", conv, "--epochs", "2", "--force")
        self.assert_clean_failure(r, f"{checkpoint} was trained on examples of shape [8,8] (64 values), but those "
                                  f"of {reshaped} are [4,16] (64 values)")
        self.assertEqual(snapshot(conv), before)
        # Other data with --force: a label past the conditional model's classes failed at the
        # first step, naming neither the data nor the checkpoint.
        conditional = os.path.join(self.tmp, "resume_conditional")
        r = run("--data", self.data, "--out", conditional, "--epochs", "1", "--conditional", "--hidden", "8")
        self.assertEqual(r.returncode, 0, r.stderr)
        more = os.path.join(self.tmp, "more_classes")
        make_images(more, n_train=64, n_test=16)
        write_idx(os.path.join(more, "train-labels-idx1-ubyte.gz"), [64], bytes(i % 6 for i in range(64)))
        checkpoint = os.path.join(conditional, "checkpoint.safetensors")
        r = run("--resume", checkpoint, "--data", more, "--out", conditional, "--epochs", "2", "--force")
        self.assert_clean_failure(r, f"--resume: {more} holds label 4, but the conditional model of {checkpoint} "
                                  "has 4 classes")

    def test_resuming_a_checkpoint_holding_nan_creates_nothing(self):
        # The NaN was found as the weights were restored, after --out had been created.
        checkpoint = os.path.join(self.results, "checkpoint.safetensors")
        with open(checkpoint, "rb") as f:
            blob = bytearray(f.read())
        (n,) = struct.unpack("<Q", blob[:8])
        first = min(v["data_offsets"][0] for k, v in json.loads(blob[8:8 + n]).items() if k != "__metadata__")
        blob[8 + n + first + 4:8 + n + first + 8] = struct.pack("<f", float("nan"))
        path = os.path.join(self.tmp, "nan.safetensors")
        with open(path, "wb") as f:
            f.write(blob)
        out = os.path.join(self.tmp, "nan_out")
        r = run("--resume", path, "--out", out, "--epochs", "2")
        self.assert_clean_failure(r, path, "holds a non-finite value (nan)")
        self.assertFalse(os.path.exists(out))

    def test_resuming_a_checkpoint_whose_metrics_are_not_figures_creates_nothing(self):
        # Its metrics text went on into the new metrics.csv as it was, and the best epoch was
        # read from it.
        checkpoint = os.path.join(self.results, "checkpoint.safetensors")
        with open(checkpoint, "rb") as f:
            blob = f.read()
        (n,) = struct.unpack("<Q", blob[:8])
        header = json.loads(blob[8:8 + n])
        rows = header["__metadata__"]["state.metrics"].splitlines()
        epochs = int(header["__metadata__"]["epochs"])
        # one more row of well-formed figures than the epochs the checkpoint says it trained
        extra = "\n".join(rows + [f"{len(rows) + 1}," + rows[-1].split(",", 1)[1]]) + "\n"
        for metrics, message in (
                ("garbage line\n1,2\n", "its metrics (state.metrics), line 1, are not epoch 1's figures: 'garbage line'"),
                (extra, f"its metrics (state.metrics) hold {len(rows) + 1} epoch(s), its metadata says {epochs}")):
            header["__metadata__"]["state.metrics"] = metrics
            text = json.dumps(header).encode()
            text += b" " * (-len(text) % 8)
            path = os.path.join(self.tmp, "metrics.safetensors")
            with open(path, "wb") as f:
                f.write(struct.pack("<Q", len(text)) + text + blob[8 + n:])
            out = os.path.join(self.tmp, "metrics_out")
            r = run("--resume", path, "--out", out, "--epochs", str(epochs + 5))
            self.assert_clean_failure(r, path, message)
            self.assertFalse(os.path.exists(out))

    def test_resuming_on_examples_of_another_size_names_both_shapes_and_the_data(self):
        # Rows of 12 values for a model of 10: refused only by the parameter count ("needs 740
        # parameters, but the file holds 706 model values"), naming neither shape nor the data.
        rows = {}
        for width in (10, 12):
            rows[width] = os.path.join(self.tmp, f"rows{width}.csv")
            with open(rows[width], "w") as f:
                f.write("".join(",".join(f"{(i * 7 + j) % 10 / 10}" for j in range(width)) + "\n" for i in range(40)))
        trained = os.path.join(self.tmp, "rows10_run")
        r = run("--data", rows[10], "--out", trained, "--epochs", "1", "--hidden", "8")
        self.assertEqual(r.returncode, 0, r.stderr)
        checkpoint = os.path.join(trained, "checkpoint.safetensors")
        out = os.path.join(self.tmp, "rows12_out")
        r = run("--resume", checkpoint, "--data", rows[12], "--out", out, "--epochs", "2", "--force")
        self.assert_clean_failure(r, f"--resume: {checkpoint} was trained on examples of shape [10] (10 values), "
                                  f"but those of {rows[12]} are [12] (12 values)")
        self.assertFalse(os.path.exists(out))

    def test_a_device_named_like_data_is_refused_not_read_forever(self):
        # /dev/zero as an .npy or a .csv was read to its end, which never comes, filling memory.
        for name in ("zero.npy", "zero.csv"):
            link = os.path.join(self.tmp, name)
            os.symlink("/dev/zero", link)
            r = subprocess.run([TRAIN_VAE, "--no-progress", "--data", link, "--out", os.path.join(self.tmp, "zero")],
                               capture_output=True, text=True, stdin=subprocess.DEVNULL, timeout=60)
            self.assert_clean_failure(r, f"{link}: not a file (a device or a folder)")
        # --label-names /dev/zero: one endless line; a folder was read as no names at all.
        for names in ("/dev/zero", self.tmp):
            r = subprocess.run([TRAIN_VAE, "--no-progress", "--data", self.data, "--label-names", names, "--out",
                                os.path.join(self.tmp, "zero")],
                               capture_output=True, text=True, stdin=subprocess.DEVNULL, timeout=60)
            self.assert_clean_failure(r, f"{names}: not a file (a device or a folder)")

    def test_a_model_larger_than_the_memory_is_refused_before_it_is_built(self):
        # Within every flag's bounds: 10^6 inputs and 16 layers of 16,384 make 2.1e10
        # parameters (344 GB with gradients and Adam's moments), which the kernel killed as
        # they were initialised.
        data = os.path.join(self.tmp, "wide")
        os.makedirs(data)
        for split, n in (("train", 4), ("t10k", 2)):
            write_idx(os.path.join(data, f"{split}-images-idx2-ubyte.gz"), [n, 1000000], bytes(n * 1000000))
        out = os.path.join(self.tmp, "wide_out")
        r = run("--data", data, "--out", out, "--epochs", "1", "--hidden", ",".join(["16384"] * 16))
        self.assertEqual(r.returncode, 2, r.stderr)
        self.assertIn("parameters, which need", r.stderr)
        self.assertIn("more than this machine's", r.stderr)
        self.assertFalse(os.path.exists(out))

    @unittest.skipIf("ASAN_OPTIONS" in os.environ, "AddressSanitizer reserves more address space than the limit")
    def test_a_batch_whose_activations_exceed_the_memory_is_refused_before_training(self):
        # A conv model at --batch 20000 over 20,000 examples keeps 3.6 GB of activations and
        # gradients: past the memory (here an address-space limit of 2 GB, as `ulimit -v` sets;
        # on a machine without one, its RAM) the first step ran out of memory or was killed.
        import resource
        data = os.path.join(self.tmp, "many")
        os.makedirs(data)
        for split, n in (("train", 20000), ("t10k", 100)):
            write_idx(os.path.join(data, f"{split}-images-idx3-ubyte.gz"), [n, 28, 28], bytes(n * 784))
        out = os.path.join(self.tmp, "many_out")

        def limit_memory():
            resource.setrlimit(resource.RLIMIT_AS, (2 << 30, 2 << 30))
        r = subprocess.run([TRAIN_VAE, "--no-progress", "--data", data, "--out", out, "--arch", "conv", "--batch",
                            "20000", "--epochs", "1"], capture_output=True, text=True, stdin=subprocess.DEVNULL,
                           timeout=600, preexec_fn=limit_memory)
        self.assertEqual(r.returncode, 2, r.stderr)
        self.assertIn("--batch 20000: a training step over 20000 examples of this model (conv, image 1x28x28", r.stderr)
        self.assertIn("choose a smaller --batch (below ", r.stderr)
        self.assertFalse(os.path.exists(out))
        # Resumed on a machine with less memory than the run began on: the checkpoint's batch
        # stays (2000 examples, about 0.4 GB), so the refusal says where to resume instead.
        first, resumed = os.path.join(self.tmp, "many_first"), os.path.join(self.tmp, "many_resumed")
        subprocess.run([TRAIN_VAE, "--no-progress", "--data", data, "--out", first, "--arch", "conv", "--batch",
                        "2000", "--limit", "2000", "--epochs", "1"], check=True, capture_output=True,
                       stdin=subprocess.DEVNULL, timeout=600)

        def limit_memory_more():
            resource.setrlimit(resource.RLIMIT_AS, (300 << 20, 300 << 20))
        r = subprocess.run([TRAIN_VAE, "--no-progress", "--resume", os.path.join(first, "checkpoint.safetensors"),
                            "--out", resumed, "--epochs", "2"], capture_output=True, text=True,
                           stdin=subprocess.DEVNULL, timeout=600, preexec_fn=limit_memory_more)
        self.assertEqual(r.returncode, 2, r.stderr)
        self.assertIn("--batch 2000: a training step over 2000 examples", r.stderr)
        self.assertIn("resume it where there is more memory", r.stderr)
        self.assertFalse(os.path.exists(resumed))

    def test_pictures_too_large_to_draw_are_skipped_with_a_warning(self):
        # 1030 x 1030 images: 64 samples in 8 columns need 8258 x 8258 pixels even at scale 1,
        # past the 2^26 a picture may hold.
        data = os.path.join(self.tmp, "large")
        os.makedirs(data)
        side = 1030
        for split, n in (("train", 4), ("t10k", 2)):
            pixels = b"".join(bytes([40 * i]) * (side * side) for i in range(n))
            write_idx(os.path.join(data, f"{split}-images-idx3-ubyte.gz"), [n, side, side], pixels)
        out = os.path.join(self.tmp, "large_out")
        r = run("--data", data, "--out", out, "--epochs", "1", "--hidden", "2", "--latent", "2",
                "--batch", "2", "--eval-batch", "2")
        self.assertEqual(r.returncode, 0, r.stderr)
        self.assertIn(f"warning: skipped {os.path.join(out, 'samples.png')}", r.stderr)
        self.assertIn("more than a picture holds", r.stderr)
        for name in ("model.safetensors", "checkpoint.safetensors", "metrics.csv"):
            self.assertTrue(os.path.isfile(os.path.join(out, name)), name)
        self.assertFalse(os.path.exists(os.path.join(out, "samples.png")))
        self.assertEqual([n for n in os.listdir(out) if ".tmp-" in n], [])


if __name__ == "__main__":
    TRAIN_VAE = os.path.abspath(sys.argv.pop(1))
    unittest.main(verbosity=2)
