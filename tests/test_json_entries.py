"""Cached JSON entries (plugins/common/json_entries.py): a hit only under the same key; anything else a miss."""

from __future__ import annotations

from pathlib import Path

import pytest

from auditor_plugins.common.json_entries import read_entry, write_entry


def test_an_entry_is_read_back_only_under_its_key(tmp_path: Path) -> None:
    path = tmp_path / "cache" / "audit" / "a.json"
    write_entry(tmp_path / "cache", path, "k1", "result", {"n": 3})
    assert read_entry(path, "k1", "result", dict) == {"n": 3}
    assert read_entry(path, "k2", "result", dict) is None
    assert read_entry(path, "k1", "other", dict) is None
    assert [p.name for p in path.parent.iterdir()] == ["a.json"]  # no temporary left behind
    assert (tmp_path / "cache" / "CACHEDIR.TAG").is_file()


@pytest.mark.parametrize(
    "content", ["", "not json", "[1, 2]", '"text"', '{"key": "k1"}', '{"key": "k1", "result": 5}']
)
def test_damaged_or_foreign_files_are_misses(tmp_path: Path, content: str) -> None:
    path = tmp_path / "a.json"
    path.write_text(content, encoding="utf-8")
    assert read_entry(path, "k1", "result", lambda stored: stored["n"]) is None


def test_a_write_that_cannot_happen_raises_and_leaves_no_temporary(tmp_path: Path) -> None:
    root = tmp_path / "cache"
    path = root / "audit" / "a.json"
    path.mkdir(parents=True)  # a folder where the file should go: the rename fails
    with pytest.raises(OSError):
        write_entry(root, path, "k1", "result", {"n": 1})
    assert [p.name for p in path.parent.iterdir()] == ["a.json"]
