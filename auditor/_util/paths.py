"""Paths as messages show them: normalised, and relative to the working folder when that is shorter.

A hint that says ``/tmp/p/typos/../data/val.csv`` makes a person work out where
that is; ``../data/val.csv`` (from where they ran the command) or
``/tmp/p/data/val.csv`` does not. Only the text changes: files are still opened
by their real path, and URLs (``s3://...``) are left as written.
"""

from __future__ import annotations

import os
from pathlib import Path

__all__ = ["display_path", "exists_locally", "normalised"]


def normalised(path: str | os.PathLike[str]) -> str:
    """``path`` with ``.`` and ``..`` folded away, lexically (URLs untouched)."""
    text = os.fspath(path)
    if "://" in text:
        return text
    return os.path.normpath(text)


def display_path(path: str | os.PathLike[str], cwd: str | os.PathLike[str] | None = None) -> str:
    """``path`` normalised; relative to ``cwd`` (default: the working folder) when that is shorter."""
    text = normalised(path)
    if "://" in text or not os.path.isabs(text):
        return text
    try:
        relative = os.path.relpath(text, os.fspath(cwd) if cwd is not None else os.getcwd())
    except ValueError:  # another drive on Windows
        return text
    return relative if len(relative) < len(text) else text


def exists_locally(root: str | os.PathLike[str]) -> bool | None:
    """Whether a local path exists; None for URLs, which only the data format can check."""
    text = os.fspath(root)
    if "://" in text:
        return None
    return Path(text).exists()
