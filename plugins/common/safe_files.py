"""Opening cache folders and files so that nothing is ever written through a link.

A cache folder lives in the user's project (``.auditor-cache`` beside the manifest), and a
project can hold anything a repository or an archive brought along: a symlink named
``split_leakage.sqlite`` pointing at the user's own database, a dangling ``CACHEDIR.TAG``
pointing into their home folder. Following either would overwrite or create a file outside
the cache. So every cache operation here goes through a folder opened with ``O_NOFOLLOW``
(its file descriptor, not its name, is what later calls use), and every file in it is
created with ``O_CREAT | O_EXCL | O_NOFOLLOW`` or checked with ``lstat`` first:

* a symlink (dangling or not), a hard-linked file, a FIFO or a file or folder owned by
  another user is refused with :class:`UnsafeCache`, naming the path and what was found;
* nothing is repaired or deleted: the caller skips the cache with a warning and the run goes
  on uncached (as git refuses a ``.gitattributes`` that is a symlink, and SQLite's
  ``SQLITE_OPEN_NOFOLLOW`` refuses a linked database).

Folders created here are private (``0700``); files are created ``0600`` and renamed into place.
"""

from __future__ import annotations

import contextlib
import os
import secrets
import stat
from pathlib import Path

__all__ = ["CacheDir", "UnsafeCache"]

_NOFOLLOW = getattr(os, "O_NOFOLLOW", 0)
_CLOEXEC = getattr(os, "O_CLOEXEC", 0)
_DIRECTORY = getattr(os, "O_DIRECTORY", 0)
#: Cache entries are small JSON files; a bigger one is not ours, so it is a miss, never read whole.
MAX_ENTRY_BYTES = 64 * 1024 * 1024


class UnsafeCache(OSError):
    """A cache path that cannot be used without following a link or trusting a foreign file."""


def _describe(path: Path | str, info: os.stat_result) -> str:
    """Why ``path`` (lstat ``info``) cannot stand in a cache folder."""
    if stat.S_ISLNK(info.st_mode):
        try:
            target = os.readlink(path)
        except OSError:
            target = "?"
        return f"{path} is a symbolic link (to {target}); auditor never writes through a link"
    if info.st_uid != os.geteuid():
        return f"{path} belongs to another user (uid {info.st_uid})"
    if stat.S_ISREG(info.st_mode) and info.st_nlink > 1:
        return f"{path} has {info.st_nlink} hard links; writing it would change the other names too"
    return f"{path} is not a regular file"


