"""One split through the run's loading path: load spread samples, stat listed files, collate what loaded."""

from __future__ import annotations

import os
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import Any

from auditor import AuditContext, Finding
from auditor.kit import DeadlineExceeded
from auditor_plugins.common.batching import CollateProblem, collate_name, sample_paths, signature, try_collate
from auditor_plugins.common.sample_cache import spread_indices

__all__ = ["SplitCheck", "check_split"]


@dataclass
class SplitCheck:
    split: Any
    checked: list[int] = field(default_factory=list)
    loaded: list[tuple[int, Any, Any]] = field(default_factory=list)
    failures: list[dict[str, Any]] = field(default_factory=list)
    #: indices of listed local files that do not exist (all of the split, not only the sampled ones)
    missing: list[int] = field(default_factory=list)
    files_checked: int = 0
    collate: str = "default_collate"
    problem: CollateProblem | None = None
    signatures: dict[str, int] = field(default_factory=dict)
    paths: list[str] | None = None

    def _where(self, index: int) -> str:
        if self.paths is not None and 0 <= index < len(self.paths):
            return f"sample {index} ({self.paths[index]})"
        return f"sample {index}"

    def to_dict(self) -> dict[str, Any]:
        return {
            "checked": len(self.checked),
            "loaded": len(self.loaded),
            "failed": len(self.failures),
            "failures": self.failures[:10],
            "files_checked": self.files_checked,
            "missing_files": len(self.missing),
            "collate_fn": self.collate,
            "signatures": self.signatures,
            "collate_problem": self.problem.to_dict(self.paths) if self.problem else None,
        }

    def findings(self, ctx: AuditContext) -> Iterator[Finding]:
        split = self.split
        name = split.name
        everything_missing = bool(self.paths) and len(self.missing) == len(self.paths)
        if not self.loaded or everything_missing:
            yield self._dl003(ctx, everything_missing)
            return
        if self.failures or self.missing:
            yield self._dl002(ctx)
        if self.problem is not None:
            problem = self.problem
            yield ctx.finding(
                "DL001",
                f"'{name}': the {len(self.loaded)} samples loaded cannot be batched by {problem.collate} "
                f"({problem.error.splitlines()[0]}): {problem.describe(self.paths)}",
                hint=problem.hint(),
                location=split.location,
                evidence={"split": name, **problem.to_dict(self.paths)},
            )

    def _dl003(self, ctx: AuditContext, everything_missing: bool) -> Finding:
        split = self.split
        first = self.failures[0] if self.failures else None
        if everything_missing:
            what = f"none of the {len(self.paths or [])} files it lists exists (first: {self.paths[0]})"  # type: ignore[index]
        else:
            what = (
                (
                    f"all {len(self.checked)} samples checked failed to load (first: {self._where(first['index'])}: "
                    f"{first['error']})"
                )
                if first
                else "no sample loaded"
            )
        return ctx.finding(
            "DL003",
            f"'{split.name}' cannot deliver a single batch: {what}",
            hint="check the split's paths (root, the path column and root of a table: relative paths are read "
            "relative to root, default the table's folder) and its transform",
            location=split.location,
            evidence={
                "split": split.name,
                "checked": len(self.checked),
                "failures": self.failures[:10],
                "missing_files": len(self.missing),
                "files": len(self.paths or []),
            },
        )

    def _dl002(self, ctx: AuditContext) -> Finding:
        split = self.split
        parts = []
        if self.failures:
            first = self.failures[0]
            parts.append(
                f"{len(self.failures)} of {len(self.checked)} samples checked fail to load (first: "
                f"{self._where(first['index'])}: {first['error']})"
            )
        if self.missing:
            shown = ", ".join(self.paths[i] for i in self.missing[:3])  # type: ignore[index]
            parts.append(
                f"{len(self.missing)} of the {self.files_checked} files it lists do not exist ({shown}"
                f"{' ...' if len(self.missing) > 3 else ''})"
            )
        return ctx.finding(
            "DL002",
            f"'{split.name}': " + "; ".join(parts) + "; the DataLoader stops at the first of them",
            hint="restore or re-encode these files, or drop their rows; when the transform raises, fix the step "
            "the error names",
            location=split.location,
            evidence={
                "split": split.name,
                "failures": self.failures[:20],
                "failed": len(self.failures),
                "checked": len(self.checked),
                "missing": [self.paths[i] for i in self.missing[:20]]  # type: ignore[index]
                if self.missing
                else [],
                "missing_count": len(self.missing),
            },
        )


def raw_images(split: Any) -> bool:
    """A file-backed split without a declared transform: its samples are decoded images that training
    transforms in some way the manifest does not say, so batching them says nothing about the run."""
    return split.transform is None and split.spec.config.get("format") in ("image_folder", "csv")


def check_split(
    split: Any,
    samples: int,
    check_files: bool,
    advance: Callable[[int], None] | None = None,
    cache: Any = None,
) -> tuple[SplitCheck, str]:
    """The split's check, and ``reused``, ``loaded`` or why no cache was used."""
    result = SplitCheck(split)
    result.paths = sample_paths(split)
    listed = split.path_strings()
    if check_files and listed is not None:
        local = [(i, p) for i, p in enumerate(listed) if "://" not in p]
        result.files_checked = len(local)
        result.missing = [i for i, p in local if not os.path.exists(p)]  # a stat each, no read
    collate_fn = split.training_collate()
    entry = cache.entry(split, collate_fn, samples) if cache is not None else "cache disabled"
    if not isinstance(entry, str):
        stored = cache.load(entry)
        if stored is not None:
            stored.split, stored.paths = split, result.paths
            stored.missing, stored.files_checked = result.missing, result.files_checked
            if advance:
                advance(len(stored.checked))
            return stored, "reused"
    _load_and_collate(result, split, collate_fn, samples, advance)
    if not isinstance(entry, str):
        cache.store(entry, result)
        return result, "loaded"
    return result, entry


def _load_and_collate(
    result: SplitCheck, split: Any, collate_fn: Any, samples: int, advance: Callable[[int], None] | None
) -> None:
    result.checked = spread_indices(len(split), samples)  # the samples the cache key names
    signatures: dict[str, int] = {}
    for index in result.checked:
        try:
            # What the training DataLoader gets from the dataset (the collate function's input).
            item = split.training_item(index)
        except DeadlineExceeded:
            # The next sample could hang as long: the audit stops here, errored, naming this one.
            raise
        except Exception as exc:
            result.failures.append(
                {
                    "index": index,
                    "path": _path(result.paths, index),
                    "error": f"{type(exc).__name__}: {exc}"[:300],
                }
            )
        else:
            value = item[0] if isinstance(item, (tuple, list)) and item else item
            result.loaded.append((index, value, item))
            sig = signature(value)
            signatures[sig] = signatures.get(sig, 0) + 1
        if advance:
            advance(1)
    result.signatures = dict(sorted(signatures.items(), key=lambda kv: -kv[1]))
    result.collate = collate_name(collate_fn)
    if result.loaded and not raw_images(split):
        # All loaded samples at once: with shuffling any two of them may share a batch.
        # A custom collate function is user code: it runs under the call deadline like __getitem__.
        _, result.problem = split.call(
            try_collate,
            result.loaded,
            collate_fn,
            what=f"the collate function {result.collate} on {len(result.loaded)} samples of split {split.name!r}",
        )
    result.loaded = [(index, None, None) for index, _, _ in result.loaded]  # keep no decoded samples around


def _path(paths: list[str] | None, index: int) -> str | None:
    return paths[index] if paths is not None and 0 <= index < len(paths) else None
