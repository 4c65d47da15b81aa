"""README's PyTorch snippet, run exactly as written (standard-library Python).

  test_readme_pytorch.py SOURCE_ROOT TRAIN_VAE

Trains a small model into runs/vae/ of a temporary folder that stands in for the repository
root (its scripts/ is the repository's), takes the README's `/usr/bin/python3 - <<'EOF'` block
under "The checkpoint in PyTorch" verbatim, runs it there with bash, and checks it printed
the model. Exits 77 (skipped) when PyTorch is not installed.
"""
import re
import subprocess
import sys
import tempfile
from pathlib import Path


def main():
    if len(sys.argv) != 3:
        sys.exit(__doc__)
    source, train_vae = Path(sys.argv[1]).resolve(), sys.argv[2]
    if subprocess.run(["/usr/bin/python3", "-c", "import torch"], capture_output=True).returncode != 0:
        print("python3-torch not installed: skipped")
        sys.exit(77)
    readme = (source / "README.md").read_text()
    section = readme.split("### The checkpoint in PyTorch", 1)[1]
    snippet = re.search(r"```sh\n(/usr/bin/python3 - <<'EOF'\n.*?\nEOF\n)```", section, re.S)
    if not snippet:
        sys.exit("FAIL: README.md has no `/usr/bin/python3 - <<'EOF'` block under 'The checkpoint in PyTorch'")
    with tempfile.TemporaryDirectory(prefix="vae-autograd-readme-") as root:
        root = Path(root)
        (root / "scripts").symlink_to(source / "scripts")
        subprocess.run([train_vae, "--epochs", "1", "--limit", "500", "--hidden", "32", "--latent", "4",
                        "--out", root / "runs/vae", "--no-progress"], check=True, capture_output=True)
        result = subprocess.run(["bash", "-c", snippet.group(1)], cwd=root, capture_output=True, text=True)
    sys.stdout.write(result.stdout + result.stderr)
    if result.returncode != 0:
        sys.exit(f"FAIL: the README's snippet exited with {result.returncode}")
    if "(mu): Linear(in_features=32, out_features=4" not in result.stdout:
        sys.exit("FAIL: the snippet did not print the loaded model with its sizes")
    print("ok: the README's PyTorch snippet loads runs/vae/model.safetensors")


if __name__ == "__main__":
    main()
