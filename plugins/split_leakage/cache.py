"""SQLite cache of split_leakage hashes, so a second run on unchanged data reads no image.

One row per resolved file path, valid only for the exact ``(size, mtime_ns,
hash version)`` it was computed for: a lookup compares all three, so an entry for a
file that has since changed (or was hashed by another recipe) is never used, and the
next write replaces it. Rows are written in transactions (one per batch of a few thousand rows):
an interrupted run leaves whole rows or none, never a half-written one.

The cache lives in its own folder (default ``.auditor-cache`` beside the manifest),
tagged with ``CACHEDIR.TAG`` (so backup tools skip it) and a ``.gitignore`` of ``*``.
Any SQLite problem (read-only folder, corrupt file, locked database) degrades to
"no cache" with a note; it never fails the audit.
"""

from __future__ import annotations

import contextlib
import os
import sqlite3
import time
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import Any, NamedTuple

from auditor_plugins.common.cache_folder import prepare_cache_dir
from auditor_plugins.common.safe_files import CacheDir, UnsafeCache

__all__ = ["IN_CACHE", "CachedHash", "HashCache", "file_key", "write_rows"]

_FILENAME = "split_leakage.sqlite"
_SCHEMA = """
CREATE TABLE IF NOT EXISTS file_hashes (
    path TEXT PRIMARY KEY,
    size INTEGER NOT NULL,
    mtime_ns INTEGER NOT NULL,
    version INTEGER NOT NULL,
    digest BLOB NOT NULL,
    phash INTEGER,
    mirror INTEGER,
    thumb BLOB,
    error TEXT,
    anchors BLOB,
    grid BLOB
) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS search_memo (
    key TEXT PRIMARY KEY,
    used_ns INTEGER NOT NULL,
    payload BLOB NOT NULL
);
"""
#: Search results kept (most recently used first): a few manifests or option sets.
_MEMO_KEEP = 8
#: SQLite's default limit on ``?`` parameters per statement is 999 on old builds.
_LOOKUP_BATCH = 900
#: From this many keys on, read the whole table once instead of looking keys up.
_SCAN_ABOVE = 4096
#: Paths have one separator (POSIX): splitting them needs no os.path generality.
_PLAIN_SEPARATORS = os.altsep is None
_SELECT = (
    "SELECT path, size, mtime_ns, version, digest, phash, mirror, thumb, error, anchors IS NOT NULL "
    "FROM file_hashes"
)
#: Stands for anchor codes that are in the cache but not read yet (see :meth:`HashCache.anchors`):
#: a warm run whose geometric results are memoised never reads them (1.6 KB a file).
IN_CACHE = b"(in the cache)"


class CachedHash(NamedTuple):
    digest: bytes
    phash: int | None
    mirror: int | None
    thumb: bytes | None
    error: str | None
    anchors: bytes | None = None


def _anchors(row: Sequence[Any]) -> bytes | None:
    """A row's anchor codes: rows written by callers of the 8-field form have none."""
    return row[8] if len(row) > 8 else None


def _grid(row: Sequence[Any]) -> bytes | None:
    """A row's 64x64 grid (kept for evaluation files only)."""
    return row[9] if len(row) > 9 else None


def _signed(value: int | None) -> int | None:
    """SQLite integers are signed 64-bit; store unsigned hashes in two's complement."""
    if value is None:
        return None
    return value - (1 << 64) if value >= 1 << 63 else value


