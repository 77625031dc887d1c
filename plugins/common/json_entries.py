"""Cached results kept as one JSON file each, reused only while the key stored with them matches.

transform_parity's measurement cache and data_loading's result cache store their entries the
same way: a file ``{"key": ..., FIELD: ...}`` in a subfolder of the run's cache folder, written to
a unique temporary file and renamed into place, so a concurrent run or an interrupted write never
leaves a half-written entry that could be read back as a result.
"""

from __future__ import annotations

import json
import os
import tempfile
from collections.abc import Callable
from pathlib import Path
from typing import Any, TypeVar

from auditor_plugins.common.cache_folder import prepare_cache_dir

__all__ = ["read_entry", "write_entry"]

T = TypeVar("T")


def read_entry(path: Path, key: str, field: str, decode: Callable[[Any], T]) -> T | None:
    """``decode(stored[field])`` when ``path`` holds an entry under ``key``; ``None`` otherwise.

    A missing, damaged or foreign file (another key, another layout) is a miss: the caller
    computes the result again and its next write replaces the file.
    """
    try:
        stored = json.loads(path.read_text(encoding="utf-8"))
        if stored.get("key") != key:
            return None
        return decode(stored[field])
    except FileNotFoundError:
        return None
    except (OSError, ValueError, KeyError, TypeError, AttributeError):
        return None


def write_entry(cache_root: Path, path: Path, key: str, field: str, value: Any) -> None:
    """Store ``value`` under ``key`` at ``path`` (inside ``cache_root``); raises OSError when it cannot."""
    prepare_cache_dir(cache_root)
    path.parent.mkdir(exist_ok=True)
    text = json.dumps({"key": key, field: value})
    handle, temporary = tempfile.mkstemp(dir=path.parent, prefix=".tmp-", suffix=".json")
    try:
        with os.fdopen(handle, "w", encoding="utf-8") as out:
            out.write(text)
        os.replace(temporary, path)
    except BaseException:
        Path(temporary).unlink(missing_ok=True)
        raise
