"""The installed library, used as a user would (standard-library Python).

  test_install.py install  SOURCE_ROOT BUILD_ROOT
      `meson install --destdir` of the finished build into a temporary folder; checks the
      headers, libraries (soname) and tools are there; then builds and runs the examples
      against it: one with a plain `g++ $(pkg-config --cflags --libs vae-autograd)` line, and
      each example in examples/<name>/ with its own meson.build and its own CMakeLists.txt.
  test_install.py subproject  SOURCE_ROOT
      examples/train_tiny as a meson project with this repository as its subproject
      (subprojects/vae-autograd), found by dependency('vae-autograd').

The installed files keep the build's prefix (/usr/local unless configured otherwise) under
the temporary DESTDIR, so pkg-config is pointed there with PKG_CONFIG_SYSROOT_DIR and CMake
with CMAKE_PREFIX_PATH (the CMake package finds its files relative to itself). The consumer
builds use no optimization: they test the install, not speed.
"""
import json
import os
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

LIBRARY_FOLDERS = ["autograd", "nn", "optim", "datasets", "distributed", "models"]


def run(cmd, **kwargs):
    """Runs cmd; on failure prints its output and fails the test, naming the command."""
    print("$", " ".join(str(c) for c in cmd), flush=True)
    result = subprocess.run([str(c) for c in cmd], capture_output=True, text=True, **kwargs)
    if result.returncode != 0:
        sys.stdout.write(result.stdout + result.stderr)
        sys.exit(f"FAIL: exit code {result.returncode} from {' '.join(str(c) for c in cmd)}")
    return result.stdout


def check(condition, message):
    if not condition:
        sys.exit("FAIL: " + message)
    print("ok:", message)


def examples(source):
    """The example folders; each must also be built and tested in the tree (examples/meson.build)."""
    names = sorted(p.name for p in (source / "examples").iterdir() if p.is_dir())
    in_tree = (source / "examples" / "meson.build").read_text()
    for name in names:
        check(f"'{name}':" in in_tree, f"examples/{name} is listed in examples/meson.build")
    return names


# Arguments for a short run of the examples that train on Fashion-MNIST (one epoch on a few
# hundred images); the others take none.
FASHION = "/usr/share/datasets/fashion-mnist"
SHORT_RUN = {
    "mlp_classifier": [FASHION, "1", "300"],
    "conditional_vae": [FASHION, "1", "300", os.devnull],
    "conv_autoencoder": [FASHION, "1", "300"],
}


def run_example(exe, env=None):
    """Runs an installed-against example with its in-tree test's expectation: exit code 0."""
    out = run([exe] + SHORT_RUN.get(exe.name, []), env=env)
    check(out.strip() != "", f"{exe.name} ran and printed its results")


