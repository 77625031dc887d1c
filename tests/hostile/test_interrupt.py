"""Ctrl-C and SIGKILL during parallel hashing: stop now, keep what is done, leave no worker behind."""

from __future__ import annotations

import os
import signal
import sqlite3
import subprocess
import sys
import time
from pathlib import Path

from auditor.testing import make_image_folder, write_manifest
from hostile._corpus import child_pids, snapshot

#: Enough files that hashing runs in worker processes (400 and more) and lasts well past the first chunks:
#: the interrupt comes after 1 s of worker CPU, which includes each worker's imports, so at 2,000 files and
#: 0.3 s it sometimes came before any chunk had finished (kept == 0, about 1 run in 10).
FILES = 6000


def _alive(pid: int) -> bool:
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except OSError:
        return False
    return state != "Z"


def _start(tmp_path: Path) -> tuple[subprocess.Popen[str], Path, set[int]]:
    root = tmp_path / "p"
    make_image_folder(root / "data" / "train", {"a": FILES // 2}, size=256)
    make_image_folder(root / "data" / "val", {"a": FILES // 2}, size=256, seed=5)
    path = write_manifest(
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
    env = {**os.environ, "COLUMNS": "200", "NO_COLOR": "1", "PYTHONDONTWRITEBYTECODE": "1"}
    process = subprocess.Popen(
        [sys.executable, "-m", "auditor", "run", str(path), "--output-dir", str(root / "out")],
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    workers: set[int] = set()
    deadline = time.monotonic() + 120  # a hang guard, not a speed requirement
    while len(workers) < 2 and time.monotonic() < deadline and process.poll() is None:
        # The audits run in auditor's worker process (a child); the hashing pool is its children.
        workers = {pid for child in child_pids(process.pid) for pid in child_pids(child)}
        time.sleep(0.05)
    assert len(workers) >= 2, "hashing never started its worker processes"
    # Let a few chunks finish: measured in the workers' CPU time, which load does not stretch.
    while _cpu_s(workers) < 1.0 and time.monotonic() < deadline and process.poll() is None:
        time.sleep(0.02)
    assert process.poll() is None, "hashing finished before it could be interrupted"
    return process, root, workers


def _cpu_s(pids: set[int]) -> float:
    ticks = 0
    for pid in pids:
        try:
            fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        ticks += int(fields[11]) + int(fields[12])  # utime + stime
    return ticks / os.sysconf("SC_CLK_TCK")


def _gone(pids: set[int], within: float = 30.0) -> set[int]:
    deadline = time.monotonic() + within
    while time.monotonic() < deadline and any(_alive(p) for p in pids):
        time.sleep(0.1)
    return {p for p in pids if _alive(p)}


def test_ctrl_c_cancels_queued_work_keeps_finished_hashes_and_ends_the_workers(tmp_path: Path) -> None:
    process, root, workers = _start(tmp_path)
    before = snapshot(root, outside=root / ".auditor-cache")
    # A terminal's Ctrl-C reaches the foreground group: the run's own process. auditor's worker (and
    # the hashing pool under it) has a session of its own; the run passes the interrupt on to it.
    os.kill(process.pid, signal.SIGINT)
    out, err = process.communicate(timeout=30)
    assert process.returncode == 130, out + err
    assert "interrupted" in err and "Traceback" not in err, err
    assert _gone(workers) == set()
    database = root / ".auditor-cache" / "split_leakage.sqlite"
    with sqlite3.connect(database) as connection:
        assert connection.execute("PRAGMA integrity_check").fetchone()[0] == "ok"
        kept = connection.execute("SELECT COUNT(*) FROM file_hashes").fetchone()[0]
    assert 0 < kept < FILES, kept  # finished chunks kept; the queue was not worked off
    assert snapshot(root, outside=root / ".auditor-cache") == before


def test_workers_do_not_outlive_a_killed_parent(tmp_path: Path) -> None:
    process, _, workers = _start(tmp_path)
    process.kill()
    process.communicate(timeout=30)
    assert _gone(workers) == set()
