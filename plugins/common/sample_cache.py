"""Cache keys over a split's sampled files and its pipeline, for audits that reuse per-split results.

transform_parity (its measurement) and data_loading (its load-and-collate result) both look at
the same evenly spread samples of a split and may reuse what they found while nothing it depends
on changed. The key covers:

* each sampled file's resolved path, size and ``mtime_ns`` (a ``stat``, no read);
* the split's manifest entry, its length and the sample/determinism counts;
* the pipeline's structural fingerprint (:mod:`.fingerprint`), which also covers the source
  of the project modules its steps come from, and the data format's loader code;
* the versions of Python, torch, torchvision, numpy and Pillow, and the caller's format version.

A split whose samples are not files (callable datasets) or whose pipeline cannot be
fingerprinted gets no key: it is computed every time. One entry per (manifest, split) in the
caller's folder keeps each cache bounded.
"""

from __future__ import annotations

import json
import os
import platform
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import xxhash

from auditor_plugins.common.fingerprint import Uncacheable, fingerprint

__all__ = ["CacheEntry", "SampleKeys", "spread_indices"]


def spread_indices(length: int, count: int) -> list[int]:
    """``count`` distinct indices spread evenly over ``range(length)`` (all when count >= length).

    Deterministic, so every run looks at the same samples and a cache key can name their files.
    """
    if count >= length:
        return list(range(length))
    return [i * length // count for i in range(count)]


@dataclass
class CacheEntry:
    """Where one split's result lives, and the key it must carry to be reused."""

    path: Path
    key: str


class SampleKeys:
    """Keys for the entries in ``folder`` of the manifest ``manifest_path``.

    ``version`` is the caller's format version (bump it when what it stores changes meaning).
    """

    def __init__(self, folder: Path, manifest_path: Path, project_dirs: list[str], version: int) -> None:
        self.folder = folder
        self.manifest_path = manifest_path
        self.project_dirs = project_dirs
        self.version = version

    def entry(self, split: Any, pipeline: Any, count: int, check_determinism: int) -> CacheEntry | str:
        """The entry for ``count`` spread samples of ``split`` through ``pipeline``, or why there is none."""
        paths = split.path_strings()
        if paths is None:
            return "samples are not files"
        try:
            described = fingerprint(pipeline, project_dirs=self.project_dirs)
        except Uncacheable as exc:
            return f"pipeline not cacheable ({exc})"
        files = []
        for index in spread_indices(len(split), count):
            try:
                info = os.stat(paths[index])
            except OSError:
                return "a sampled file cannot be read"  # computed, so the error is reported
            files.append([os.path.realpath(paths[index]), info.st_size, info.st_mtime_ns])
        key = json.dumps(
            {
                "format": self.version,
                "versions": _versions(),
                "manifest": str(self.manifest_path),
                "split": split.name,
                "config": split.spec.config,
                "length": len(split),
                "count": count,
                "check_determinism": check_determinism,
                "loader": fingerprint(type(split)),
                "pipeline": described,
                "files": files,
            },
            sort_keys=True,
            default=repr,
        )
        name = xxhash.xxh3_64_hexdigest(f"{self.manifest_path}\0{split.name}".encode())
        return CacheEntry(self.folder / f"{name}.json", xxhash.xxh3_128_hexdigest(key.encode()))


def _versions() -> dict[str, str]:
    import numpy
    import PIL
    import torch
    import torchvision

    return {
        "python": platform.python_version(),
        "torch": torch.__version__,
        "torchvision": torchvision.__version__,
        "numpy": numpy.__version__,
        "pillow": PIL.__version__,
    }
