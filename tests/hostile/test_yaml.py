"""Manifests that attack the parser: alias bombs and duplicate keys."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

from auditor._util.paths import display_path
from hostile._corpus import run, snapshot

BOMB = """version: 1
a: &a ["lol","lol","lol","lol","lol","lol","lol","lol","lol"]
b: &b [*a,*a,*a,*a,*a,*a,*a,*a,*a]
c: &c [*b,*b,*b,*b,*b,*b,*b,*b,*b]
d: &d [*c,*c,*c,*c,*c,*c,*c,*c,*c]
e: &e [*d,*d,*d,*d,*d,*d,*d,*d,*d]
f: &f [*e,*e,*e,*e,*e,*e,*e,*e,*e]
g: &g [*f,*f,*f,*f,*f,*f,*f,*f,*f]
h: &h [*g,*g,*g,*g,*g,*g,*g,*g,*g]
i: &i [*h,*h,*h,*h,*h,*h,*h,*h,*h]
data: {train: {format: image_folder, root: data}}
"""

#: Runs ``auditor validate`` under an address-space limit and prints the child's peak RSS in KiB.
_MEASURED = """
import resource, subprocess, sys
limit = int(sys.argv[1])
def cap():
    resource.setrlimit(resource.RLIMIT_AS, (limit, limit))
done = subprocess.run([sys.executable, "-m", "auditor", *sys.argv[2:]], preexec_fn=cap,
                      capture_output=True, text=True)
sys.stdout.write(done.stdout + done.stderr)
print(f"RC={done.returncode} RSS_KIB={resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss}")
"""


def _validate_measured(path: Path) -> tuple[int, int, str]:
    done = subprocess.run(
        [sys.executable, "-c", _MEASURED, str(2 << 30), "validate", str(path)],
        check=False,
        capture_output=True,
        text=True,
        timeout=120,
        env={**os.environ, "COLUMNS": "200", "NO_COLOR": "1"},
    )
    tail = done.stdout.strip().splitlines()[-1]
    rc, rss = (int(part.split("=")[1]) for part in tail.split())
    return rc, rss, done.stdout


def test_alias_bomb_is_refused_within_a_small_memory_bound(tmp_path: Path) -> None:
    plain = tmp_path / "plain" / "audit.yaml"
    plain.parent.mkdir()
    plain.write_text("version: 1\ndata: {train: {format: image_folder, root: data}}\n", encoding="utf-8")
    bomb = tmp_path / "bomb" / "audit.yaml"
    bomb.parent.mkdir()
    bomb.write_text(BOMB, encoding="utf-8")
    before = snapshot(tmp_path)
    _, baseline, _ = _validate_measured(plain)
    rc, peak, output = _validate_measured(bomb)
    assert rc == 2, output
    assert "expand to more than 100000" in output and "alias bomb" in output, output
    assert "Traceback" not in output
    # Expanding it would take about 10**9 values (tens of GB); refusing it costs what validating
    # a plain manifest costs. 64 MiB of slack covers allocator noise, not an expansion.
    assert peak < baseline + 64 * 1024, (peak, baseline)
    assert snapshot(tmp_path) == before


def test_duplicate_keys_are_a_manifest_error_naming_both_lines(tmp_path: Path) -> None:
    path = tmp_path / "audit.yaml"
    path.write_text(
        "version: 1\n"
        "data:\n"
        "  train: {format: image_folder, root: a}\n"
        "  val: {format: image_folder, root: b}\n"
        "  train: {format: image_folder, root: c}\n"
        "fail_on: error\n"
        "fail_on: warning\n",
        encoding="utf-8",
    )
    before = snapshot(tmp_path)
    done = run("validate", path)
    assert done.returncode == 2
    shown = display_path(path)  # relative to the working folder when shorter; the CLI runs in ours
    assert (
        f"{shown}:5: data.train: expected each key once in a mapping, found it twice, on lines 3 and 5"
        in done.stderr
    ), done.stderr
    assert (
        f"{shown}:7: fail_on: expected each key once in a mapping, found it twice, on lines 6 and 7"
        in done.stderr
    )
    assert snapshot(tmp_path) == before


def test_merge_keys_and_plain_aliases_still_load(tmp_path: Path) -> None:
    from auditor.manifest._yaml import load_with_lines

    data, lines = load_with_lines(
        "base: &b {format: image_folder, root: a}\ndata:\n  train: {<<: *b, root: x}\n  val: *b\n"
    )
    assert data["data"]["train"] == {"format": "image_folder", "root": "x"}
    assert data["data"]["val"] == {"format": "image_folder", "root": "a"}
    assert lines.line("data.val") == 4
