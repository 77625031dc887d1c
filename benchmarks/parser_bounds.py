"""Big and looping inputs against the CLI: wall time, peak memory and exit code of each case.

The cases of issue 23 that cost time or memory before there were bounds: a 100 MB manifest of
comments, a 9.5 MB manifest of one unknown key holding 800,000 strings, YAML nested 5,000
levels, a report nested 100,000 levels, a 1 GiB sparse CSV, and a class folder with two
links to itself. Each runs as ``python -m auditor ...`` in a child capped by ``--limit-gib`` of
address space and ``--timeout`` seconds (so an unbounded case cannot take the machine down:
it shows as ``killed`` or ``timeout``); peak memory is the child's maximum RSS.

Compare a checkout before and after with ``--python``:

    python benchmarks/parser_bounds.py --python /work/main/.venv/bin/python   # before
    python benchmarks/parser_bounds.py                                         # after

Numbers are noisy on a loaded machine (say so when quoting them).
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

_CHILD = """
import resource, subprocess, sys, time
limit, timeout = int(sys.argv[1]), float(sys.argv[2])
def cap():
    resource.setrlimit(resource.RLIMIT_AS, (limit, limit))
started = time.perf_counter()
try:
    done = subprocess.run(sys.argv[3:], preexec_fn=cap, capture_output=True, text=True, timeout=timeout)
    code, out = done.returncode, done.stdout + done.stderr
except subprocess.TimeoutExpired as exc:
    code, out = "timeout", ""
print(f"RC={code} S={time.perf_counter() - started:.2f} RSS={resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss}")
print(out[-300:].replace(chr(10), " | "))
"""


def _manifest_comments(root: Path) -> list[str]:
    path = root / "comments.yaml"
    with path.open("w", encoding="utf-8") as out:
        out.write("version: 1\ndata: {train: {format: image_folder, root: data}}\n")
        out.write(("# " + "c" * 97 + "\n") * 1_000_000)
    return ["validate", str(path)]


def _manifest_strings(root: Path) -> list[str]:
    path = root / "strings.yaml"
    path.write_text(
        "version: 1\nunknown_key:\n" + "".join(f"  - s{i}\n" for i in range(800_000)), encoding="utf-8"
    )
    return ["validate", str(path)]


def _manifest_deep(root: Path) -> list[str]:
    path = root / "deep.yaml"
    path.write_text("version: 1\nx: " + "[" * 5000 + "]" * 5000 + "\n", encoding="utf-8")
    return ["validate", str(path)]


def _report_deep(root: Path) -> list[str]:
    path = root / "deep.json"
    path.write_text('{"schema_version": "1.0", "x": ' + "[" * 100_000 + "]" * 100_000 + "}", encoding="utf-8")
    return ["report", str(path), "--format", "markdown", "--output-dir", str(root / "out")]


def _sparse_csv(root: Path) -> list[str]:
    with (root / "sparse.csv").open("wb") as out:
        out.truncate(1 << 30)
    path = root / "csv.yaml"
    path.write_text("version: 1\ndata: {train: {format: csv, path: sparse.csv}}\n", encoding="utf-8")
    return ["run", str(path), "--only", "data_loading", "--no-cache", "--output-dir", str(root / "out")]


def _link_loop(root: Path) -> list[str]:
    from PIL import Image

    for name in ("cat", "dog"):
        folder = root / "loop" / "train" / name
        folder.mkdir(parents=True)
        for index in range(3):
            Image.new("RGB", (16, 16), (index * 60, 0, 0)).save(folder / f"{index}.png")
    os.symlink(".", root / "loop" / "train" / "cat" / "a")
    os.symlink(".", root / "loop" / "train" / "cat" / "b")
    path = root / "loop" / "audit.yaml"
    path.write_text("version: 1\ndata: {train: {format: image_folder, root: train}}\n", encoding="utf-8")
    return ["run", str(path), "--only", "data_loading", "--no-cache", "--output-dir", str(root / "out")]


CASES: list[tuple[str, Callable[[Path], list[str]]]] = [
    ("manifest: 100 MB of comments", _manifest_comments),
    ("manifest: unknown key, 800k strings", _manifest_strings),
    ("manifest: YAML nested 5,000 deep", _manifest_deep),
    ("report: JSON nested 100,000 deep", _report_deep),
    ("table: 1 GiB sparse CSV", _sparse_csv),
    ("image folder: two self-links", _link_loop),
]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--python", default=sys.executable, help="interpreter of the checkout to measure")
    parser.add_argument("--timeout", type=float, default=120.0, help="seconds per case")
    parser.add_argument("--limit-gib", type=float, default=4.0, help="address-space cap per case")
    parser.add_argument("--only", default="", help="run the cases whose name contains this text")
    args = parser.parse_args()
    limit = int(args.limit_gib * (1 << 30))
    print(f"interpreter {args.python}; cap {args.limit_gib} GiB address space, {args.timeout:.0f} s per case")
    print(f"{'case':<38} {'exit':>7} {'seconds':>8} {'peak MiB':>9}  output (tail)")
    for name, build in CASES:
        if args.only and args.only not in name:
            continue
        with tempfile.TemporaryDirectory(prefix="parser-bounds-") as folder:
            root = Path(folder)
            command = [args.python, "-m", "auditor", *build(root)]
            started = time.perf_counter()
            done = subprocess.run(
                [sys.executable, "-c", _CHILD, str(limit), str(args.timeout), *command],
                capture_output=True,
                text=True,
                cwd=root,
                env={**os.environ, "COLUMNS": "200", "NO_COLOR": "1"},
                check=False,
            )
            lines = done.stdout.splitlines() or [f"RC=? S={time.perf_counter() - started:.2f} RSS=0", ""]
            fields = dict(part.split("=", 1) for part in lines[0].split())
            code = fields["RC"]
            if code.lstrip("-").isdigit() and int(code) < 0:
                code = f"sig{-int(code)}"
            tail = lines[1] if len(lines) > 1 else ""
            print(
                f"{name:<38} {code:>7} {float(fields['S']):>8.2f} {int(fields['RSS']) / 1024:>9.0f}  {tail[:110]}"
            )


if __name__ == "__main__":
    main()
