#!/usr/bin/python3
"""kill -9 of train_vae during checkpoint writes, several times: every file left behind is
valid or absent, the next run leaves no temporary file, and resuming reproduces the
uninterrupted run exactly. Ctrl-C (SIGINT) stops training after the step, exits 130 naming
the checkpoint to resume from, and resuming from it reproduces the uninterrupted run too. A
reader of the standard output that goes away (`train_vae | head -1`) does not stop training,
nor does a standard output closed from the start (`train_vae >&-`).

Run by `meson test` as: test_crash_resume.py PATH/TO/train_vae. Standard library only.
"""
import json
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time
import unittest

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from test_train_vae import make_images, read_safetensors  # noqa: E402

TRAIN_VAE = None
EPOCHS = "5"


def temporaries(folder):
    return sorted(n for n in os.listdir(folder) if ".tmp-" in n) if os.path.isdir(folder) else []


def check_outputs_valid(test, folder):
    """Each output file present is complete: a reader sees the old content or the new."""
    for name in sorted(os.listdir(folder)):
        path = os.path.join(folder, name)
        if ".tmp-" in name:
            continue  # a killed writer's temporary: the next write of that file removes it
        with open(path, "rb") as f:
            blob = f.read()
        if name.endswith(".safetensors"):
            header, data = read_safetensors(path)
            spans = sorted(tuple(v["data_offsets"]) for k, v in header.items() if k != "__metadata__")
            test.assertEqual(spans[0][0], 0, name)
            test.assertTrue(all(a[1] == b[0] for a, b in zip(spans, spans[1:])), name)
            test.assertEqual(spans[-1][1], len(data), f"{name}: data section cut short")
        elif name == "metrics.csv":
            rows = blob.decode().splitlines()
            test.assertTrue(rows[0].startswith("epoch,"), name)
            test.assertTrue(all(len(r.split(",")) == len(rows[0].split(",")) for r in rows), name)
        elif name.endswith(".png"):
            test.assertEqual(blob[:8], b"\x89PNG\r\n\x1a\n", name)
            test.assertEqual(blob[-8:-4], b"IEND", f"{name}: cut short")
        elif name.endswith(".json"):
            json.loads(blob)
        elif name.endswith(".html"):
            test.assertTrue(blob.rstrip().endswith(b"</html>"), f"{name}: cut short")
        else:
            test.fail(f"unexpected file {name}")


