"""Cached results kept as one JSON file each, reused only while the key stored with them matches.

transform_parity's measurement cache and data_loading's result cache store their entries the
same way: a file ``{"key": ..., FIELD: ...}`` in a subfolder of the run's cache folder, written to
a unique temporary file and renamed into place, so a concurrent run or an interrupted write never
leaves a half-written entry that could be read back as a result.

Every step goes through :class:`~auditor_plugins.common.safe_files.CacheDir`: the folder, the
subfolder and the entry are opened without following links, so a planted symlink is a refused
write (:class:`UnsafeCache`, an OSError the caller notes) and a miss on read, never a file
changed outside the cache.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path
from typing import Any, TypeVar

from auditor_plugins.common.cache_folder import prepare_cache_dir
from auditor_plugins.common.safe_files import CacheDir

__all__ = ["read_entry", "write_entry"]

T = TypeVar("T")


def read_entry(path: Path, key: str, field: str, decode: Callable[[Any], T]) -> T | None:
    """``decode(stored[field])`` when ``path`` (``CACHE/SUBFOLDER/NAME``) holds an entry under ``key``.

    A missing, damaged, linked or foreign file (another key, another layout) is a miss
    (``None``): the caller computes the result again and its next write replaces the file.
    """
    try:
        with CacheDir.open(path.parent.parent, create=False) as root:
            folder = root.child(path.parent.name)
            if folder is None:
                return None
            with folder:
                data = folder.read_bytes(path.name)
        if data is None:
            return None
        stored = json.loads(data.decode("utf-8"))
        if stored.get("key") != key:
            return None
        return decode(stored[field])
    except (OSError, ValueError, KeyError, TypeError, AttributeError, RecursionError):
        return None


def write_entry(cache_root: Path, path: Path, key: str, field: str, value: Any) -> None:
    """Store ``value`` under ``key`` at ``path`` (in a subfolder of ``cache_root``); raises OSError when it cannot."""
    text = json.dumps({"key": key, field: value})
    with prepare_cache_dir(cache_root) as root, root.subdir(path.parent.name) as folder:
        folder.replace(path.name, text.encode("utf-8"))
