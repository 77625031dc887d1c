"""SQLite cache of model features for split_leakage's model stage, so a warm run embeds nothing.

One row per ``(content digest, model fingerprint, resolution, recipe version)``: the
digest is the sample's content hash from the hash stage, so a renamed or copied file
hits and a changed one misses; the model fingerprint hashes the weights and the module
classes, so fine-tuned weights never reuse another model's features. Vectors are stored
as float16 (half the bytes; cosine changes by under 1e-3).

The database is ``split_leakage_features.sqlite`` in the run's cache folder, opened with
the same refusals as the hash cache (a planted link is refused, the run goes on uncached).
Any SQLite problem degrades to "no cache" with ``problem`` set; it never fails the audit.
"""

from __future__ import annotations

import contextlib
import os
import sqlite3
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from auditor_plugins.common.cache_folder import prepare_cache_dir
from auditor_plugins.common.safe_files import CacheDir, UnsafeCache
from auditor_plugins.split_leakage.cache import write_rows

__all__ = ["FeatureCache", "model_fingerprint"]

_FILENAME = "split_leakage_features.sqlite"
_SCHEMA = """
CREATE TABLE IF NOT EXISTS features (
    digest BLOB NOT NULL,
    model TEXT NOT NULL,
    resolution INTEGER NOT NULL,
    version INTEGER NOT NULL,
    dim INTEGER NOT NULL,
    vector BLOB NOT NULL,
    PRIMARY KEY (digest, model, resolution, version)
) WITHOUT ROWID;
"""
_LOOKUP_BATCH = 900


def model_fingerprint(model: Any) -> str:
    """A hash of every parameter and buffer (name, dtype, shape, bytes) and of the module classes."""
    import torch
    import xxhash

    digest = xxhash.xxh3_128()
    for name, module in model.named_modules():
        digest.update(f"{name}:{type(module).__module__}.{type(module).__qualname__};".encode())
    for name, tensor in model.state_dict().items():
        if not isinstance(tensor, torch.Tensor):
            continue
        value = tensor.detach().cpu().contiguous()
        digest.update(f"{name}:{value.dtype}:{tuple(value.shape)};".encode())
        if value.numel():
            # Raw bytes of any dtype (bfloat16 has no numpy twin): a flat view as bytes.
            digest.update(value.reshape(-1).view(torch.uint8).numpy().tobytes())
    return digest.hexdigest()


class FeatureCache:
    """Open with :meth:`open`; every method swallows SQLite errors into ``problem``."""

    def __init__(self, connection: sqlite3.Connection, model: str, resolution: int, version: int) -> None:
        self.connection = connection
        self.model, self.resolution, self.version = model, resolution, version
        self.problem: str | None = None
        self.hits = 0
        self.written = 0

    @classmethod
    def open(
        cls, folder: Path, model: str, resolution: int, version: int
    ) -> tuple[FeatureCache | None, str | None]:
        """The cache in ``folder``, or ``(None, reason)`` when it cannot be used."""
        path = folder / _FILENAME
        try:
            with prepare_cache_dir(folder) as cache:
                _check_database_files(cache)
                cache.ensure_file(_FILENAME, "")  # ours, created without following a link
                real = Path(os.path.realpath(folder)) / _FILENAME
                try:
                    connection = _connect(real)
                except sqlite3.OperationalError:
                    raise
                except sqlite3.DatabaseError:
                    # Our own file, corrupt: start afresh.
                    for suffix in ("", "-wal", "-shm"):
                        with contextlib.suppress(FileNotFoundError):
                            os.unlink(f"{_FILENAME}{suffix}", dir_fd=cache.fd)
                    cache.ensure_file(_FILENAME, "")
                    connection = _connect(real)
                try:
                    _check_database_files(cache)
                except OSError:
                    connection.close()
                    raise
        except (OSError, sqlite3.Error) as exc:
            if isinstance(exc, UnsafeCache):
                return None, f"warning: feature cache skipped, embedding uncached: {exc.strerror or exc}"
            return None, f"feature cache disabled: cannot use {path} ({exc})"
        return cls(connection, model, resolution, version), None

    def lookup(self, digests: Sequence[bytes]) -> dict[bytes, np.ndarray]:
        """Cached float32 vectors for the given content digests."""
        found: dict[bytes, np.ndarray] = {}
        if self.problem:
            return found
        try:
            for start in range(0, len(digests), _LOOKUP_BATCH):
                batch = list(digests[start : start + _LOOKUP_BATCH])
                rows = self.connection.execute(
                    f"SELECT digest, dim, vector FROM features WHERE model = ? AND resolution = ? "
                    f"AND version = ? AND digest IN ({','.join('?' * len(batch))})",
                    [self.model, self.resolution, self.version, *batch],
                )
                for digest, dim, vector in rows:
                    values = np.frombuffer(vector, dtype=np.float16)
                    if values.size == dim:
                        found[bytes(digest)] = values.astype(np.float32)
        except sqlite3.Error as exc:
            self.problem = f"feature cache lookup failed ({exc}); embedding every image"
            return {}
        self.hits += len(found)
        return found

    def store(self, rows: Sequence[tuple[bytes, np.ndarray]]) -> None:
        """Write ``(digest, vector)`` rows in one transaction."""
        if self.problem or not rows:
            return
        values = [
            (
                digest,
                self.model,
                self.resolution,
                self.version,
                int(vector.size),
                vector.astype(np.float16).tobytes(),
            )
            for digest, vector in rows
        ]
        try:
            write_rows(
                self.connection,
                "INSERT OR REPLACE INTO features (digest, model, resolution, version, dim, vector) "
                "VALUES (?, ?, ?, ?, ?, ?)",
                values,
            )
            self.written += len(values)
        except sqlite3.Error as exc:
            self.problem = f"feature cache write failed ({exc}); later runs will embed again"

    def close(self) -> None:
        with contextlib.suppress(sqlite3.Error):
            self.connection.close()


def _connect(path: Path) -> sqlite3.Connection:
    connection = sqlite3.connect(path, timeout=30, isolation_level=None)
    try:
        connection.execute("PRAGMA journal_mode=WAL")
        connection.execute("PRAGMA synchronous=NORMAL")
        connection.executescript(_SCHEMA)
    except sqlite3.Error:
        connection.close()
        raise
    return connection


def _check_database_files(cache: CacheDir) -> None:
    for suffix in ("", "-wal", "-shm", "-journal"):
        cache.check_file(f"{_FILENAME}{suffix}")
