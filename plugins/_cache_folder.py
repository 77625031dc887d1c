"""Where built-in audits may keep caches: the run's cache folder, unless that is inside a data folder.

Shared by split_leakage (hash cache) and transform_parity (measurement cache), so
both refuse the same folders for the same reason: auditor never writes into a
user's data (an image_folder root would even see the cache folder as one more class).
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

__all__ = ["cache_folder", "data_folders"]


def data_folders(splits: dict[str, Any]) -> dict[str, str]:
    """Resolved folders holding data (image_folder roots, folders of listed files) -> split."""
    folders: dict[str, str] = {}
    for name, split in splits.items():
        root = getattr(split, "root", None)
        if root is not None and split.spec.config.get("format") == "image_folder":
            # Every file of an image folder lies below its root: no need to visit each one.
            folders.setdefault(os.path.realpath(root), name)
            continue
        for parent in {os.path.dirname(p) for p in (split.path_strings() or [])}:
            folders.setdefault(os.path.realpath(parent), name)
    return folders


def cache_folder(ctx: Any) -> tuple[Path | None, str]:
    """The cache folder, or ``(None, reason)`` when it must not be used."""
    if not ctx.run.use_cache:
        return None, "disabled (--no-cache)"
    folder = Path(ctx.run.cache_dir).resolve()
    for data, split in data_folders(ctx.splits).items():
        if folder == Path(data) or Path(data) in folder.parents:
            return None, (f"disabled: the cache folder {folder} would be inside {data}, "
                          f"a data folder of '{split}'")
    return folder, str(folder)
