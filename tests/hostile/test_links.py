"""Nothing is written through a link: planted symlinks in the cache and output folders (issue 23 item 2).

Each case plants its links in a temporary project, hashes every file the links point at, runs the
real CLI in a subprocess and checks the exit code, the words and that no file outside the cache
and output folders was created or changed.
"""

from __future__ import annotations

import hashlib
import os
import sqlite3
from pathlib import Path

import pytest

from auditor.testing import make_image_folder, write_manifest
from hostile._corpus import run, snapshot


def _sha(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def _data_project(root: Path) -> Path:
    """A project of one image-folder split and no model: data audits only, a few seconds a run."""
    make_image_folder(root / "data" / "train", {"cat": 3, "dog": 3}, size=16)
    return write_manifest(
        root / "audit.yaml",
        {"version": 1, "data": {"train": {"format": "image_folder", "root": "data/train"}}},
    )


def _user_database(path: Path) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    connection = sqlite3.connect(path)
    connection.execute("CREATE TABLE precious (x)")
    connection.execute("INSERT INTO precious VALUES (42)")
    connection.commit()
    connection.close()
    return path


def test_planted_cache_links_are_refused_and_the_run_goes_on_uncached(tmp_path: Path) -> None:
    project = tmp_path / "project"
    manifest = _data_project(project)
    user = tmp_path / "user"
    database = _user_database(user / "mine.sqlite")
    victim_report = user / "victim.json"
    victim_report.write_text('{"mine": true}\n', encoding="utf-8")
    cache = project / ".auditor-cache"
    cache.mkdir()
    (cache / "split_leakage.sqlite").symlink_to(database)
    (cache / "CACHEDIR.TAG").symlink_to(user / "planted-tag")  # dangling
    (cache / ".gitignore").symlink_to(user / "planted-gitignore")  # dangling
    (project / "reports").mkdir()
    (project / "reports" / "report.json").symlink_to(victim_report)
    digest = _sha(database)
    before = snapshot(user)

    done = run("run", manifest, "--only", "split_leakage,data_loading", cwd=project)

    assert done.exit_code == 0, done.output
    assert "warning: cache skipped, running uncached" in done.stdout, done.stdout
    assert "CACHEDIR.TAG is a symbolic link" in done.stdout
    assert "Traceback" not in done.output
    assert _sha(database) == digest
    assert snapshot(user) == before  # no tag, no .gitignore created there, the victim untouched
    # The report replaced the planted link with a real file; the link's target kept its content.
    assert not (project / "reports" / "report.json").is_symlink()
    assert done.report["exit_code"] == 0

    # The folder now tagged for real: the database link alone is refused by the hash cache,
    # and the json caches (their own sub-folders) still work.
    (cache / "CACHEDIR.TAG").unlink()
    (cache / ".gitignore").unlink()
    (cache / "data_loading").mkdir(mode=0o700)
    again = run("run", manifest, "--only", "split_leakage,data_loading", cwd=project)
    assert again.exit_code == 0, again.output
    assert "warning: hash cache skipped, hashing uncached" in again.stdout, again.stdout
    assert "split_leakage.sqlite is a symbolic link" in again.stdout
    assert _sha(database) == digest
    assert snapshot(user) == before
    assert (cache / "CACHEDIR.TAG").is_file() and not (cache / "CACHEDIR.TAG").is_symlink()
    assert any((cache / "data_loading").iterdir())  # the result cache was written, in its own folder


def test_a_symlinked_cache_folder_is_never_written_into(tmp_path: Path) -> None:
    project = tmp_path / "project"
    manifest = _data_project(project)
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    (project / ".auditor-cache").symlink_to(elsewhere)

    done = run("run", manifest, "--only", "split_leakage,data_loading", cwd=project)

    assert done.exit_code == 0, done.output
    assert ".auditor-cache is a symbolic link" in done.stdout, done.stdout
    assert list(elsewhere.iterdir()) == []


def test_a_symlinked_output_folder_is_refused_before_the_run(tmp_path: Path) -> None:
    project = tmp_path / "project"
    manifest = _data_project(project)
    other = tmp_path / "other" / "reports"
    other.mkdir(parents=True)
    (other / "report.json").write_text('{"other project": 1}\n', encoding="utf-8")
    (project / "reports").symlink_to(other)
    before = snapshot(tmp_path / "other")

    done = run("run", manifest, cwd=project)

    assert done.exit_code == 2, done.output
    assert "the output folder" in done.stderr and "is a symbolic link" in done.stderr, done.stderr
    assert f"pass --output-dir {other}" in done.stderr
    assert "Traceback" not in done.output
    assert snapshot(tmp_path / "other") == before
    assert not (project / ".auditor-cache").exists()  # refused before any audit ran

    # The way out the message names: the real folder, given on purpose, is written.
    chosen = run("run", manifest, "--only", "data_loading", "--output-dir", other, cwd=project)
    assert chosen.exit_code == 0, chosen.output
    assert '"other project"' not in (other / "report.json").read_text(encoding="utf-8")


def test_json_entries_never_read_or_write_through_links(tmp_path: Path) -> None:
    from auditor_plugins.common.json_entries import read_entry, write_entry
    from auditor_plugins.common.safe_files import UnsafeCache

    root = tmp_path / "cache"
    write_entry(root, root / "audit" / "first.json", "k", "result", 1)  # a real folder, tagged
    outside = tmp_path / "outside.json"
    outside.write_text('{"key": "k", "result": 99}', encoding="utf-8")
    digest = _sha(outside)
    entry = root / "audit" / "linked.json"
    entry.symlink_to(outside)

    assert read_entry(entry, "k", "result", int) is None  # a linked entry is a miss, never read
    with pytest.raises(UnsafeCache, match="is a symbolic link"):
        write_entry(root, entry, "k", "result", 5)
    assert _sha(outside) == digest
    # A hard link to a file of the user's is refused too: writing it would change that file.
    hard = root / "audit" / "hard.json"
    os.link(outside, hard)
    with pytest.raises(UnsafeCache, match="hard links"):
        write_entry(root, hard, "k", "result", 5)
    assert _sha(outside) == digest
    # A sub-folder planted as a link to a user folder: nothing is created in it.
    folder = tmp_path / "user-folder"
    folder.mkdir()
    (root / "linked-audit").symlink_to(folder)
    with pytest.raises(UnsafeCache):
        write_entry(root, root / "linked-audit" / "a.json", "k", "result", 5)
    assert list(folder.iterdir()) == []
    assert sorted(p.name for p in (root / "audit").iterdir()) == ["first.json", "hard.json", "linked.json"]


@pytest.mark.parametrize("suffix", ["", "-wal", "-shm", "-journal"])
def test_the_hash_cache_refuses_a_linked_database_or_companion(tmp_path: Path, suffix: str) -> None:
    from auditor_plugins.split_leakage.cache import HashCache

    database = _user_database(tmp_path / "user" / "mine.sqlite")
    digest = _sha(database)
    folder = tmp_path / "cache"
    folder.mkdir()
    (folder / f"split_leakage.sqlite{suffix}").symlink_to(database)

    cache, problem = HashCache.open(folder, 1)

    assert cache is None
    assert problem is not None and "hashing uncached" in problem and "symbolic link" in problem, problem
    assert _sha(database) == digest
    assert sorted(p.name for p in (tmp_path / "user").iterdir()) == ["mine.sqlite"]


def test_a_dangling_tag_link_creates_nothing_at_its_target(tmp_path: Path) -> None:
    from auditor_plugins.common.cache_folder import prepare_cache_dir
    from auditor_plugins.common.safe_files import UnsafeCache

    folder = tmp_path / "cache"
    folder.mkdir()
    (folder / "CACHEDIR.TAG").symlink_to(tmp_path / "planted")
    with pytest.raises(UnsafeCache, match=r"CACHEDIR\.TAG is a symbolic link"):
        prepare_cache_dir(folder)
    assert not (tmp_path / "planted").exists()
    # A fresh cache folder is private and tagged.
    fresh = tmp_path / "fresh"
    prepare_cache_dir(fresh).close()
    assert (fresh.stat().st_mode & 0o777) == 0o700
    assert (fresh / "CACHEDIR.TAG").read_text(encoding="utf-8").startswith("Signature: 8a477f597d28d1")
