#!/usr/bin/python3
"""`vae train` under mpirun, end to end.

Run by `meson test` as: test_mpi_training.py PATH/TO/vae PATH/TO/mpirun [MPIRUN FLAGS...].
Standard library only (the weights are read from the safetensors files with struct).
- 2 ranks give the weights of one process with the same seed and global batch, within the
  stated tolerance (the sum of the shards' gradients is not the one GEMM's sum, bit for bit);
- only rank 0 prints and writes files;
- a checkpoint written by 2 ranks resumes in 1 process (and the reverse) to the same weights;
- a rank that dies mid-epoch, or fails alone on bad data, ends the job with a message and a
  non-zero exit within seconds; the last good checkpoint still resumes;
- a divergence stops every rank: exit 3, reported once; so is an error every rank hits before
  training (a bad flag, missing data), with the same exit code as one process;
- the overlapped allreduce gives the blocking one's weights bit for bit.
"""
import json
import os
import shutil
import signal
import struct
import subprocess
import sys
import tempfile
import time
import unittest

VAE = MPIRUN = None
MPI_FLAGS = []
FASHION = "/usr/share/datasets/fashion-mnist"
# Largest |difference| allowed between the weights of 2 ranks and of 1 process after 2 epochs
# of 10 steps (see README "Data-parallel training": measured 1e-6 to 1e-5).
TOLERANCE = 1e-4


def small(out, *extra, data=FASHION, batch=96):
    return ["train", "--no-progress", "--data", data, "--limit", "1000", "--batch", str(batch), "--hidden", "32",
            "--latent", "4", "--threads", "1", "--seed", "3", "--out", out, *extra]


def one_process(*args, expect=0):
    r = subprocess.run([VAE, *args], capture_output=True, text=True, stdin=subprocess.DEVNULL, timeout=300)
    if expect is not None and r.returncode != expect:
        raise AssertionError(f"vae exited {r.returncode}, expected {expect}\n{r.stdout}\n{r.stderr}")
    return r


def mpi(n, *args, expect=0):
    r = subprocess.run([MPIRUN, *MPI_FLAGS, "-np", str(n), VAE, *args], capture_output=True, text=True,
                       stdin=subprocess.DEVNULL, timeout=300)
    if expect is not None and r.returncode != expect:
        raise AssertionError(f"mpirun exited {r.returncode}, expected {expect}\n{r.stdout}\n{r.stderr}")
    return r


def weights(path):
    with open(path, "rb") as f:
        blob = f.read()
    (n,) = struct.unpack("<Q", blob[:8])
    header = json.loads(blob[8 : 8 + n])
    out = {}
    for name, entry in header.items():
        if name == "__metadata__":
            continue
        begin, end = entry["data_offsets"]
        raw = blob[8 + n + begin : 8 + n + end]
        out[name] = struct.unpack(f"<{len(raw) // 4}f", raw)
    return out


def test_loss(out):
    with open(os.path.join(out, "results.json")) as f:
        return json.load(f)["test_loss"]


def largest_difference(a, b):
    assert a.keys() == b.keys()
    return max(max(abs(x - y) for x, y in zip(a[k], b[k])) for k in a)