class HashCache:
    """Open with :meth:`open`; every method swallows SQLite errors into ``problem``."""

    def __init__(self, connection: sqlite3.Connection, version: int, path: Path) -> None:
        self.connection = connection
        self.version = version
        self.path = path
        self.problem: str | None = None
        self.hits = 0
        self.written = 0

    @classmethod
    def open(cls, folder: Path, version: int) -> tuple[HashCache | None, str | None]:
        """The cache in ``folder``, or ``(None, reason)`` when it cannot be used.

        The database and its companions (``-wal``, ``-shm``, ``-journal``) must be absent or this
        user's own regular files: SQLite follows links, so a planted ``split_leakage.sqlite``
        pointing at another database is refused here (and the run goes on uncached) instead of
        being written through.
        """
        path = folder / _FILENAME
        try:
            with prepare_cache_dir(folder) as cache:
                _check_database_files(cache)
                # Created by us, exclusively and without following a link, before SQLite opens it.
                cache.ensure_file(_FILENAME, "")
                real = Path(os.path.realpath(folder)) / _FILENAME
                try:
                    connection = cls._connect(real)
                except sqlite3.OperationalError:
                    raise  # locked, read-only, disk I/O: not a reason to delete anything
                except sqlite3.DatabaseError:
                    # Our own file, corrupt (e.g. a disk filled up mid-write): start afresh.
                    for suffix in ("", "-wal", "-shm"):
                        with contextlib.suppress(FileNotFoundError):
                            os.unlink(f"{_FILENAME}{suffix}", dir_fd=cache.fd)
                    cache.ensure_file(_FILENAME, "")
                    connection = cls._connect(real)
                try:
                    _check_database_files(cache)  # what SQLite created beside it is ours too
                except OSError:
                    connection.close()
                    raise
        except (OSError, sqlite3.Error) as exc:
            if isinstance(exc, UnsafeCache):
                return None, f"warning: hash cache skipped, hashing uncached: {exc.strerror or exc}"
            return None, f"hash cache disabled: cannot use {path} ({exc})"
        return cls(connection, version, path), None

    @staticmethod
    def _connect(path: Path) -> sqlite3.Connection:
        connection = sqlite3.connect(path, timeout=30, isolation_level=None)
        try:
            connection.execute("PRAGMA journal_mode=WAL")  # readers never block the writer
            connection.execute("PRAGMA synchronous=NORMAL")
            connection.executescript(_SCHEMA)
            columns = {row[1] for row in connection.execute("PRAGMA table_info(file_hashes)")}
            for column in ("anchors", "grid"):  # a cache written before the geometric stage
                if column not in columns:
                    connection.execute(f"ALTER TABLE file_hashes ADD COLUMN {column} BLOB")
        except sqlite3.Error:
            connection.close()
            raise
        return connection

    def lookup(self, keys: Sequence[tuple[str, int, int]]) -> dict[int, CachedHash]:
        """Cached hashes for ``(resolved path, size, mtime_ns)`` keys, by key index."""
        found: dict[int, CachedHash] = {}
        if self.problem:
            return found
        position = {path: i for i, (path, _, _) in enumerate(keys)}
        try:
            if len(keys) >= _SCAN_ABOVE:
                # One sequential scan beats thousands of index lookups for big splits.
                batches: Iterable[Any] = [self.connection.execute(_SELECT)]
            else:
                batches = (
                    self.connection.execute(f"{_SELECT} WHERE path IN ({','.join('?' * len(batch))})", batch)
                    for batch in (
                        [k[0] for k in keys[i : i + _LOOKUP_BATCH]]
                        for i in range(0, len(keys), _LOOKUP_BATCH)
                    )
                )
            wrap = 1 << 64
            for rows in batches:
                # The hot loop of a warm run (one pass per cached file): kept free of calls.
                for path, size, mtime_ns, version, digest, phash, mirror, thumb, error, anchors in rows:
                    anchors = IN_CACHE if anchors else None
                    index = position.get(path)
                    if index is None:
                        continue
                    key = keys[index]
                    if size != key[1] or mtime_ns != key[2] or version != self.version:
                        continue  # stale: the file changed or another recipe wrote it
                    if phash is not None and phash < 0:
                        phash += wrap  # back from _signed's two's complement
                    if mirror is not None and mirror < 0:
                        mirror += wrap
                    found[index] = CachedHash(digest, phash, mirror, thumb, error, anchors)
        except sqlite3.Error as exc:
            self.problem = f"hash cache lookup failed ({exc}); hashing every file"
            return {}
        self.hits += len(found)
        return found

    def store(
        self,
        rows: Iterable[Sequence[Any]],
    ) -> None:
        """Write ``(path, size, mtime_ns, digest, phash, mirror, thumb, error[, anchors[, grid]])`` rows atomically."""
        if self.problem:
            return
        values = [
            (
                *row[:3],
                self.version,
                row[3],
                _signed(row[4]),
                _signed(row[5]),
                *row[6:8],
                _anchors(row),
                _grid(row),
            )
            for row in rows
            if row[1] >= 0
        ]
        if not values:
            return
        try:
            write_rows(
                self.connection,
                "INSERT OR REPLACE INTO file_hashes "
                "(path, size, mtime_ns, version, digest, phash, mirror, thumb, error, anchors, grid) "
                "VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                values,
            )
            self.written += len(values)
        except sqlite3.Error as exc:
            self.problem = f"hash cache write failed ({exc}); later runs will hash again"

    def anchors(self, paths: Sequence[str]) -> dict[str, bytes]:
        """The stored anchor codes of ``paths`` (resolved paths), read when a search needs them."""
        return self._blobs("anchors", paths)

    def grids(self, paths: Sequence[str]) -> dict[str, bytes]:
        """The stored 64x64 grids of ``paths`` (evaluation files hashed with their grid)."""
        return self._blobs("grid", paths)

    def _blobs(self, column: str, paths: Sequence[str]) -> dict[str, bytes]:
        found: dict[str, bytes] = {}
        if self.problem:
            return found
        wanted = set(paths)
        try:
            if len(wanted) >= _SCAN_ABOVE:
                rows: Iterable[Any] = self.connection.execute(
                    f"SELECT path, {column} FROM file_hashes WHERE version = ? AND {column} IS NOT NULL",
                    (self.version,),
                )
                found = {path: bytes(blob) for path, blob in rows if path in wanted}
            else:
                ordered = sorted(wanted)
                for first in range(0, len(ordered), _LOOKUP_BATCH):
                    batch = ordered[first : first + _LOOKUP_BATCH]
                    marks = ",".join("?" * len(batch))
                    for path, blob in self.connection.execute(
                        f"SELECT path, {column} FROM file_hashes WHERE version = ? AND path IN ({marks})",
                        (self.version, *batch),
                    ):
                        if blob is not None:
                            found[path] = bytes(blob)
        except sqlite3.Error as exc:
            self.problem = f"hash cache read failed ({exc})"
        return found

    def memo_get(self, key: str) -> bytes | None:
        """A stored search result (see ``analysis``), or None."""
        if self.problem:
            return None
        try:
            row = self.connection.execute("SELECT payload FROM search_memo WHERE key = ?", (key,)).fetchone()
            if row is not None:
                self.connection.execute(
                    "UPDATE search_memo SET used_ns = ? WHERE key = ?", (time.time_ns(), key)
                )
        except sqlite3.Error:
            return None
        return None if row is None else bytes(row[0])

    def memo_put(self, key: str, payload: bytes) -> None:
        if self.problem:
            return
        try:
            self.connection.execute("BEGIN IMMEDIATE")
            self.connection.execute(
                "INSERT OR REPLACE INTO search_memo (key, used_ns, payload) VALUES (?, ?, ?)",
                (key, time.time_ns(), payload),
            )
            self.connection.execute(
                "DELETE FROM search_memo WHERE key NOT IN "
                "(SELECT key FROM search_memo ORDER BY used_ns DESC LIMIT ?)",
                (_MEMO_KEEP,),
            )
            self.connection.execute("COMMIT")
        except sqlite3.Error:
            with contextlib.suppress(sqlite3.Error):
                self.connection.execute("ROLLBACK")

    def close(self) -> None:
        with contextlib.suppress(sqlite3.Error):  # closing never matters for results
            self.connection.close()


