#!/usr/bin/python3
"""report.html and curves.png of `vae train`, opened in headless Chromium (Debian's chromium):
the screenshot is not blank and every embedded image was decoded by the browser.

Run by `meson test` as: test_report_html.py PATH/TO/vae. Exits 77 (skipped) without chromium.
Standard library only; the data is a small .npy file written here.
"""
import os
import shutil
import struct
import subprocess
import sys
import tempfile
import zlib

CHROMIUM = shutil.which("chromium")
if CHROMIUM is None:
    print("chromium is not installed; skipping")
    sys.exit(77)

CHROMIUM_FLAGS = ["--headless", "--no-sandbox", "--disable-gpu", "--no-first-run", "--disable-background-networking",
                  "--disable-component-update", "--disable-sync"]


def write_npy(path, rows, side):
    """uint8 [rows, side, side]: stripes whose phase depends on the row."""
    header = "{'descr': '|u1', 'fortran_order': False, 'shape': (%d, %d, %d), }" % (rows, side, side)
    header += " " * (-(10 + len(header) + 1) % 64) + "\n"
    data = bytes(255 if (x + y + r) % 4 < 2 else 0 for r in range(rows) for y in range(side) for x in range(side))
    with open(path, "wb") as f:
        f.write(b"\x93NUMPY\x01\x00" + struct.pack("<H", len(header)) + header.encode() + data)


def png_pixels(path):
    """The decompressed scanlines of a PNG (filter bytes included): enough to tell blank from not."""
    with open(path, "rb") as f:
        blob = f.read()
    assert blob[:8] == b"\x89PNG\r\n\x1a\n", path
    pos, idat = 8, b""
    while pos < len(blob):
        (length,) = struct.unpack(">I", blob[pos:pos + 4])
        kind = blob[pos + 4:pos + 8]
        if kind == b"IDAT":
            idat += blob[pos + 8:pos + 8 + length]
        pos += 12 + length
    return zlib.decompress(idat)


def main(vae):
    with tempfile.TemporaryDirectory(prefix="report_test_") as tmp:
        data = os.path.join(tmp, "stripes.npy")
        write_npy(data, 120, 12)
        out = os.path.join(tmp, "run")
        subprocess.run([vae, "train", "--data", data, "--epochs", "3", "--hidden", "16", "--latent", "2",
                        "--batch", "20", "--out", out, "--no-progress"], check=True, stdin=subprocess.DEVNULL,
                       stdout=subprocess.DEVNULL)
        for name in ("curves.png", "report.html"):
            if not os.path.isfile(os.path.join(out, name)):
                sys.exit(f"FAILED: {name} was not written")
        with open(os.path.join(out, "report.html")) as f:
            html = f.read()
        if "src=\"file:" in html or "src=\"/" in html or html.count("data:image/png;base64,") < 4:
            sys.exit("FAILED: report.html does not embed its pictures")
        profile = os.path.join(tmp, "profile")
        url = "file://" + os.path.join(out, "report.html")
        dom = subprocess.run([CHROMIUM, *CHROMIUM_FLAGS, f"--user-data-dir={profile}", "--virtual-time-budget=5000",
                              "--dump-dom", url], capture_output=True, text=True, timeout=120,
                             stdin=subprocess.DEVNULL).stdout
        marker = dom.split('data-images="')[1].split('"')[0] if 'data-images="' in dom else "none"
        loaded, total = (int(v) for v in marker.split("/")) if "/" in marker else (0, -1)
        if total < 4 or loaded != total:
            sys.exit(f"FAILED: the browser decoded {marker} images")
        shot = os.path.join(tmp, "shot.png")
        subprocess.run([CHROMIUM, *CHROMIUM_FLAGS, f"--user-data-dir={profile}", "--window-size=1000,1400",
                        f"--screenshot={shot}", url], capture_output=True, timeout=120, stdin=subprocess.DEVNULL)
        pixels = png_pixels(shot)
        distinct = len(set(pixels))
        if distinct < 32:
            sys.exit(f"FAILED: the screenshot looks blank ({distinct} distinct byte values)")
        print(f"report.html: {loaded}/{total} images decoded, screenshot with {distinct} distinct byte values")
        print("1 passed, 0 failed")


if __name__ == "__main__":
    main(os.path.abspath(sys.argv[1]))
