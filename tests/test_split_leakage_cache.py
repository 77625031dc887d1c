"""split_leakage's hash cache: hits, misses, staleness, atomic writes, where it may live; worker pool."""

from __future__ import annotations

import os
import shutil
import sqlite3
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import pytest

from auditor.testing import make_image
from auditor_plugins.split_leakage import collect as leak_collect
from auditor_plugins.split_leakage import hashing as leak_hashing
from auditor_plugins.split_leakage.cache import HashCache


def _data(root: Path) -> Path:
    for split, seed in (("train", 1), ("val", 2)):
        for name in ("cat", "dog"):
            for i in range(4):
                make_image(root / split / name / f"{i}.jpg", seed=seed * 100 + len(name) * 10 + i, size=48)
    manifest = root / "audit.yaml"
    manifest.write_text(
        "version: 1\ndata:\n  train: {format: image_folder, root: train}\n"
        "  val: {format: image_folder, root: val}\naudits:\n  split_leakage: {}\n"
    )
    return manifest


def _evidence(outcome: Any) -> dict[str, Any]:
    return next(a for a in outcome.report["audits"] if a["name"] == "split_leakage")["evidence"]


@pytest.fixture
def counted(monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """Every file whose bytes the audit reads (small jobs hash in-process)."""
    read: list[str] = []
    original = leak_hashing._read_and_decode

    def spy(path: str) -> Any:
        read.append(path)
        return original(path)

    monkeypatch.setattr(leak_hashing, "_read_and_decode", spy)
    return read


def test_second_run_on_unchanged_data_reads_no_image_bytes(
    tmp_path: Path, run_audit: Any, counted: list[str]
) -> None:
    manifest = _data(tmp_path)
    first = _evidence(run_audit(manifest, only=["split_leakage"]))
    assert len(counted) == 16 and first["files_hashed"] == 16 and first["cache_hits"] == 0
    counted.clear()
    second = _evidence(run_audit(manifest, only=["split_leakage"]))
    assert counted == []
    assert second["files_hashed"] == 0 and second["cache_hits"] == 16
    cache = tmp_path / ".auditor-cache"
    assert (cache / "CACHEDIR.TAG").read_text().startswith("Signature: 8a477f597d28d172789f06886806bc55")
    assert (cache / ".gitignore").read_text().splitlines()[-1] == "*"
    assert second["cache"] == str(cache.resolve())


def test_changed_file_is_rehashed_and_its_stale_entry_never_used(
    tmp_path: Path, run_audit: Any, counted: list[str]
) -> None:
    manifest = _data(tmp_path)
    run_audit(manifest, only=["split_leakage"])
    counted.clear()
    # Replace a val image by a copy of a training image: new size and mtime.
    target = tmp_path / "val/cat/0.jpg"
    shutil.copyfile(tmp_path / "train/dog/3.jpg", target)
    outcome = run_audit(manifest, only=["split_leakage"])
    assert [Path(p).name for p in counted] == ["0.jpg"]
    assert "SL001" in outcome.codes()  # the fresh hash was used, not the cached one
    # Same size, only the mtime differs: still a miss.
    counted.clear()
    stat = target.stat()
    os.utime(target, ns=(stat.st_atime_ns, stat.st_mtime_ns + 1_000_000_000))
    evidence = _evidence(run_audit(manifest, only=["split_leakage"]))
    assert len(counted) == 1 and evidence["cache_hits"] == 15


def test_entries_of_another_hash_version_are_ignored(tmp_path: Path) -> None:
    image = make_image(tmp_path / "data" / "a.jpg", seed=1, size=32)
    stat = image.stat()
    key = (str(image.resolve()), stat.st_size, stat.st_mtime_ns)
    old, _ = HashCache.open(tmp_path / "cache", version=1)
    assert old is not None
    old.store([(*key, b"d" * 16, 5, 6, bytes(64), None)])
    assert old.lookup([key])[0].phash == 5
    old.close()
    new, _ = HashCache.open(tmp_path / "cache", version=2)
    assert new is not None and new.lookup([key]) == {}
    new.close()


def test_unsigned_hashes_round_trip_through_sqlite(tmp_path: Path) -> None:
    cache, _ = HashCache.open(tmp_path, version=1)
    assert cache is not None
    key = ("/data/x.jpg", 10, 20)
    cache.store([(*key, b"\x00" * 16, 2**64 - 1, 2**63, b"t" * 64, None)])
    row = cache.lookup([key])[0]
    assert (row.phash, row.mirror, row.thumb) == (2**64 - 1, 2**63, b"t" * 64)
    cache.close()


def test_a_failed_write_leaves_no_half_written_rows(tmp_path: Path) -> None:
    cache, _ = HashCache.open(tmp_path, version=1)
    assert cache is not None
    good = ("/data/a.jpg", 1, 1, b"\x01" * 16, 1, 2, b"x" * 64, None)
    # The third row cannot be bound (a list is no SQLite value): the whole batch rolls back.
    broken = ("/data/c.jpg", 1, 1, b"\x03" * 16, 1, 2, ["not", "bytes"], None)
    cache.store([good, ("/data/b.jpg", *good[1:]), broken])
    assert cache.problem and "write failed" in cache.problem
    count = (
        sqlite3.connect(tmp_path / "split_leakage.sqlite")
        .execute("SELECT count(*) FROM file_hashes")
        .fetchone()
    )
    assert count == (0,)
    cache.close()


def test_a_corrupt_cache_file_is_replaced(tmp_path: Path, run_audit: Any) -> None:
    manifest = _data(tmp_path)
    cache = tmp_path / ".auditor-cache"
    cache.mkdir()
    (cache / "split_leakage.sqlite").write_bytes(b"this is not a database" * 100)
    outcome = run_audit(manifest, only=["split_leakage"])
    assert _evidence(outcome)["files_hashed"] == 16
    assert _evidence(run_audit(manifest, only=["split_leakage"]))["cache_hits"] == 16


def test_no_cache_neither_reads_nor_writes(tmp_path: Path, run_audit: Any, counted: list[str]) -> None:
    manifest = _data(tmp_path)
    run_audit(manifest, only=["split_leakage"])  # a cache exists...
    counted.clear()
    evidence = _evidence(run_audit(manifest, only=["split_leakage"], use_cache=False))
    assert len(counted) == 16 and evidence["cache_hits"] == 0  # ...and is not read
    assert evidence["cache"] == "disabled (--no-cache)"


def test_no_cache_folder_inside_a_data_folder(tmp_path: Path, run_audit: Any) -> None:
    # The manifest sits inside the image_folder root: its default cache folder would
    # be one more "class" folder of the data.
    for name in ("cat", "dog"):
        for i in range(3):
            make_image(tmp_path / name / f"{i}.jpg", seed=len(name) * 10 + i, size=32)
    manifest = tmp_path / "audit.yaml"
    manifest.write_text("version: 1\ndata:\n  train: {format: image_folder, root: .}\n")
    outcome = run_audit(manifest, only=["split_leakage"])
    evidence = _evidence(outcome)
    assert evidence["cache"].startswith("disabled: the cache folder")
    assert not (tmp_path / ".auditor-cache").exists()
    assert evidence["samples"] == 6


class _Recorder:
    def __init__(self) -> None:
        self.tasks: list[tuple[str, int | None, list[int]]] = []

    @contextmanager
    def task(self, description: str, total: int | None) -> Iterator[Any]:
        advances: list[int] = []
        self.tasks.append((description, total, advances))

        class Task:
            def advance(self, amount: int = 1) -> None:
                advances.append(amount)

        yield Task()


def test_worker_pool_hashes_in_chunks_and_advances_the_progress_bar(
    tmp_path: Path, run_audit: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    manifest = _data(tmp_path)
    shutil.copyfile(tmp_path / "train/cat/1.jpg", tmp_path / "val/cat/leak.jpg")
    monkeypatch.setattr(leak_collect, "_IN_PROCESS_BELOW", 0)
    monkeypatch.setattr(leak_collect, "_CHUNK", 5)
    progress = _Recorder()
    outcome = run_audit(manifest, only=["split_leakage"], progress=progress, use_cache=False)
    assert "SL001" in outcome.codes()
    ((description, total, advances),) = [t for t in progress.tasks if "hashing files" in t[0]]
    assert description == "split_leakage: hashing files" and total == 17
    assert sorted(advances) == [2, 5, 5, 5]
    assert _evidence(outcome)["workers"] >= 1
