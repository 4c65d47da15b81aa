"""docs/autograd.md against the program that produces its numbers (standard-library Python).

  check_walkthrough.py DOC WALKTHROUGH_EXE DOT_FILE

The program prints sections headed "## name". The document shows each one in a block

    <!-- walkthrough: name -->
    ```text
    ...the section, exactly...
    ```

and every section must be shown. Every inline code span of the document's prose that holds a
digit (`{6, 12}`, `%3`) must appear in the program's output, so a figure quoted in a sentence
goes stale no more than the blocks do. DOT_FILE (docs/images/vae-step.dot, the source of the
picture) must equal `WALKTHROUGH_EXE --vae-dot`; when Graphviz is installed it must render.
"""
import re
import shutil
import subprocess
import sys
from pathlib import Path

failures = []


def fail(message):
    failures.append(message)
    print("FAIL:", message)


def sections(output):
    result, name = {}, None
    for line in output.splitlines(keepends=True):
        if line.startswith("## "):
            name = line[3:].strip()
            result[name] = ""
        elif name is not None:
            result[name] += line
    return result


def main():
    if len(sys.argv) != 4:
        sys.exit(__doc__)
    doc_path, exe, dot_path = Path(sys.argv[1]), sys.argv[2], Path(sys.argv[3])
    doc = doc_path.read_text()
    output = subprocess.run([exe], capture_output=True, text=True, check=True).stdout
    printed = sections(output)
    if not printed:
        fail(f"{exe} printed no sections")

    shown = {m.group(1): m.group(2) for m in re.finditer(
        r"<!-- walkthrough: (\S+) -->\n```text\n(.*?)```", doc, re.S)}
    for name, text in printed.items():
        if name not in shown:
            fail(f"{doc_path}: section '{name}' of the program's output is not shown")
        elif shown[name] != text:
            fail(f"{doc_path}: section '{name}' differs from the program's output, which is now:\n{text}")
    for name in shown.keys() - printed.keys():
        fail(f"{doc_path}: shows a section '{name}' the program no longer prints")

    prose = re.sub(r"```.*?```", "", doc, flags=re.S)
    spans = set(re.findall(r"`([^`\n]*\d[^`\n]*)`", prose))
    stale = sorted(s for s in spans if s not in output)
    for span in stale:
        fail(f"{doc_path}: `{span}` is not in the program's output")
    print(f"{len(printed)} sections and {len(spans)} quoted figures checked")

    dot = subprocess.run([exe, "--vae-dot"], capture_output=True, text=True, check=True).stdout
    if dot_path.read_text() != dot:
        fail(f"{dot_path} differs from `walkthrough --vae-dot`; regenerate it and the picture "
             f"(see docs/autograd.md)")
    if shutil.which("dot"):
        png = subprocess.run(["dot", "-Tpng"], input=dot.encode(), capture_output=True)
        if png.returncode != 0 or not png.stdout.startswith(b"\x89PNG"):
            fail("dot -Tpng could not render the VAE step's graph: " + png.stderr.decode())
    else:
        print("graphviz not installed: rendering not checked")

    sys.exit(1 if failures else 0)


if __name__ == "__main__":
    main()
