"""Data behind fsspec URLs (``s3://``, ``gs://``, ``file://``, ``memory://``): the shared plumbing.

Local paths never come here: :func:`is_url` is a string test, and fsspec is
imported only once a URL is actually opened, so a manifest of local folders costs
no import of fsspec (nor dask) and keeps the ``os.scandir``/``open`` fast path.

Every remote file gets a cache *version token*: an integer derived from what the
store says identifies this version of the object (a version id or generation where
the store keeps versions, else its ETag/MD5, else its modification time). Together
with the size it stands where a local file's ``mtime_ns`` stands in the hash cache,
so unchanged remote data is never read twice; a store that reports none of these
gives no token, and such files are hashed on every run.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

from auditor.errors import UsageError

__all__ = [
    "EXTRA",
    "RemoteFiles",
    "check_extras",
    "filesystem",
    "is_url",
    "missing_extra",
    "open_url",
    "url_of",
    "version_token",
]

#: The optional dependencies this module needs, as users install them.
EXTRA = "auditor[distributed]"
#: ``scheme://`` with a scheme of two or more characters: ``C:\\data`` is a local path.
_URL = re.compile(r"^[A-Za-z][A-Za-z0-9+.\-]+://")
#: Metadata keys naming one version of an object, most specific first (S3, GCS, Azure,
#: then plain stores). A version id or generation changes on every write; an ETag or MD5
#: changes with the content; a modification time is the last resort.
_TOKEN_KEYS = (
    "VersionId",
    "version_id",
    "generation",
    "ETag",
    "etag",
    "md5Hash",
    "content_md5",
    "mtime",
    "LastModified",
    "last_modified",
    "updated",
    "created",
)


def is_url(text: object) -> bool:
    """True for ``s3://bucket/x``, ``memory://x``, ``file:///x``; False for local paths."""
    return isinstance(text, str) and _URL.match(text) is not None


def missing_extra(what: str, module: str) -> UsageError:
    """The one-line error for a feature whose optional dependencies are not installed."""
    return UsageError(
        f"{what} needs the optional dependency {module!r}, which is not installed; "
        f"install it with: pip install '{EXTRA}'"
    )


def _fsspec(what: str) -> Any:
    try:
        import fsspec
    except ImportError as exc:
        raise missing_extra(what, "fsspec") from exc
    return fsspec


def filesystem(url: str, storage_options: Mapping[str, Any] | None, what: str = "") -> tuple[Any, str]:
    """``(filesystem, path inside it)`` for ``url``; fsspec caches instances per options."""
    fsspec = _fsspec(what or f"reading {url}")
    try:
        return fsspec.core.url_to_fs(url, **dict(storage_options or {}))
    except ImportError as exc:  # e.g. s3:// without s3fs, gs:// without gcsfs
        protocol = url.split("://", 1)[0]
        raise UsageError(
            f"reading {url} needs the fsspec implementation of {protocol}:// ({exc}); "
            f"install it (for s3://: pip install '{EXTRA}')"
        ) from exc


def url_of(fs: Any, path: str) -> str:
    """The canonical URL of ``path`` inside ``fs`` (what caches and reports key on)."""
    protocol = fs.protocol if isinstance(fs.protocol, str) else fs.protocol[0]
    return path if is_url(path) else f"{protocol}://{path}"


def version_token(info: Mapping[str, Any]) -> int | None:
    """A non-negative 63-bit integer naming this version of the object, or None."""
    import xxhash

    for key in _TOKEN_KEYS:
        value = info.get(key)
        if value not in (None, ""):
            return xxhash.xxh3_64_intdigest(f"{key}={value}".encode()) >> 1
    return None


def open_url(url: str, storage_options: Mapping[str, Any] | None) -> Any:
    """A binary file object for ``url`` (read by ``load_image`` and pandas)."""
    fs, path = filesystem(url, storage_options)
    return fs.open(path, "rb")


@dataclass
class RemoteFiles:
    """The files of one split that live behind a URL, as the listing described them.

    ``infos`` maps a file's URL to ``(size, version token)`` from the listing, so
    building cache keys costs no request per file; a URL missing from it (e.g. a
    table row naming a file outside the listed root) is looked up on demand.
    """

    storage_options: dict[str, Any]
    infos: dict[str, tuple[int, int | None]] = field(default_factory=dict)

    def key(self, url: str) -> tuple[int, int | None] | str:
        """``(size, token)`` of ``url``, or why it cannot be read."""
        found = self.infos.get(url)
        if found is not None:
            return found
        try:
            fs, path = filesystem(url, self.storage_options)
            info = fs.info(path)
        except FileNotFoundError:
            return "cannot read: no such file"
        except UsageError:
            raise
        except Exception as exc:
            return f"cannot read: {type(exc).__name__}: {exc}"
        if info.get("type") != "file":
            return "cannot read: not a regular file"
        found = (int(info.get("size") or 0), version_token(info))
        self.infos[url] = found
        return found

    def add_listing(self, fs: Any, entries: Iterable[Mapping[str, Any]]) -> None:
        for info in entries:
            if info.get("type") == "file":
                self.infos[url_of(fs, str(info["name"]))] = (int(info.get("size") or 0), version_token(info))


def _installed(module: str) -> bool:
    from importlib.util import find_spec

    try:
        return find_spec(module) is not None
    except (ImportError, ValueError):  # a module set to None in sys.modules, say
        return False


def check_extras(manifest: Any, scheduler: str | None) -> None:
    """Fail before any audit runs when the manifest or command line needs a missing extra.

    ``find_spec`` looks without importing, so a local run pays nothing for this check.
    """
    wanted = scheduler if scheduler is not None else manifest.scheduler
    if wanted and not _installed("distributed"):
        raise missing_extra(f"--scheduler {wanted}", "distributed")
    for name, split in manifest.data.items():
        for key, value in split.items():
            if is_url(value) and not _installed("fsspec"):
                raise missing_extra(f"data.{name}.{key} ({value})", "fsspec")
