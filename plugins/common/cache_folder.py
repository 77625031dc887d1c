"""Where built-in audits may keep caches: the run's cache folder, unless that is inside a data folder.

The folder is created with a ``CACHEDIR.TAG`` (backup tools skip it) and a
``.gitignore`` of ``*`` (nothing in it belongs in a commit).

Shared by split_leakage (hash cache) and transform_parity (measurement cache), so
both refuse the same folders for the same reason: auditor never writes into a
user's data (an image_folder root would even see the cache folder as one more class).
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

__all__ = ["cache_folder", "data_folders", "prepare_cache_dir"]

_CACHEDIR_TAG = (
    "Signature: 8a477f597d28d172789f06886806bc55\n"
    "# This file is a cache directory tag created by auditor.\n"
    "# For information about cache directory tags see https://bford.info/cachedir/\n"
)


def data_folders(splits: dict[str, Any]) -> dict[str, str]:
    """Resolved folders holding data (image_folder roots, folders of listed files) -> split."""
    folders: dict[str, str] = {}
    for name, split in splits.items():
        if getattr(split, "root_url", None):
            continue  # data behind a URL (s3://...): no local folder to protect
        root = getattr(split, "root", None)
        if root is not None and split.spec.config.get("format") == "image_folder":
            # Every file of an image folder lies below its root: no need to visit each one.
            folders.setdefault(os.path.realpath(root), name)
            continue
        for parent in {os.path.dirname(p) for p in (split.path_strings() or []) if "://" not in p}:
            folders.setdefault(os.path.realpath(parent), name)
    return folders


def cache_folder(ctx: Any) -> tuple[Path | None, str]:
    """The cache folder, or ``(None, reason)`` when it must not be used."""
    if not ctx.run.use_cache:
        return None, "disabled (--no-cache)"
    folder = Path(ctx.run.cache_dir).resolve()
    for data, split in data_folders(ctx.splits).items():
        if folder == Path(data) or Path(data) in folder.parents:
            return None, (
                f"disabled: the cache folder {folder} would be inside {data}, a data folder of '{split}'"
            )
    return folder, str(folder)


def prepare_cache_dir(folder: Path) -> None:
    """Create the cache folder with its CACHEDIR.TAG and a .gitignore that ignores all."""
    folder.mkdir(parents=True, exist_ok=True)
    tag = folder / "CACHEDIR.TAG"
    if not tag.exists():
        tag.write_text(_CACHEDIR_TAG, encoding="utf-8")
    ignore = folder / ".gitignore"
    if not ignore.exists():
        ignore.write_text("# created by auditor: nothing in this cache belongs in git\n*\n", encoding="utf-8")
