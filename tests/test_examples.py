#!/usr/bin/python3
"""The examples run and do what they say, on small data.

Run by `meson test` as: test_examples.py CUSTOM_OP MLP_CLASSIFIER CONDITIONAL_VAE
CONV_AUTOENCODER. The ones that train need Fashion-MNIST (Debian's dataset-fashion-mnist); without it they are skipped.
"""
import os
import re
import subprocess
import sys
import tempfile

FASHION = "/usr/share/datasets/fashion-mnist"
custom_op, mlp_classifier, conditional_vae, conv_autoencoder = sys.argv[1:5]
failures = 0


def run(args):
    p = subprocess.run(args, capture_output=True, text=True, stdin=subprocess.DEVNULL)
    print(p.stdout, end="")
    if p.returncode != 0:
        print(p.stderr, end="")
    return p


def expect(ok, what):
    global failures
    print(("ok: " if ok else "FAILED: ") + what)
    failures += 0 if ok else 1


p = run([custom_op])
expect(p.returncode == 0 and "passed" in p.stdout, "custom_op's gradcheck passes")

if not os.path.isdir(FASHION):
    print("Fashion-MNIST is not installed: the training examples are skipped")
else:
    # One epoch on 3000 examples: far above the 10% of guessing.
    p = run([mlp_classifier, FASHION, "1", "3000"])
    m = re.search(r"final test accuracy ([\d.]+)%", p.stdout)
    expect(p.returncode == 0 and m is not None and float(m.group(1)) > 60.0, "mlp_classifier learns (> 60% after 1 epoch on 3000)")
    with tempfile.TemporaryDirectory() as tmp:
        picture = os.path.join(tmp, "samples.pgm")
        p = run([conditional_vae, FASHION, "1", "3000", picture])
        m = re.search(r"final test loss ([\d.]+)", p.stdout)
        # An untrained Bernoulli decoder scores 784 log 2 = 543 nats.
        expect(p.returncode == 0 and m is not None and float(m.group(1)) < 450.0, "conditional_vae learns (< 450 nats)")
        expect(os.path.exists(picture) and os.path.getsize(picture) == len(b"P5\n280 280\n255\n") + 280 * 280,
               "conditional_vae writes a 280 x 280 grid of samples")
    # One epoch on 1000 images: the test reconstruction loss falls from about 543 nats (784 log 2)
    p = run([conv_autoencoder, FASHION, "1", "1000"])
    losses = [float(v) for v in re.findall(r"reconstruction loss (?:before training: )?([\d.]+)", p.stdout)]
    expect(p.returncode == 0 and len(losses) == 2 and 500 < losses[0] < 560 and losses[1] < 380,
           "conv_autoencoder learns (543 -> under 380 nats after 1 epoch on 1000)")
print(f"{failures} failed")
sys.exit(1 if failures else 0)