def write_rows(connection: sqlite3.Connection, statement: str, values: Sequence[Sequence[Any]]) -> None:
    """``executemany`` in one transaction: an interruption leaves whole rows or none."""
    connection.execute("BEGIN IMMEDIATE")
    try:
        connection.executemany(statement, values)
    except BaseException:
        connection.execute("ROLLBACK")
        raise
    connection.execute("COMMIT")


def _check_database_files(cache: CacheDir) -> None:
    """Raise UnsafeCache when the database or a file SQLite keeps beside it is a link or not ours."""
    for suffix in ("", "-wal", "-shm", "-journal"):
        cache.check_file(f"{_FILENAME}{suffix}")


def file_key(path: str, resolved_dirs: dict[str, str]) -> tuple[str, int, int] | str:
    """``(resolved path, size, mtime_ns)`` of a file with one ``lstat``, or why there is none.

    Resolving every path with ``realpath`` costs a syscall per path component; the
    parent folder is resolved once per folder instead, and only symlinked files pay
    for a full resolve.
    """
    import stat as stat_module

    try:
        info = os.lstat(path)
        if stat_module.S_ISLNK(info.st_mode):
            resolved = os.path.realpath(path)
            info = os.stat(resolved)
        else:
            # rpartition and + rather than os.path.split/join: a third of a warm run's time
            # on large splits went to their generality. A doubled separator only leaves the
            # folder spelt differently, and realpath makes the spellings one.
            if _PLAIN_SEPARATORS:
                parent, _, name = path.rpartition(os.sep)
                if not parent and path[:1] == os.sep:
                    parent = os.sep  # a file directly in the root folder
            else:
                parent, name = os.path.split(path)
            folder = resolved_dirs.get(parent)
            if folder is None:
                folder = resolved_dirs[parent] = os.path.realpath(parent or ".")
            resolved = folder + name if folder.endswith(os.sep) else folder + os.sep + name
    except FileNotFoundError:
        return "cannot read: no such file"
    except OSError as exc:
        return f"cannot read: {exc.strerror or exc}"
    if not stat_module.S_ISREG(info.st_mode):
        return "cannot read: not a regular file"
    return resolved, info.st_size, info.st_mtime_ns
