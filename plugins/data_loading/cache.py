"""Reuse data_loading's result for a split when nothing it depends on changed.

Keyed like transform_parity's measurement cache (:mod:`auditor_plugins.common.sample_cache`:
each sampled file's path, size and mtime, the split's manifest entry and length, the sample
count, library versions, the loader's code), with the fingerprint taken over the transform
*and* the collate function, tagged so the two caches never share an entry. A
warm re-run of an unchanged project therefore opens no image (the pre-commit
hook's promise); the missing-file check is a ``stat`` per file and always runs.
Splits that are not files (callable datasets) or whose pipeline cannot be
fingerprinted are loaded every time.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from auditor_plugins.common.batching import CollateProblem
from auditor_plugins.common.json_entries import read_entry, write_entry
from auditor_plugins.common.sample_cache import CacheEntry, SampleKeys
from auditor_plugins.data_loading.check import SplitCheck

__all__ = ["LoadCache"]

#: Bump when what is stored, or what it means, changes.
FORMAT_VERSION = 1
#: The version the entry keys were made with (the key layout of the shared sample cache).
_KEY_VERSION = 1
_SUBFOLDER = "data_loading"


class LoadCache:
    def __init__(self, folder: Path, manifest_path: Path, project_dirs: list[str]) -> None:
        self.folder = folder / _SUBFOLDER
        self._keys = SampleKeys(self.folder, manifest_path, project_dirs, _KEY_VERSION)
        self.problem: str | None = None

    def entry(self, split: Any, collate_fn: Any, samples: int) -> CacheEntry | str:
        tagged = (f"data_loading/{FORMAT_VERSION}", split.transform, collate_fn)
        return self._keys.entry(split, tagged, samples, 0)

    def load(self, entry: CacheEntry) -> SplitCheck | None:
        return read_entry(entry.path, entry.key, "result", _from_dict)

    def store(self, entry: CacheEntry, result: SplitCheck) -> None:
        try:
            write_entry(self.folder.parent, entry.path, entry.key, "result", _to_dict(result))
        except OSError as exc:
            self.problem = f"data_loading cache not written: {exc}"


def _to_dict(result: SplitCheck) -> dict[str, Any]:
    problem = result.problem
    return {
        "checked": result.checked,
        "loaded": [index for index, _, _ in result.loaded],
        "failures": result.failures,
        "collate": result.collate,
        "signatures": result.signatures,
        "problem": None
        if problem is None
        else {
            "error": problem.error,
            "collate": problem.collate,
            "groups": [[sig, idx] for sig, idx in problem.groups.items()],
        },
    }


def _from_dict(data: dict[str, Any]) -> SplitCheck:
    problem = data["problem"]
    return SplitCheck(
        split=None,
        checked=[int(i) for i in data["checked"]],
        loaded=[(int(i), None, None) for i in data["loaded"]],
        failures=list(data["failures"]),
        collate=str(data["collate"]),
        signatures={str(k): int(v) for k, v in data["signatures"].items()},
        problem=None
        if problem is None
        else CollateProblem(
            str(problem["error"]),
            str(problem["collate"]),
            {str(sig): [int(i) for i in idx] for sig, idx in problem["groups"]},
        ),
    )
