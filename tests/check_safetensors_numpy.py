#!/usr/bin/python3
"""Checks nn/safetensors against an independent reader and writer: numpy + json only.

    /usr/bin/python3 tests/check_safetensors_numpy.py build/tests/safetensors_interop

1. Runs `safetensors_interop write FILE` and reads FILE here: names, dtypes, shapes,
   values and metadata must be what the C++ side meant to write.
2. Writes a file here (F32, F64, F16, I64 and a scalar) and runs
   `safetensors_interop check FILE`, which reads it with the C++ reader.
Exits 77 (meson's "skipped") if numpy is missing.
"""
import json
import os
import struct
import subprocess
import sys
import tempfile

try:
    import numpy as np
except ImportError:
    print("skipped: numpy is not installed for", sys.executable, "(apt install python3-numpy)")
    sys.exit(77)

DTYPES = {"F32": "<f4", "F64": "<f8", "F16": "<f2", "I64": "<i8", "U8": "u1"}


def read(path):
    """Returns ({name: array}, metadata), validating the layout as it goes."""
    with open(path, "rb") as f:
        raw = f.read()
    (n,) = struct.unpack("<Q", raw[:8])
    assert (8 + n) % 8 == 0, f"data section not 8-byte aligned: header length {n}"
    header = json.loads(raw[8:8 + n].decode("utf-8"))
    data = raw[8 + n:]
    metadata = header.pop("__metadata__", {})
    tensors = {}
    covered = 0
    for name, entry in header.items():
        begin, end = entry["data_offsets"]
        dtype = np.dtype(DTYPES[entry["dtype"]])
        shape = tuple(entry["shape"])
        assert end - begin == int(np.prod(shape, dtype=np.int64)) * dtype.itemsize, name
        tensors[name] = np.frombuffer(data[begin:end], dtype=dtype).reshape(shape)
        covered += end - begin
    assert covered == len(data), f"tensors cover {covered} of {len(data)} data bytes"
    return tensors, metadata


def write(path, tensors, metadata):
    header = {"__metadata__": metadata}
    chunks = []
    offset = 0
    names = {"<f4": "F32", "<f8": "F64", "<f2": "F16", "<i8": "I64"}
    for name, array in tensors.items():
        b = array.tobytes()
        header[name] = {"dtype": names[array.dtype.str], "shape": list(array.shape),
                        "data_offsets": [offset, offset + len(b)]}
        chunks.append(b)
        offset += len(b)
    text = json.dumps(header).encode("utf-8")
    text += b" " * (-len(text) % 8)
    with open(path, "wb") as f:
        f.write(struct.pack("<Q", len(text)) + text + b"".join(chunks))


def main():
    exe = sys.argv[1]
    failures = []

    def expect(ok, what):
        if not ok:
            failures.append(what)

    with tempfile.TemporaryDirectory() as tmp:
        cpp_file = os.path.join(tmp, "from_cpp.safetensors")
        subprocess.run([exe, "write", cpp_file], check=True)
        t, meta = read(cpp_file)
        expect(list(t) == ["encoder.fc1.weight", "encoder.fc1.bias", "step", "moments", "mask"],
               f"names {list(t)}")
        w = t["encoder.fc1.weight"]
        expect(w.dtype == np.float32 and w.shape == (3, 4), f"weight {w.dtype} {w.shape}")
        expect(np.array_equal(w, (np.arange(12, dtype=np.float32) * np.float32(0.5) - 1).reshape(3, 4)),
               "weight values")
        b = t["encoder.fc1.bias"]
        expect(b.shape == (3,) and np.array_equal(b, np.array([0.25, -0.5, 1e-3], dtype=np.float32)),
               f"bias {b}")
        expect(t["step"].shape == () and int(t["step"]) == 1234567890123, f"step {t['step']}")
        expect(np.array_equal(t["moments"], np.array([[1 / 3, 2 / 3], [-1e300, 1e-300]])), "moments")
        expect(np.array_equal(t["mask"], np.array([0, 1, 2, 254, 255], dtype=np.uint8)), "mask")
        expect(meta == {"format": "pt", "latent": "20", "config": '{"hidden": 400}'}, f"metadata {meta}")

        py_file = os.path.join(tmp, "from_numpy.safetensors")
        write(py_file, {
            "w": (np.arange(6, dtype=np.float32) * np.float32(1.25) - 2).reshape(2, 3),
            "d": np.array([0.1, -2.5, 1e10], dtype=np.float64),
            "h": np.array([1, -2.5, 65504, 2.0 ** -24, 2.0 ** -14], dtype=np.float16),
            "n": np.array([[-3], [2 ** 40]], dtype=np.int64),
            "s": np.array(7.5, dtype=np.float32),
        }, {"source": "numpy"})
        result = subprocess.run([exe, "check", py_file])
        expect(result.returncode == 0, "the C++ reader rejected the numpy-written file")

    for f in failures:
        print("FAILED:", f)
    if not failures:
        print("numpy read the C++-written file: OK")
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