class CacheDir:
    """A cache folder opened without following links; every name below it is opened relative to it."""

    def __init__(self, fd: int, path: Path) -> None:
        self.fd = fd
        self.path = path

    @classmethod
    def open(cls, path: Path, *, create: bool = True) -> CacheDir:
        """The folder ``path`` (created ``0700`` with its parents when ``create``); raises OSError.

        Parent folders are the user's choice (``--cache-dir`` may well lie below a symlinked
        home); the folder itself must be a real folder of this user, never a link.
        """
        if create:
            path.parent.mkdir(parents=True, exist_ok=True)
            with contextlib.suppress(FileExistsError):
                os.mkdir(path, 0o700)
        return cls._open_at(None, path, path)

    @classmethod
    def _open_at(cls, dir_fd: int | None, name: Path | str, shown: Path) -> CacheDir:
        try:
            fd = os.open(name, os.O_RDONLY | _DIRECTORY | _NOFOLLOW | _CLOEXEC, dir_fd=dir_fd)
        except OSError as exc:
            try:
                info = os.stat(name, dir_fd=dir_fd, follow_symlinks=False)
            except OSError:
                raise exc from None
            if stat.S_ISLNK(info.st_mode) or info.st_uid != os.geteuid():
                raise UnsafeCache(exc.errno, _describe(shown, info)) from exc
            if not stat.S_ISDIR(info.st_mode):
                raise UnsafeCache(exc.errno, f"{shown} is not a folder") from exc
            raise
        info = os.fstat(fd)
        problem = None
        if info.st_uid != os.geteuid():
            problem = f"{shown} belongs to another user (uid {info.st_uid})"
        elif info.st_mode & stat.S_IWOTH and not info.st_mode & stat.S_ISVTX:
            problem = f"{shown} is writable by every user"
        if problem:
            os.close(fd)
            raise UnsafeCache(problem)
        return cls(fd, shown)

    def subdir(self, name: str) -> CacheDir:
        """The sub-folder ``name`` (created ``0700``), opened like the cache folder itself."""
        with contextlib.suppress(FileExistsError):
            os.mkdir(name, 0o700, dir_fd=self.fd)
        return self._open_at(self.fd, name, self.path / name)

    def child(self, name: str, *, create: bool = False) -> CacheDir | None:
        """The existing sub-folder ``name``; None when it does not exist (and ``create`` is false)."""
        if create:
            return self.subdir(name)
        try:
            return self._open_at(self.fd, name, self.path / name)
        except FileNotFoundError:
            return None

    def check_file(self, name: str) -> bool:
        """Whether ``name`` exists; raises :class:`UnsafeCache` when it is anything but our own file."""
        try:
            info = os.stat(name, dir_fd=self.fd, follow_symlinks=False)
        except FileNotFoundError:
            return False
        if not stat.S_ISREG(info.st_mode) or info.st_nlink > 1 or info.st_uid != os.geteuid():
            raise UnsafeCache(_describe(self.path / name, info))
        return True

    def ensure_file(self, name: str, text: str) -> None:
        """Create ``name`` holding ``text`` unless it exists as our own regular file."""
        try:
            fd = os.open(
                name, os.O_WRONLY | os.O_CREAT | os.O_EXCL | _NOFOLLOW | _CLOEXEC, 0o644, dir_fd=self.fd
            )
        except FileExistsError:
            self.check_file(name)  # a planted link is refused, never written through
            return
        with os.fdopen(fd, "w", encoding="utf-8") as out:
            out.write(text)

    def read_bytes(self, name: str, limit: int = MAX_ENTRY_BYTES) -> bytes | None:
        """The content of our own file ``name``; None when missing. A link raises UnsafeCache."""
        try:
            fd = os.open(name, os.O_RDONLY | _NOFOLLOW | _CLOEXEC | os.O_NONBLOCK, dir_fd=self.fd)
        except FileNotFoundError:
            return None
        except OSError:
            self.check_file(name)  # words ELOOP as "a symbolic link (to ...)"
            raise
        with os.fdopen(fd, "rb") as handle:
            info = os.fstat(handle.fileno())
            if not stat.S_ISREG(info.st_mode) or info.st_nlink > 1 or info.st_uid != os.geteuid():
                raise UnsafeCache(_describe(self.path / name, info))
            if info.st_size > limit:
                return None
            return handle.read(limit + 1)

    def replace(self, name: str, data: bytes) -> None:
        """Put ``data`` at ``name`` through a fresh exclusive temporary file and a rename.

        The rename would replace a planted link rather than follow it; it is refused all the
        same, so the user hears about the link instead of losing it silently.
        """
        self.check_file(name)
        temporary = f".tmp-{secrets.token_hex(8)}-{name}"
        fd = os.open(
            temporary, os.O_WRONLY | os.O_CREAT | os.O_EXCL | _NOFOLLOW | _CLOEXEC, 0o600, dir_fd=self.fd
        )
        try:
            with os.fdopen(fd, "wb") as out:
                out.write(data)
            os.replace(temporary, name, src_dir_fd=self.fd, dst_dir_fd=self.fd)
        except BaseException:
            with contextlib.suppress(OSError):
                os.unlink(temporary, dir_fd=self.fd)
            raise

    def close(self) -> None:
        with contextlib.suppress(OSError):
            os.close(self.fd)

    def __enter__(self) -> CacheDir:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
