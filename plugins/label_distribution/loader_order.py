"""LD010: a training loader that reads label-ordered samples in order, so batches hold one class.

The order is the split's own (an ImageFolder lists class by class); whether training
shuffles comes from the real DataLoader given to ``auditor.check`` (its sampler) or from
the manifest's ``data.train.shuffle`` (default true).
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

from auditor import AuditContext, Finding

__all__ = ["check_loader_order", "single_class_batches"]

#: Batch size assumed when the training loader's own is unknown (the manifest names no loader).
_DEFAULT_BATCH = 32
#: Share of single-class batches at which the order is reported.
_SHARE = 0.5


def single_class_batches(targets: list[Any], batch_size: int) -> tuple[int, int]:
    """(batches holding one class, batches) when ``targets`` are read in order in batches of ``batch_size``."""
    batches = [targets[i : i + batch_size] for i in range(0, len(targets), batch_size)]
    single = sum(1 for batch in batches if len({_key(t) for t in batch}) == 1)
    return single, len(batches)


def _key(target: Any) -> Any:
    return tuple(target) if isinstance(target, (list, tuple)) else target


def check_loader_order(ctx: AuditContext) -> Iterator[Finding]:
    train = ctx.train
    if train is None or train.spec.config.get("shuffle", True) is not False:
        return
    targets = list(train.targets())
    if len({_key(t) for t in targets}) < 2:
        return
    batch_size = train.batch_size or _DEFAULT_BATCH
    single, batches = single_class_batches(targets, batch_size)
    if batches < 2 or single / batches < _SHARE:
        return
    loader = (
        "the training DataLoader (a SequentialSampler: shuffle=False)"
        if train.batch_size is not None
        else f"{train.location} (shuffle: false)"
    )
    yield ctx.finding(
        "LD010",
        f"{loader} reads 'train' in stored order, which is sorted by label: {single} of {batches} batches "
        f"of {batch_size} hold a single class",
        hint="shuffle the training data: DataLoader(train, batch_size=..., shuffle=True) (and `shuffle: true` "
        "for the split in the manifest); BatchNorm statistics and every gradient step then see all classes",
        location=train.location,
        evidence={"batch_size": batch_size, "single_class_batches": single, "batches": batches},
    )