class CrashDuringCheckpointWrite(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.tmp = tempfile.mkdtemp(prefix="crash_resume_test_")
        cls.data = os.path.join(cls.tmp, "data")
        # 28 x 28 images and the default 400-unit model: a checkpoint of about 8 MB, whose
        # write lasts long enough to be caught.
        make_images(cls.data, n_train=512, n_test=64, side=28)
        cls.straight = os.path.join(cls.tmp, "straight")
        subprocess.run(cls.args(cls.straight), check=True, stdout=subprocess.DEVNULL, stdin=subprocess.DEVNULL)

    @classmethod
    def tearDownClass(cls):
        shutil.rmtree(cls.tmp, ignore_errors=True)

    @classmethod
    def args(cls, out):
        return [TRAIN_VAE, "--no-progress", "--data", cls.data, "--out", out, "--epochs", EPOCHS,
                "--batch", "64", "--seed", "7", "--threads", "2"]

    def kill_during_write(self, cmd, skip):
        """Runs cmd and kills it with SIGKILL as soon as the (skip+1)-th checkpoint temporary
        is seen. Returns True if it was killed, False if it finished first."""
        proc = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                                stdin=subprocess.DEVNULL)
        out = cmd[cmd.index("--out") + 1]
        seen, last = 0, None
        try:
            while proc.poll() is None:
                tmp = [n for n in temporaries(out) if n.startswith("checkpoint.safetensors.tmp-")
                       and n.endswith(f"-{proc.pid}")]
                if tmp and tmp != last:
                    seen += 1
                    if seen > skip:
                        proc.send_signal(signal.SIGKILL)
                        proc.wait()
                        return True
                last = tmp
                time.sleep(0.0002)
        finally:
            if proc.poll() is None:
                proc.kill()
                proc.wait()
        self.assertEqual(proc.returncode, 0)
        return False

    def assert_same_run(self, straight, resumed):
        with open(os.path.join(straight, "model.safetensors"), "rb") as a, \
                open(os.path.join(resumed, "model.safetensors"), "rb") as b:
            self.assertEqual(a.read(), b.read(), "model.safetensors differs from the uninterrupted run's")
        # The checkpoint's metadata holds the metrics, timings included: compare the rest.
        a_header, a_data = read_safetensors(os.path.join(straight, "checkpoint.safetensors"))
        b_header, b_data = read_safetensors(os.path.join(resumed, "checkpoint.safetensors"))
        self.assertEqual(a_data, b_data, "checkpoint tensors differ")
        for header in (a_header, b_header):
            metadata = header["__metadata__"]
            for key in [k for k in metadata if k.endswith("metrics")]:
                del metadata[key]
        self.assertEqual(a_header, b_header)
        with open(os.path.join(straight, "metrics.csv")) as f:
            a = [row.split(",")[:5] for row in f.read().splitlines()]
        with open(os.path.join(resumed, "metrics.csv")) as f:
            b = [row.split(",")[:5] for row in f.read().splitlines()]
        self.assertEqual(a, b)

    def test_ctrl_c_stops_after_the_step_names_the_checkpoint_and_resume_matches(self):
        out = os.path.join(self.tmp, "interrupted")
        checkpoint = os.path.join(out, "checkpoint.safetensors")
        for _ in range(5):  # a signal that lands after the last step is too late to stop anything
            shutil.rmtree(out, ignore_errors=True)
            proc = subprocess.Popen(self.args(out), stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
                                    stdin=subprocess.DEVNULL, text=True)
            try:
                while proc.poll() is None and not os.path.exists(checkpoint):  # after epoch 1
                    time.sleep(0.001)
                proc.send_signal(signal.SIGINT)
                _, err = proc.communicate(timeout=60)
            finally:
                if proc.poll() is None:
                    proc.kill()
                    proc.wait()
            if proc.returncode != 0:
                break
        self.assertEqual(proc.returncode, 130, err)
        self.assertIn("interrupted (SIGINT) at epoch", err)
        self.assertIn(f"run the same command with --resume {checkpoint}", err)
        self.assertEqual(temporaries(out), [])
        check_outputs_valid(self, out)
        self.assertFalse(os.path.exists(os.path.join(out, "results.json")))  # it did not finish
        subprocess.run(self.args(out) + ["--resume", checkpoint], check=True, stdout=subprocess.DEVNULL,
                       stdin=subprocess.DEVNULL)
        self.assert_same_run(self.straight, out)

    def test_a_closed_output_pipe_does_not_stop_training(self):
        out = os.path.join(self.tmp, "piped")
        proc = subprocess.Popen(self.args(out), stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                                stdin=subprocess.DEVNULL)
        try:
            first = proc.stdout.readline()
            proc.stdout.close()  # as `| head -1` does: the next write finds no reader
            err = proc.stderr.read().decode()
            proc.stderr.close()
            proc.wait(timeout=120)
        finally:
            if proc.poll() is None:
                proc.kill()
                proc.wait()
        self.assertTrue(first.startswith(b"vae train: "), first)
        self.assertEqual(proc.returncode, 0, err)
        self.assertIn("the standard output was closed", err)
        self.assertIn(os.path.join(out, "metrics.csv"), err)
        self.assertTrue(os.path.exists(os.path.join(out, "results.json")))  # it finished
        self.assert_same_run(self.straight, out)

    def test_a_closed_standard_output_does_not_stop_training(self):
        # `vae train ... >&-`: descriptor 1 is /dev/null from the start, so no file opened later
        # takes it, and the run says once that its lines are discarded.
        out = os.path.join(self.tmp, "closed")
        r = subprocess.run(self.args(out), stderr=subprocess.PIPE, stdin=subprocess.DEVNULL, text=True,
                           preexec_fn=lambda: os.close(1), timeout=120)
        self.assertEqual(r.returncode, 0, r.stderr)
        self.assertIn("train_vae: the standard output is closed; what it would show is discarded", r.stderr)
        self.assertNotIn("its reader went away", r.stderr)
        self.assertTrue(os.path.exists(os.path.join(out, "results.json")))  # it finished
        self.assert_same_run(self.straight, out)

    def test_kills_during_checkpoint_writes_then_resume_matches(self):

        crashed = os.path.join(self.tmp, "crashed")
        checkpoint = os.path.join(crashed, "checkpoint.safetensors")
        kills, mid_write = 0, 0
        for attempt in range(10):
            if kills >= 3 and mid_write >= 1:
                break
            # A kill can leave a model without a checkpoint: starting again then needs --force.
            resume = ["--resume", checkpoint] if os.path.exists(checkpoint) else ["--force"]
            if not self.kill_during_write(self.args(crashed) + resume, skip=attempt % 2):
                shutil.rmtree(crashed)  # finished before a kill: start over
                continue
            kills += 1
            left = temporaries(crashed)
            mid_write += any(n.startswith("checkpoint.safetensors.tmp-") for n in left)
            check_outputs_valid(self, crashed)
        self.assertGreaterEqual(kills, 3)
        self.assertGreaterEqual(mid_write, 1, "no kill landed while a checkpoint was being written")

        # The run that finishes: from the last checkpoint if one survived.
        resume = ["--resume", checkpoint] if os.path.exists(checkpoint) else ["--force"]
        subprocess.run(self.args(crashed) + resume, check=True, stdout=subprocess.DEVNULL,
                       stdin=subprocess.DEVNULL)
        self.assertEqual(temporaries(crashed), [])
        check_outputs_valid(self, crashed)
        self.assert_same_run(self.straight, crashed)
        print(f"{kills} kills, {mid_write} of them while a checkpoint was being written")


if __name__ == "__main__":
    TRAIN_VAE = os.path.abspath(sys.argv.pop(1))
    unittest.main(verbosity=2)