def test_install(source, build):
    options = {o["name"]: o["value"] for o in json.loads(run(["meson", "introspect", build, "--buildoptions"]))}
    version = json.loads(run(["meson", "introspect", build, "--projectinfo"]))["version"]
    major, minor = version.split(".")[:2]
    soversion = f"0.{minor}" if major == "0" else major

    with tempfile.TemporaryDirectory(prefix="vae-autograd-install-") as tmp:
        tmp = Path(tmp)
        stage = tmp / "stage"
        run(["meson", "install", "-C", build, "--no-rebuild", "--quiet", "--destdir", stage])
        root = Path(str(stage) + options["prefix"])
        libdir = root / options["libdir"]
        includedir = root / options["includedir"] / "vae-autograd"

        # Every header of the library's folders, at the same relative path.
        headers = [p.relative_to(source) for f in LIBRARY_FOLDERS for p in (source / f).rglob("*.hpp")]
        missing = [str(h) for h in headers if not (includedir / h).is_file()]
        check(not missing, f"all {len(headers)} headers installed under {includedir.relative_to(stage)}"
              + (f" (missing: {', '.join(missing)})" if missing else ""))

        shared = libdir / f"libvae-autograd.so.{version}"
        check(shared.is_file() and (libdir / "libvae-autograd.a").is_file(),
              "libvae-autograd.so.VERSION and libvae-autograd.a installed")
        check(os.readlink(libdir / f"libvae-autograd.so.{soversion}") == shared.name
              and (libdir / "libvae-autograd.so").is_symlink(), "the soname and link-time symlinks")
        dynamic = run(["readelf", "-d", shared])
        check(f"[libvae-autograd.so.{soversion}]" in dynamic, f"SONAME is libvae-autograd.so.{soversion}")
        for tool in ["train_vae", "make_manifold_data"]:
            check(os.access(root / "bin" / tool, os.X_OK), f"bin/{tool} installed")

        env = dict(os.environ)
        env["PKG_CONFIG_PATH"] = str(libdir / "pkgconfig")
        env["PKG_CONFIG_SYSROOT_DIR"] = str(stage)
        env["LD_LIBRARY_PATH"] = str(libdir)
        env["CMAKE_PREFIX_PATH"] = str(root)

        # 1. pkg-config and a plain g++ line, one file.
        flags = run(["pkg-config", "--cflags", "--libs", "vae-autograd"], env=env).split()
        exe = tmp / "train_tiny_gxx"
        run(["g++", "-std=c++20", source / "examples/train_tiny/train_tiny.cpp", "-o", exe] + flags, env=env)
        check(str(shared.parent) in run(["ldd", exe], env=env), "the g++ program loads the installed shared library")
        run_example(exe, env)

        # 2. and 3. Each example's own meson.build (pkg-config) and CMakeLists.txt (find_package).
        for name in examples(source):
            project = tmp / "meson" / name
            shutil.copytree(source / "examples" / name, project)
            run(["meson", "setup", "--buildtype=plain", "--wrap-mode=nofallback", project / "build", project], env=env)
            run(["meson", "compile", "-C", project / "build"], env=env)
            run_example(project / "build" / name, env)

            project = tmp / "cmake" / name
            shutil.copytree(source / "examples" / name, project)
            run(["cmake", "-S", project, "-B", project / "build"], env=env)
            run(["cmake", "--build", project / "build"], env=env)
            run_example(project / "build" / name, env)

        # 4. The static target, with a program that also needs MPI where the library has it
        # (MpiCommunicator is referenced, not run: no MPI_Init here).
        with_mpi = "MpiCommunicator" in run(["nm", "-C", libdir / "libvae-autograd.a"])
        project = tmp / "cmake" / "static"
        project.mkdir(parents=True)
        shutil.copy(source / "examples/train_tiny/train_tiny.cpp", project / "train_tiny.cpp")
        (project / "uses_mpi.cpp").write_text(
            '#include "distributed/mpi_communicator.hpp"\n'
            "bool make_communicator(bool really) {\n"
            "  if (!really) return false;\n"
            "  distributed::MpiCommunicator world;\n"
            "  return world.size() > 0;\n"
            "}\n")
        (project / "CMakeLists.txt").write_text(
            "cmake_minimum_required(VERSION 3.18)\nproject(static_link CXX)\n"
            "find_package(VaeAutograd REQUIRED)\n"
            f"add_executable(train_tiny train_tiny.cpp {'uses_mpi.cpp' if with_mpi else ''})\n"
            "target_link_libraries(train_tiny PRIVATE VaeAutograd::vae-autograd-static)\n")
        run(["cmake", "-S", project, "-B", project / "build"], env=env)
        run(["cmake", "--build", project / "build"], env=env)
        check("libvae-autograd" not in run(["ldd", project / "build" / "train_tiny"], env=env),
              "the static target links the library into the program"
              + (" (with MPI, as the library was built)" if with_mpi else ""))
        run_example(project / "build" / "train_tiny", env)


def test_subproject(source):
    with tempfile.TemporaryDirectory(prefix="vae-autograd-subproject-") as tmp:
        project = Path(tmp) / "train_tiny"
        shutil.copytree(source / "examples/train_tiny", project)
        (project / "subprojects").mkdir()
        (project / "subprojects" / "vae-autograd").symlink_to(source.resolve())
        run(["meson", "setup", "--buildtype=plain", "--force-fallback-for=vae-autograd",
             project / "build", project])
        run(["meson", "compile", "-C", project / "build", "train_tiny"])
        run_example(project / "build" / "train_tiny")


def main():
    if len(sys.argv) == 4 and sys.argv[1] == "install":
        test_install(Path(sys.argv[2]), Path(sys.argv[3]))
    elif len(sys.argv) == 3 and sys.argv[1] == "subproject":
        test_subproject(Path(sys.argv[2]))
    else:
        sys.exit(__doc__)


if __name__ == "__main__":
    main()
