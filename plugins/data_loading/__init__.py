"""data_loading: can every split deliver batches the way the run's DataLoader builds them (DL001-DL003,
DL007), and do the objects the training loop iterates do what training needs (DL010-DL016)?

It also words the failures of user code the host catches anywhere in a run (DL004-DL006, DL008:
``auditor_user_code_failed``), since loading the run's objects is where they show.

For each split, ``samples`` samples spread over it are loaded exactly as training
loads them (the format's ``__getitem__`` with the manifest's transform), and the
ones that load are collated together with the split's collate function
(``data.<split>.collate_fn``, else torch's ``default_collate``). Files a split
lists are checked for existence (a ``stat`` each, no read). A failure that would
stop training becomes an error before training: DL001 (cannot batch), DL002
(some samples raise), DL003 (no sample loads), DL007 (a symlinked folder that
leads back above itself, which ImageFolder would walk forever). torch is imported
only when the audit runs.

Then the loop's own objects, where the run has them (a ``callable`` split's dataset, a
DataLoader handed to ``auditor.check``, a ``data.train.sampler`` factory): splits that are
views of one dataset object (DL010), the sampler counted over one real pass (DL011-DL014),
a last batch of one sample into BatchNorm (DL015), workers that draw the same augmentation
(DL016). Splits a format builds itself cost nothing here.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

from auditor import Audit, AuditContext, Finding, SkipAudit, hookimpl
from auditor_plugins.data_loading.codes import CODES

VERSION = "1.0.0"

OPTIONS_SCHEMA: dict[str, Any] = {
    "type": "object",
    "additionalProperties": False,
    "properties": {
        "samples": {
            "type": "integer",
            "minimum": 1,
            "maximum": 100000,
            "default": 64,
            "description": "samples per split loaded through the transform and collated together",
        },
        "draws": {
            "type": "integer",
            "minimum": 2,
            "maximum": 20,
            "default": 3,
            "description": "reads of one training sample when two splits share a dataset (does its pipeline vary?)",
        },
        "check_files": {
            "type": "boolean",
            "default": True,
            "description": "stat every local file a split lists to find missing ones",
        },
    },
}


def run(ctx: AuditContext) -> Iterator[Finding]:
    if not ctx.splits:
        raise SkipAudit("the manifest has no data splits")
    from auditor_plugins.data_loading.check import check_split, raw_images

    samples = int(ctx.options["samples"])
    total = sum(min(samples, len(s)) for s in ctx.splits.values())
    per_split: dict[str, Any] = {}
    cache = _cache(ctx)
    reuse: dict[str, str] = {}
    with ctx.progress("loading samples", total or None) as task:
        for name, split in ctx.splits.items():
            yield from _link_loops(ctx, split)
            if not len(split):
                ctx.note(f"'{name}' is empty: nothing to load{ctx.see('LD006')}")
                continue
            result, reuse[name] = check_split(
                split, samples, bool(ctx.options["check_files"]), advance=task.advance, cache=cache
            )
            if raw_images(split):
                ctx.note(
                    f"'{name}' declares no transform: its samples were loaded but not batched (training "
                    f"transforms them somehow); set {split.location}.transform to check batching (DL001)"
                )
            per_split[name] = result.to_dict()
            yield from result.findings(ctx)
    ctx.evidence["splits"] = per_split
    ctx.evidence["cache"] = reuse
    yield from _loop_objects(ctx)
    if cache is not None and cache.problem:
        ctx.note(cache.problem)


def _link_loops(ctx: AuditContext, split: Any) -> Iterator[Finding]:
    """DL007 for each symlinked folder of the split that leads back above itself (not followed)."""
    from auditor.kit import display_path

    loops = sorted(split.link_loops(), key=lambda loop: loop["link"])
    if not loops:
        return
    first = loops[0]
    more = f" (and {len(loops) - 1} more)" if len(loops) > 1 else ""
    yield ctx.finding(
        "DL007",
        f"'{split.name}': {display_path(first['link'])} is a symbolic link to {first['target']}, which "
        f"leads back to {display_path(first['revisits'])}{more}: torchvision's ImageFolder walks with "
        "os.walk(followlinks=True) and would loop through it, listing the same folder ever deeper; "
        "auditor left the link out of the listing",
        hint="remove the link (rm on the link itself, never rm -r) or point it outside the class folder",
        location=split.location,
        evidence={"split": split.name, "loops": loops[:20], "count": len(loops)},
    )


def _loop_objects(ctx: AuditContext) -> Iterator[Finding]:
    """The checks of what the training loop iterates (DL010-DL016)."""
    from auditor_plugins.data_loading.last_batch import check_last_batch
    from auditor_plugins.data_loading.sampler import check_sampler
    from auditor_plugins.data_loading.shared import check_shared
    from auditor_plugins.data_loading.workers import check_workers

    yield from check_shared(ctx, int(ctx.options["draws"]))
    yield from check_sampler(ctx)
    yield from check_last_batch(ctx)
    yield from check_workers(ctx)


def _cache(ctx: AuditContext) -> Any:
    """The result cache, so an unchanged split is not decoded again; None when the cache is off or refused."""
    from pathlib import Path

    from auditor_plugins.common.cache_folder import cache_folder
    from auditor_plugins.data_loading.cache import LoadCache

    folder, _ = cache_folder(ctx)
    if folder is None:
        return None
    manifest = ctx.manifest
    return LoadCache(
        folder, Path(manifest.path).resolve(), [str(manifest.base_dir), *manifest.resolver.pythonpath]
    )


AUDIT = Audit(
    name="data_loading",
    version=VERSION,
    prefix="DL",
    codes=CODES,
    run=run,
    options_schema=OPTIONS_SCHEMA,
    needs=frozenset({"data"}),
    description="loads and collates samples of every split as the DataLoader would (unbatchable or unreadable "
    "data, link loops), the loop's own objects (shared datasets, samplers, a last batch of one, worker "
    "randomness) and user code that raised, hung or ended the process",
    order=15,
)


@hookimpl
def auditor_audits() -> list[Audit]:
    return [AUDIT]


@hookimpl
def auditor_user_code_failed(failure: Any) -> Finding | None:
    """User code that raised, ended the process, hung or built a meta model: DL004-DL006, DL008."""
    from auditor_plugins.data_loading.user_code import failure_finding

    return failure_finding(failure)
