"""DL010: the training split and an evaluation split read one dataset object, or one random transform object.

``train, val = random_split(ImageFolder(root, transform=train_tf), ...)`` followed by
``val.dataset.transform = eval_tf`` changes both splits: they are views of one object with one
transform. Which way it went is measured, not guessed: the same training sample is drawn a few
times, and a pipeline whose draws never vary means training runs without augmentation; draws that
vary mean the evaluation split is read through the random training pipeline.
Two separate dataset objects that hold one transform object are reported only when that shared
pipeline is random (evaluation augmented); one deterministic pipeline for every split is a valid choice.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

from auditor import AuditContext, Finding
from auditor.kit import DeadlineExceeded
from auditor_plugins.data_loading.objects import (
    dataset_of,
    describe_transform,
    draw,
    leaves,
    private_copy,
    random_steps,
    same_output,
    transform_of,
)

__all__ = ["check_shared"]

_FIX = (
    "build one dataset object per pipeline and split the indices, not the object: "
    "train_ds = ImageFolder(root, transform=train_tf); val_ds = ImageFolder(root, transform=eval_tf); "
    "idx = torch.randperm(len(train_ds)); train = Subset(train_ds, idx[:n]); val = Subset(val_ds, idx[n:])"
)


def check_shared(ctx: AuditContext, draws: int) -> Iterator[Finding]:
    train = ctx.train
    if train is None:
        return
    train_dataset = dataset_of(train)
    if train_dataset is None:
        return
    train_views = list(leaves(train_dataset))
    for other in ctx.eval_splits:
        other_dataset = dataset_of(other)
        if other_dataset is None:
            continue
        other_views = list(leaves(other_dataset))
        shared = _shared_object(train_views, other_views)
        if shared is not None:
            yield from _report(ctx, train, other, shared, draws, one_object=True)
            continue
        shared = _shared_transform(train_views, other_views)
        if shared is not None:
            yield from _report(ctx, train, other, shared, draws, one_object=False)


def _shared_object(ours: list[Any], theirs: list[Any]) -> tuple[Any, Any, Any] | None:
    """(train's view, the other split's view, transform) of a dataset object both read through its transform."""
    for view in ours:
        transform = transform_of(view.leaf)
        if transform is None:
            continue  # a bare dataset split by index: each split may wrap it in its own pipeline
        for other in theirs:
            if other.leaf is view.leaf:
                return view, other, transform
    return None


def _shared_transform(ours: list[Any], theirs: list[Any]) -> tuple[Any, Any, Any] | None:
    for view in ours:
        transform = transform_of(view.leaf)
        if transform is None:
            continue
        for other in theirs:
            if transform_of(other.leaf) is transform:
                return view, other, transform
    return None


def _report(
    ctx: AuditContext, train: Any, other: Any, shared: tuple[Any, Any, Any], draws: int, *, one_object: bool
) -> Iterator[Finding]:
    ours, theirs, transform = shared
    steps = random_steps(transform)
    varies, drawn = _draws_vary(train, draws)
    if not one_object and varies is not True:
        return  # two datasets, one deterministic pipeline for both: a valid choice
    pipeline = describe_transform(transform)
    if one_object:
        what = (
            f"'{train.name}' ({ours.path}) and '{other.name}' ({theirs.path}) are views of one "
            f"{type(ours.leaf).__name__} object, so both read it through its one transform, {pipeline}"
        )
    else:
        what = (
            f"'{train.name}' ({ours.path}) and '{other.name}' ({theirs.path}) hold one transform object, "
            f"{pipeline}: a change made for one split (.transform.transforms[...] = ...) reaches both"
        )
    if varies is True:
        effect = (
            f"{drawn} draws of {train.name}[0] differ ({', '.join(steps) or 'a random step'}): '{other.name}' is "
            "evaluated through the random training pipeline, so its metrics are noisy and biased"
        )
    elif varies is False:
        effect = f"{drawn} draws of {train.name}[0] are identical: training runs without augmentation" + (
            f" although the pipeline names {', '.join(steps)}" if steps else ""
        )
    else:
        effect = f"whichever pipeline is set last applies to both splits ({drawn})"
    yield ctx.finding(
        "DL010",
        f"{what}; {effect}",
        hint=_FIX,
        location=train.location,
        evidence={
            "splits": [train.name, other.name],
            "shared": "dataset" if one_object else "transform",
            "dataset": type(ours.leaf).__name__,
            "views": {train.name: ours.path, other.name: theirs.path},
            "transform": pipeline,
            "random_steps": steps,
            "draws": drawn if isinstance(drawn, int) else 0,
            "draws_vary": varies,
        },
    )


def _draws_vary(train: Any, draws: int) -> tuple[bool | None, Any]:
    """Whether ``draws`` reads of the first training sample differ (None with the reason when none read)."""
    dataset = dataset_of(train)
    if dataset is None or not len(train):
        return None, "no training sample to draw"
    copy = private_copy(dataset)
    outputs = []
    try:
        for attempt in range(max(2, draws)):
            item = draw(train, copy, 0, f"drawing sample 0 of split {train.name!r} (draw {attempt + 1})")
            outputs.append(item[0] if isinstance(item, (tuple, list)) and item else item)
    except DeadlineExceeded:
        raise
    except Exception as exc:
        return None, f"sample 0 could not be read: {type(exc).__name__}: {exc}"[:200]
    varies = any(not same_output(outputs[0], later) for later in outputs[1:])
    return varies, len(outputs)
