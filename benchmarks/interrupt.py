"""Ctrl-C during parallel hashing: how long auditor takes to exit, and what it keeps.

    .venv/bin/python benchmarks/interrupt.py [FILES]

Writes FILES images (default 3040) under benchmarks/.data/interrupt, starts
``auditor run --only split_leakage`` on them with a cold cache, sends SIGINT to
the process group once hashing has run for 1.5 s (as a terminal's Ctrl-C does),
and prints the seconds from SIGINT to exit, the cache rows kept and the worker
processes still alive 2 s later. Then the same with SIGINT to the parent alone
(``kill -INT PID``) and with SIGKILL of the parent alone.
"""

from __future__ import annotations

import os
import shutil
import signal
import sqlite3
import subprocess
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "tests"))
from _common import DATA
from conftest import make_image_folder, write_manifest
from hostile._corpus import child_pids


def _alive(pids: set[int]) -> set[int]:
    alive = set()
    for pid in pids:
        try:
            if Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0] != "Z":
                alive.add(pid)
        except OSError:
            pass
    return alive


def _project(files: int) -> Path:
    root = DATA / "interrupt"
    if not (root / f"done-{files}-320px").exists():
        shutil.rmtree(root, ignore_errors=True)
        make_image_folder(root / "data" / "train", {"a": files // 2, "b": files - files // 2}, size=320)
        make_image_folder(root / "data" / "val", {"a": 8}, size=128, seed=9)
        (root / f"done-{files}-320px").touch()
    return write_manifest(
        root,
        {
            "version": 1,
            "data": {
                "train": {"format": "image_folder", "root": "data/train"},
                "val": {"format": "image_folder", "root": "data/val"},
            },
            "audits": {"split_leakage": {"workers": 2}},
        },
    )


def _once(manifest: Path, sig: signal.Signals, *, group: bool) -> None:
    shutil.rmtree(manifest.parent / ".auditor-cache", ignore_errors=True)
    process = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "auditor",
            "run",
            str(manifest),
            "--quiet",
            "--output-dir",
            str(manifest.parent / "out"),
        ],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        text=True,
        start_new_session=True,
    )
    workers: set[int] = set()
    while len(workers) < 2 and process.poll() is None:
        workers = child_pids(process.pid)
        time.sleep(0.02)
    time.sleep(1.5)
    sent = time.perf_counter()
    if group:
        os.killpg(process.pid, sig)  # the whole group, as a terminal's Ctrl-C does
    else:
        process.send_signal(sig)  # the parent alone (kill PID)
    process.wait()
    exit_s = time.perf_counter() - sent
    time.sleep(2.0)
    survivors = _alive(workers)
    database = manifest.parent / ".auditor-cache" / "split_leakage.sqlite"
    kept = 0
    if database.exists():
        with sqlite3.connect(database) as connection:
            kept = connection.execute("SELECT COUNT(*) FROM file_hashes").fetchone()[0]
    for pid in survivors:  # orphans of an auditor without the fix: do not leave them running
        os.kill(pid, signal.SIGKILL)
    print(
        f"{sig.name} to the {'process group' if group else 'parent only'}: exit after {exit_s:.2f} s (code {process.returncode}), {kept} hashes kept in the cache, "
        f"{len(survivors)} of {len(workers)} workers alive 2 s later"
    )


def main() -> None:
    files = int(sys.argv[1]) if len(sys.argv) > 1 else 3040
    manifest = _project(files)
    print(f"{files} files, 2 workers")
    _once(manifest, signal.SIGINT, group=True)
    _once(manifest, signal.SIGINT, group=False)
    _once(manifest, signal.SIGKILL, group=False)


if __name__ == "__main__":
    main()
