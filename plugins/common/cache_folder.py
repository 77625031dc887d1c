"""Where built-in audits may keep caches: the run's cache folder, unless that is inside a data folder.

The folder is created with a ``CACHEDIR.TAG`` (backup tools skip it) and a
``.gitignore`` of ``*`` (nothing in it belongs in a commit).

Shared by split_leakage (hash cache), transform_parity (measurement cache) and data_loading
(result cache), so all refuse the same folders for the same reasons: auditor never writes into a
user's data (an image_folder root would even see the cache folder as one more class), and never
writes through a link (:mod:`.safe_files`): a cache folder, tag or entry that is a symlink is
refused, the audit notes why and runs uncached.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

from auditor_plugins.common.safe_files import CacheDir, UnsafeCache

__all__ = ["UnsafeCache", "cache_folder", "data_folders", "open_cache_dir", "prepare_cache_dir"]

_CACHEDIR_TAG = (
    "Signature: 8a477f597d28d172789f06886806bc55\n"
    "# This file is a cache directory tag created by auditor.\n"
    "# For information about cache directory tags see https://bford.info/cachedir/\n"
)
_GITIGNORE = "# created by auditor: nothing in this cache belongs in git\n*\n"


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
    """The cache folder, or ``(None, reason)`` when it must not be used.

    The folder is created and tagged here, so an unsafe one (a symlink, a planted link as its
    tag) is refused before any audit writes a byte: the audit notes a warning and the reason
    starts with ``skipped``.
    """
    if not ctx.run.use_cache:
        return None, "disabled (--no-cache)"
    given = Path(os.path.abspath(ctx.run.cache_dir))
    # The folder itself is checked as written (a link there is refused); its parents resolved.
    folder = Path(os.path.realpath(given.parent)) / given.name
    for data, split in data_folders(ctx.splits).items():
        if folder == Path(data) or Path(data) in folder.parents:
            return None, (
                f"disabled: the cache folder {folder} would be inside {data}, a data folder of '{split}'"
            )
    try:
        prepare_cache_dir(folder).close()
    except OSError as exc:
        reason = f"skipped, running uncached: cannot use the cache folder ({_reason(exc)})"
        # Each audit that would have used the cache says so: the run goes on, slower, not silently.
        ctx.note(f"warning: cache {reason}")
        return None, reason
    return folder, str(folder)


def open_cache_dir(folder: Path) -> CacheDir:
    """The cache folder, created and tagged, opened without following links; raises OSError."""
    return prepare_cache_dir(folder)


def prepare_cache_dir(folder: Path) -> CacheDir:
    """Create the cache folder with its CACHEDIR.TAG and a .gitignore that ignores all; return it open.

    Raises :class:`UnsafeCache` (an OSError) for a folder or tag that is a link or not this user's.
    """
    cache = CacheDir.open(folder)
    try:
        cache.ensure_file("CACHEDIR.TAG", _CACHEDIR_TAG)
        cache.ensure_file(".gitignore", _GITIGNORE)
    except BaseException:
        cache.close()
        raise
    return cache


def _reason(exc: OSError) -> str:
    if isinstance(exc, UnsafeCache):
        return str(exc.strerror or exc)
    where = f" {exc.filename}" if exc.filename else ""
    return f"{exc.strerror or exc}{where}"
