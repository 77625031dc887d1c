"""Reading a manifest file within bounds, every failure worded with the path and the reason.

A manifest is a few kilobytes of YAML written by a person. What arrives instead may be a
100 MB file of comments (PyYAML's pure-Python scanner needs about 35 s for it), a file
without read permission, a path of 5,000 characters, a symlink loop or a FIFO. Each of these
is exit 2 with a :class:`~auditor.errors.ManifestError` naming the path (control characters
escaped, a very long path shortened in the middle) and the operating system's reason, never
a traceback and never a wait: the size is checked with ``fstat`` before a byte is read, and at
most :data:`MAX_MANIFEST_BYTES` + 1 bytes are read whatever the file claims.
"""

from __future__ import annotations

import errno
import os
import stat
from pathlib import Path

from auditor.errors import ManifestError, ManifestInvalid

__all__ = ["MAX_MANIFEST_BYTES", "locate_manifest", "read_manifest_text", "shown_path"]

#: Largest manifest read (256 KiB). Real manifests are a few KB; file lists belong in a table (csv
#: format). PyYAML's pure-Python parser (needed for line numbers and bounded nesting) reads about
#: 150 KB of dense YAML a second, so this also bounds the parse to a second or two.
MAX_MANIFEST_BYTES = 256 * 1024
#: Paths longer than this are shown with their middle cut out.
_SHOW_CHARS = 160
_NONBLOCK = getattr(os, "O_NONBLOCK", 0)
_CLOEXEC = getattr(os, "O_CLOEXEC", 0)


def shown_path(path: Path | str) -> str:
    """``path`` for a message: normalised, control characters escaped, a huge one shortened."""
    from auditor._util.paths import display_path
    from auditor._util.printable import printable

    text = printable(display_path(path), keep_lines=False)
    if len(text) > _SHOW_CHARS:
        half = _SHOW_CHARS // 2
        text = f"{text[:half]}...({len(text)} characters)...{text[-half:]}"
    return text


def _reason(exc: OSError) -> str:
    name = errno.errorcode.get(exc.errno or 0, "")
    words = {
        errno.EACCES: "permission denied",
        errno.EPERM: "operation not permitted",
        errno.ENAMETOOLONG: "the name is too long for the file system",
        errno.ELOOP: "a loop of symbolic links",
        errno.ENOENT: "no such file",
        errno.ENOTDIR: "a part of the path is not a folder",
    }.get(exc.errno or 0, exc.strerror or str(exc))
    return f"{words} [{name}]" if name else words


def _error(path: Path | str, expected: str, found: str, hint: str = "") -> ManifestInvalid:
    return ManifestInvalid([ManifestError(shown_path(path), "", expected, found, hint=hint)])


def locate_manifest(given: Path, default_name: str) -> Path:
    """The manifest file ``given`` names (``DIR`` means ``DIR/default_name``); ManifestInvalid if none."""
    try:
        info = os.stat(given)
    except FileNotFoundError:
        raise _error(
            given,
            "a manifest file",
            "no such file",
            "pass the path of your audit.yaml or its folder, e.g. `auditor run audit.yaml`",
        ) from None
    except OSError as exc:
        raise _error(given, "a readable manifest file", _reason(exc)) from None
    if not stat.S_ISDIR(info.st_mode):
        return given
    path = given / default_name
    try:
        os.stat(path)
    except FileNotFoundError:
        raise _error(
            given,
            f"a folder with an {default_name}",
            "a folder without one",
            f"pass the manifest's path, or create {shown_path(path)}",
        ) from None
    except OSError as exc:
        raise _error(path, "a readable manifest file", _reason(exc)) from None
    return path


def read_manifest_text(path: Path) -> str:
    """The UTF-8 text of the manifest at ``path``, at most :data:`MAX_MANIFEST_BYTES` long."""
    try:
        # O_NONBLOCK: a FIFO named audit.yaml must not wait for a writer (it is refused below).
        fd = os.open(path, os.O_RDONLY | _NONBLOCK | _CLOEXEC)
    except OSError as exc:
        hint = "make the file readable (chmod u+r)" if exc.errno in (errno.EACCES, errno.EPERM) else ""
        raise _error(path, "a readable manifest file", _reason(exc), hint) from None
    with os.fdopen(fd, "rb") as handle:
        info = os.fstat(fd)
        if not stat.S_ISREG(info.st_mode):
            raise _error(path, "a manifest file", "not a regular file (a FIFO, device or folder?)")
        if info.st_size > MAX_MANIFEST_BYTES:
            raise _too_big(path, info.st_size)
        try:
            data = handle.read(MAX_MANIFEST_BYTES + 1)
        except OSError as exc:
            raise _error(path, "a readable manifest file", _reason(exc)) from None
    if len(data) > MAX_MANIFEST_BYTES:
        raise _too_big(path, len(data))
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise _error(path, "UTF-8 text", f"undecodable bytes ({exc})") from None


def _too_big(path: Path, size: int) -> ManifestInvalid:
    return _error(
        path,
        f"a manifest of at most {MAX_MANIFEST_BYTES // 1024} KiB",
        f"{size / 1024 / 1024:.1f} MiB" if size >= 1024 * 1024 else f"{size / 1024:.0f} KiB",
        "a manifest names files and settings; list many files in a table (format: csv) and "
        "point data.SPLIT.path at it",
    )
