"""Listing splits whose data lives behind fsspec URLs (s3://, gs://, file://, memory://).

One recursive listing (``fs.find(..., detail=True)``) yields every file's name,
size and version metadata at once: a few requests per thousand objects on S3,
where a ``HEAD`` per file would cost one request each. The listing's metadata
becomes the hash cache's key (see ``auditor.data._storage.version_token``), so a warm
run over a bucket reads listings only, never an object body.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from auditor import SplitSpec
from auditor.errors import ManifestError
from auditor.kit import RemoteFiles, filesystem, url_of

__all__ = ["list_files_under", "list_image_folder", "manifest_error"]


def manifest_error(spec: SplitSpec, key: str, expected: str, found: str, hint: str = "") -> ManifestError:
    full = f"{spec.location or 'data.' + spec.name}.{key}"
    return ManifestError(
        spec.resolver.manifest_path, full, expected, found, line=spec.resolver.lines.line(full), hint=hint
    )


def _listing(spec: SplitSpec, key: str, url: str) -> tuple[Any, str, list[dict[str, Any]]]:
    """Every file below ``url`` (sorted); ``key`` is the manifest key errors name."""
    fs, root = filesystem(url, spec.storage_options, f"{spec.location}.{key} ({url})")
    try:
        entries = fs.find(root, detail=True, withdirs=False)
    except FileNotFoundError:
        entries = {}
    except Exception as exc:  # credentials, endpoint, permissions: for the user to fix
        raise manifest_error(
            spec,
            key,
            "a readable folder URL",
            f"{url} cannot be listed ({type(exc).__name__}: {exc})",
            hint="check storage_options (credentials, endpoint_url) for this split",
        ) from exc
    return fs, root.rstrip("/"), sorted(entries.values(), key=lambda info: str(info["name"]))


def list_image_folder(
    spec: SplitSpec, key: str, extensions: Sequence[str]
) -> tuple[list[str], list[str], list[int], RemoteFiles]:
    """``(classes, file URLs, targets, RemoteFiles)`` of an image folder behind a URL.

    Classes are the first-level "folders" (key prefixes) below the root, sorted, as
    torchvision's ImageFolder sorts them; files directly in the root belong to none.
    """
    url = spec.config[key]
    fs, root, entries = _listing(spec, key, url)
    by_class: dict[str, list[str]] = {}
    remote = RemoteFiles(spec.storage_options)
    prefix = root + "/"
    for info in entries:
        name = str(info["name"])
        if info.get("type") != "file" or not name.startswith(prefix):
            continue
        relative = name[len(prefix) :]
        folder, slash, _ = relative.partition("/")
        if not slash or not name.lower().endswith(tuple(extensions)):
            continue
        by_class.setdefault(folder, []).append(name)
    if not by_class:
        raise manifest_error(
            spec,
            key,
            "a folder with one sub-folder of images per class",
            f"no images below {url}",
            hint="check the URL and the split's storage_options (endpoint, credentials)",
        )
    remote.add_listing(fs, entries)
    classes = sorted(by_class)
    paths: list[str] = []
    targets: list[int] = []
    for index, name in enumerate(classes):
        found = [url_of(fs, p) for p in sorted(by_class[name], key=_walk_order)]
        paths.extend(found)
        targets.extend([index] * len(found))
    return classes, paths, targets, remote


def _walk_order(name: str) -> tuple[tuple[int, str], ...]:
    """Sort key giving ``os.walk``'s order (a folder's files before its sub-folders), so
    samples are numbered as for the same folder on a local disk."""
    *folders, file = name.split("/")
    return (*((1, folder) for folder in folders), (0, file))


def list_files_under(spec: SplitSpec, key: str, url: str) -> RemoteFiles:
    """The files listed below ``url`` (a table's root), with their sizes and versions."""
    fs, _, entries = _listing(spec, key, url)
    remote = RemoteFiles(spec.storage_options)
    remote.add_listing(fs, entries)
    return remote
