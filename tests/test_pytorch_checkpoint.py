#!/usr/bin/python3
"""A checkpoint written by train_vae, loaded into the equivalent PyTorch model
(scripts/vae_pytorch.py), gives the same test loss within 0.5 nats.

Run by `meson test` as: test_pytorch_checkpoint.py PATH/TO/train_vae. Exits 77 (skipped)
when python3-torch or Fashion-MNIST is missing.
"""
import json
import os
import subprocess
import sys
import tempfile

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(HERE, "..", "scripts"))
import vae_pytorch  # noqa: E402  (exits 77 without torch)

if not os.path.isdir(vae_pytorch.FASHION):
    print("Fashion-MNIST is not installed; skipping")
    sys.exit(77)

train_vae = sys.argv[1]
with tempfile.TemporaryDirectory() as out:
    cases = [["--limit", "3000", "--epochs", "2"],
             ["--limit", "2000", "--epochs", "1", "--hidden", "64,32", "--latent", "4",
              "--decoder", "gaussian-learned"],
             ["--limit", "2000", "--epochs", "1", "--arch", "conv", "--latent", "8"],
             ["--limit", "1000", "--epochs", "1", "--arch", "conv", "--decoder", "gaussian"]]
    for args in cases:
        subprocess.run([train_vae, "--no-progress", "--force", "--out", out, *args], check=True,
                       stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL)
        with open(os.path.join(out, "results.json")) as f:
            ours = json.load(f)["test_loss"]
        model = vae_pytorch.model_from_checkpoint(os.path.join(out, "model.safetensors"))
        theirs, _, _ = vae_pytorch.test_loss(model, vae_pytorch.load_split(vae_pytorch.FASHION, "t10k"))
        print(f"{' '.join(args)}: test loss ours {ours:.3f}, PyTorch on our checkpoint {theirs:.3f}")
        if abs(ours - theirs) > 0.5:
            sys.exit(f"FAILED: the losses differ by {abs(ours - theirs):.3f} nats (> 0.5)")
print("1 passed, 0 failed")