class MpiTraining(unittest.TestCase):
    def setUp(self):
        self.dir = tempfile.mkdtemp(prefix="mpi_training_")

    def tearDown(self):
        shutil.rmtree(self.dir, ignore_errors=True)

    def out(self, name):
        return os.path.join(self.dir, name)

    def test_two_ranks_match_one_process_and_only_rank_0_writes(self):
        one, two, rank1_out = self.out("one"), self.out("two"), self.out("rank1")
        one_process(*small(one, "--epochs", "2"))
        # Rank 1 is told another --out: anything it wrote would appear there.
        r = subprocess.run([MPIRUN, *MPI_FLAGS, "-np", "1", VAE, *small(two, "--epochs", "2"), ":", "-np", "1", VAE,
                            *small(rank1_out, "--epochs", "2")], capture_output=True, text=True,
                           stdin=subprocess.DEVNULL, timeout=300)
        self.assertEqual(r.returncode, 0, r.stdout + r.stderr)
        self.assertFalse(os.path.exists(rank1_out), "rank 1 wrote files")
        self.assertEqual(sorted(os.listdir(two)), sorted(os.listdir(one)))
        self.assertEqual(r.stdout.count("epoch   2/2"), 1, r.stdout)  # printed by rank 0 alone
        self.assertIn("data-parallel: MPI", r.stdout)
        self.assertIn("allreduce (", r.stdout)
        diff = largest_difference(weights(os.path.join(one, "model.safetensors")),
                                  weights(os.path.join(two, "model.safetensors")))
        print(f"largest weight difference, 2 ranks vs 1 process after 2 epochs: {diff:.3g}")
        self.assertLess(diff, TOLERANCE)
        self.assertGreater(diff, 0.0)  # if it were 0, the tolerance above should say "bit-identical"

        # Two runs with 2 ranks: bit-identical (the reduction order is fixed).
        again = self.out("again")
        mpi(2, *small(again, "--epochs", "2"))
        self.assertEqual(weights(os.path.join(again, "model.safetensors")),
                         weights(os.path.join(two, "model.safetensors")))

    def test_a_conditional_model_trains_on_two_ranks_as_in_one_process(self):
        # Each rank's shard of the batch takes its own rows' labels.
        one, two = self.out("c_one"), self.out("c_two")
        one_process(*small(one, "--epochs", "2", "--conditional"))
        mpi(2, *small(two, "--epochs", "2", "--conditional"))
        a, b = weights(os.path.join(one, "model.safetensors")), weights(os.path.join(two, "model.safetensors"))
        self.assertEqual(len(a["encoder.0.weight"]), 32 * (784 + 10))  # the one-hot class columns
        self.assertLess(largest_difference(a, b), TOLERANCE)

    def test_the_conditional_conv_model_trains_on_two_ranks_as_in_one_process(self):
        one, two = self.out("cc_one"), self.out("cc_two")
        one_process(*small(one, "--epochs", "2", "--conditional", "--arch", "conv", batch=64))
        mpi(2, *small(two, "--epochs", "2", "--conditional", "--arch", "conv", batch=64))
        a, b = weights(os.path.join(one, "model.safetensors")), weights(os.path.join(two, "model.safetensors"))
        self.assertEqual(len(a["encoder.0.weight"]), 32 * (1 + 10) * 4 * 4)  # a constant channel per class
        # Not within TOLERANCE everywhere: where a ReLU input is within rounding of 0, one run's
        # gradient is exactly 0 and the other's tiny, and Adam, dividing by its own scale, moves
        # the weight by a whole learning rate in one run only (measured: 2.5% of the weights
        # differ by more than 1e-4, 0.24% by more than 1e-3). A rank with wrong rows or labels
        # moves most of them.
        differences = [abs(x - y) for k in a for x, y in zip(a[k], b[k])]
        self.assertLess(sum(d > 1e-3 for d in differences) / len(differences), 0.01)
        self.assertAlmostEqual(test_loss(one), test_loss(two), delta=0.1)

    def test_clipping_schedule_weight_decay_and_patience_on_two_ranks_as_in_one_process(self):
        # clipping sees the summed gradient; rank 0's early-stopping decision reaches rank 1
        extra = ("--epochs", "4", "--clip-grad", "0.5", "--lr-schedule", "cosine", "--weight-decay", "0.01",
                 "--lr", "0.01", "--patience", "1")
        one, two = self.out("o_one"), self.out("o_two")
        one_process(*small(one, *extra))
        r = mpi(2, *small(two, *extra))
        self.assertIn("gradients clipped to norm 0.5", r.stdout)
        with open(os.path.join(one, "metrics.csv")) as f, open(os.path.join(two, "metrics.csv")) as g:
            self.assertEqual(len(f.readlines()), len(g.readlines()))  # the same epochs, stopped or not
        self.assertLess(largest_difference(weights(os.path.join(one, "best.safetensors")),
                                           weights(os.path.join(two, "best.safetensors"))), TOLERANCE)

    def test_overlapped_and_blocking_allreduce_give_the_same_weights_bit_for_bit(self):
        # 1000 = 3 x 333 + 1: the last batch of each epoch leaves rank 1 no rows (no sweep).
        # 3 ranks sum in rank order through non-blocking alltoalls and allgathers.
        for ranks in (2, 3):
            runs = {}
            for mode in ("overlapped", "blocking"):
                out = self.out(f"{mode}{ranks}")
                r = mpi(ranks, *small(out, "--epochs", "2", "--allreduce", mode, batch=333))
                self.assertIn(f"allreduce ({mode})", r.stdout)
                runs[mode] = weights(os.path.join(out, "model.safetensors"))
            self.assertEqual(runs["overlapped"], runs["blocking"], f"{ranks} ranks")

    def test_an_error_every_rank_hits_before_training_is_printed_once(self):
        out = self.out("errors")
        config = os.path.join(self.dir, "absent.toml")
        for args, code, what in [(["train", "--no-such-flag"], 2, "--no-such-flag"),
                                 (small(out, batch="abc"), 2, "--batch"),
                                 (small(out, "--allreduce", "sometimes"), 2, "--allreduce"),
                                 (["train", "--config", config], 2, config),
                                 (small(out, data=os.path.join(self.dir, "no-data")), 1, "no-data")]:
            start = time.time()
            r = mpi(2, *args, expect=None)
            self.assertLess(time.time() - start, 60)
            self.assertEqual(r.returncode, code, r.stdout + r.stderr)
            self.assertEqual(r.stderr.count(what), 1, r.stderr)
            self.assertNotIn("rank 1", r.stderr)
        self.assertFalse(os.path.exists(out))

    def test_resume_with_another_number_of_ranks(self):
        straight, switched = self.out("straight"), self.out("switched")
        mpi(2, *small(straight, "--epochs", "3"))
        mpi(2, *small(switched, "--epochs", "1"))
        one_process(*small(switched, "--epochs", "2", "--resume", os.path.join(switched, "checkpoint.safetensors")))
        r = mpi(3, *small(switched, "--epochs", "3", "--resume", os.path.join(switched, "checkpoint.safetensors")))
        self.assertIn("resuming", r.stdout)
        diff = largest_difference(weights(os.path.join(straight, "model.safetensors")),
                                  weights(os.path.join(switched, "model.safetensors")))
        self.assertLess(diff, TOLERANCE)

    def test_a_rank_killed_mid_epoch_ends_the_job_and_the_checkpoint_resumes(self):
        out = self.out("killed")
        # Many epochs of the whole subset: it is killed long before the end.
        job = subprocess.Popen([MPIRUN, *MPI_FLAGS, "-np", "2", VAE, *small(out, "--epochs", "1000")],
                               stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, stdin=subprocess.DEVNULL)
        checkpoint = os.path.join(out, "checkpoint.safetensors")
        deadline = time.time() + 120
        while not os.path.exists(checkpoint) and time.time() < deadline and job.poll() is None:
            time.sleep(0.1)
        self.assertTrue(os.path.exists(checkpoint), "no checkpoint was written")
        rank1 = rank_pid(job.pid, 1)
        self.assertIsNotNone(rank1, "rank 1 not found among mpirun's processes")
        os.kill(rank1, signal.SIGKILL)
        killed = time.time()
        try:
            stdout, stderr = job.communicate(timeout=30)
        except subprocess.TimeoutExpired:
            job.kill()
            self.fail("the job hung after rank 1 died")
        self.assertLess(time.time() - killed, 30)
        self.assertNotEqual(job.returncode, 0)
        self.assertIn("signal 9", stderr + stdout)  # mpirun names the rank and the signal
        # The last good checkpoint resumes.
        epochs = int(json.loads(read_header(checkpoint))["__metadata__"]["epochs"])
        r = one_process(*small(out, "--epochs", str(epochs + 1), "--resume", checkpoint))
        self.assertIn(f"resuming {checkpoint} after epoch {epochs}", r.stdout)

    def test_a_rank_failing_alone_on_bad_data_stops_every_rank_with_its_message(self):
        bad = self.out("bad_data")
        os.makedirs(bad)
        for name in os.listdir(FASHION):
            with open(os.path.join(FASHION, name), "rb") as f:
                blob = f.read()
            with open(os.path.join(bad, name), "wb") as f:
                f.write(blob[: len(blob) // 2])  # truncated: a corrupt shard on rank 1's machine
        out = self.out("bad")
        start = time.time()
        r = subprocess.run([MPIRUN, *MPI_FLAGS, "-np", "1", VAE, *small(out, "--epochs", "2"), ":", "-np", "1", VAE,
                            *small(out, "--epochs", "2", data=bad)], capture_output=True, text=True,
                           stdin=subprocess.DEVNULL, timeout=120)
        self.assertLess(time.time() - start, 60)
        # MPI_Abort(1): mpirun exits 1, but Debian's OpenMPI 4.1.4 mpirun itself sometimes
        # crashes while relaying the abort (SIGSEGV in pmix_server_log_fn), so any failure counts.
        self.assertNotEqual(r.returncode, 0, r.stdout + r.stderr)
        self.assertIn("vae train (rank 1 of 2): error:", r.stderr)
        self.assertIn(bad, r.stderr)  # the message names the bad file
        self.assertFalse(os.path.exists(os.path.join(out, "model.safetensors")))

    def test_divergence_stops_every_rank_and_is_reported_once(self):
        out = self.out("diverge")
        r = mpi(2, *small(out, "--epochs", "1", "--lr", "1e30"), expect=3)
        self.assertEqual((r.stdout + r.stderr).count("the loss became"), 1, r.stdout + r.stderr)


def read_header(path):
    with open(path, "rb") as f:
        (n,) = struct.unpack("<Q", f.read(8))
        return f.read(n)


def rank_pid(mpirun_pid, rank):
    """The pid of MPI rank `rank` among the descendants of mpirun."""
    for _ in range(50):
        for pid in os.listdir("/proc"):
            if not pid.isdigit():
                continue
            try:
                with open(f"/proc/{pid}/environ", "rb") as f:
                    env = f.read().split(b"\0")
                with open(f"/proc/{pid}/stat") as f:
                    ppid = int(f.read().rsplit(")", 1)[1].split()[1])
            except OSError:
                continue
            if ppid == mpirun_pid and f"OMPI_COMM_WORLD_RANK={rank}".encode() in env:
                return int(pid)
        time.sleep(0.1)
    return None


if __name__ == "__main__":
    VAE, MPIRUN, MPI_FLAGS = sys.argv[1], sys.argv[2], sys.argv[3:]
    if not os.path.isdir(FASHION):
        print("Fashion-MNIST not installed: skipped")
        sys.exit(77)
    unittest.main(argv=[sys.argv[0], "-v"])
