"""Reuse transform_parity's measurement of a split when nothing it depends on changed.

The empirical pass decodes ``samples`` images per split; in a pre-commit hook
that would be every commit. A measurement is reused only when its key matches;
the key (:mod:`auditor_plugins.common.sample_cache`) covers the sampled files,
the split's entry, the pipeline's fingerprint and the library versions.

One small JSON file per (manifest, split) keeps the cache bounded; it is
written to a temporary file and renamed, so an interrupted run leaves the
previous entry or none, never half of one.
"""

from __future__ import annotations

from collections import Counter
from pathlib import Path
from typing import Any

from auditor_plugins.common.json_entries import read_entry, write_entry
from auditor_plugins.common.sample_cache import CacheEntry, SampleKeys
from auditor_plugins.transform_parity.stats import Measured

__all__ = ["MeasureCache"]

#: Bump when the measurement or its serialization changes meaning.
FORMAT_VERSION = 1
_SUBFOLDER = "transform_parity"


class MeasureCache:
    """The measurement cache in ``folder`` for the manifest ``manifest_path``."""

    def __init__(self, folder: Path, manifest_path: Path, project_dirs: list[str]) -> None:
        self.folder = folder / _SUBFOLDER
        self._keys = SampleKeys(self.folder, manifest_path, project_dirs, FORMAT_VERSION)
        self.problem: str | None = None

    def entry(self, split: Any, transform: Any, count: int, check_determinism: int) -> CacheEntry | str:
        """The entry for this measurement, or why it cannot be cached."""
        return self._keys.entry(split, transform, count, check_determinism)

    def load(self, entry: CacheEntry) -> Measured | None:
        """The stored measurement when its key matches; ``None`` for a miss or an unreadable file."""
        return read_entry(entry.path, entry.key, "measured", _from_dict)

    def store(self, entry: CacheEntry, measured: Measured) -> None:
        try:
            write_entry(self.folder.parent, entry.path, entry.key, "measured", _to_dict(measured))
        except OSError as exc:
            self.problem = f"measurement cache not written: {exc}"


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
