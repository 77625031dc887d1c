"""Reuse transform_parity's measurement of a split when nothing it depends on changed.

The empirical pass decodes ``samples`` images per split; in a pre-commit hook
that would be every commit. A measurement is reused only when its key matches,
and the key covers everything the numbers depend on:

* each sampled file's resolved path, size and ``mtime_ns`` (a ``stat``, no read);
* the split's manifest entry, its length and the sample/determinism counts;
* the pipeline's structural fingerprint (:mod:`.fingerprint`), which
  also covers the source of the project modules its steps come from;
* the versions of Python, torch, torchvision, numpy, Pillow and this format.

A split whose samples are not files (callable datasets) or whose pipeline cannot
be fingerprinted is measured every time. One small JSON file per (manifest,
split) keeps the cache bounded; it is written to a temporary file and renamed,
so an interrupted run leaves the previous entry or none, never half of one.
"""

from __future__ import annotations

import json
import os
import platform
from collections import Counter
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import xxhash

from auditor_plugins.common.json_entries import read_entry, write_entry
from auditor_plugins.transform_parity.fingerprint import Uncacheable, fingerprint
from auditor_plugins.transform_parity.stats import Measured, spread_indices

__all__ = ["CacheEntry", "MeasureCache"]

#: Bump when the measurement or its serialization changes meaning.
FORMAT_VERSION = 1
_SUBFOLDER = "transform_parity"


@dataclass
class CacheEntry:
    """Where one split's measurement lives, and the key it must carry to be reused."""

    path: Path
    key: str


class MeasureCache:
    """The measurement cache in ``folder`` for the manifest ``manifest_path``."""

    def __init__(self, folder: Path, manifest_path: Path, project_dirs: list[str]) -> None:
        self.folder = folder / _SUBFOLDER
        self.manifest_path = manifest_path
        self.project_dirs = project_dirs
        self.problem: str | None = None

    def entry(self, split: Any, transform: Any, count: int, check_determinism: int) -> CacheEntry | str:
        """The entry for this measurement, or why it cannot be cached."""
        paths = split.path_strings()
        if paths is None:
            return "samples are not files"
        try:
            pipeline = fingerprint(transform, project_dirs=self.project_dirs)
        except Uncacheable as exc:
            return f"pipeline not cacheable ({exc})"
        files = []
        for index in spread_indices(len(split), count):
            try:
                info = os.stat(paths[index])
            except OSError:
                return "a sampled file cannot be read"  # measured, so the error is reported
            files.append([os.path.realpath(paths[index]), info.st_size, info.st_mtime_ns])
        key = json.dumps(
            {
                "format": FORMAT_VERSION,
                "versions": _versions(),
                "manifest": str(self.manifest_path),
                "split": split.name,
                "config": split.spec.config,
                "length": len(split),
                "count": count,
                "check_determinism": check_determinism,
                "loader": fingerprint(type(split)),
                "pipeline": pipeline,
                "files": files,
            },
            sort_keys=True,
            default=repr,
        )
        name = xxhash.xxh3_64_hexdigest(f"{self.manifest_path}\0{split.name}".encode())
        return CacheEntry(self.folder / f"{name}.json", xxhash.xxh3_128_hexdigest(key.encode()))

    def load(self, entry: CacheEntry) -> Measured | None:
        """The stored measurement when its key matches; ``None`` for a miss or an unreadable file."""
        return read_entry(entry.path, entry.key, "measured", _from_dict)

    def store(self, entry: CacheEntry, measured: Measured) -> None:
        try:
            write_entry(self.folder.parent, entry.path, entry.key, "measured", _to_dict(measured))
        except OSError as exc:
            self.problem = f"measurement cache not written: {exc}"


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


def _to_dict(measured: Measured) -> dict[str, Any]:
    return {
        "split": measured.split,
        "indices": measured.indices,
        "measured": measured.measured,
        "shapes": [[list(shape), n] for shape, n in measured.shapes.items()],
        "dtypes": dict(measured.dtypes),
        "output_types": dict(measured.output_types),
        "mean": measured.mean,
        "std": measured.std,
        "min": measured.min,
        "max": measured.max,
        "errors": measured.errors,
        "nondeterministic": measured.nondeterministic,
    }


def _from_dict(data: dict[str, Any]) -> Measured:
    return Measured(
        split=data["split"],
        indices=list(data["indices"]),
        measured=int(data["measured"]),
        shapes=Counter({tuple(shape): int(n) for shape, n in data["shapes"]}),
        dtypes=Counter(data["dtypes"]),
        output_types=Counter(data["output_types"]),
        mean=list(data["mean"]),
        std=list(data["std"]),
        min=list(data["min"]),
        max=list(data["max"]),
        errors=list(data["errors"]),
        nondeterministic=data["nondeterministic"],
    )
