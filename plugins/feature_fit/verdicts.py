"""feature_fit's verdicts: what the measured features mean for the training plan (FF001-FF005).

Takes the :class:`~auditor_plugins.feature_fit.extract.Extraction` and the model's
trainable set; gives findings with the numbers, and the evidence the HTML chart
reads. Only imported from inside the audit's ``run``.
"""

from __future__ import annotations

import math
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import torch

from auditor import AuditContext, Finding
from auditor_plugins.feature_fit.extract import Extraction
from auditor_plugins.feature_fit.scores import bn_divergence, class_shift, knn_accuracy, logme

__all__ = ["Plan", "bn_gap", "separability", "shift", "strategy"]


@dataclass
class Plan:
    """What trains: the head, the backbone blocks in order, and how much of the backbone is trainable."""

    head: str | None
    blocks: list[tuple[str, int]]
    backbone_params: int
    backbone_trainable: int
    head_trainable: int
    samples_per_class: float
    classes: list[str]

    @property
    def head_only(self) -> bool:
        return self.backbone_params > 0 and self.backbone_trainable == 0 and self.head_trainable > 0

    @property
    def full(self) -> bool:
        return self.backbone_params > 0 and self.backbone_trainable >= 0.9 * self.backbone_params

    def block_of(self, layer: str) -> str | None:
        for name, _ in self.blocks:
            if layer == name or layer.startswith(name + "."):
                return name
        return None


def _names(names: list[str]) -> str:
    return ", ".join(f"`{n}`" for n in names)


# -- FF002 -----------------------------------------------------------------------------


def bn_gap(
    ctx: AuditContext, ext: Extraction, plan: Plan, threshold: float
) -> tuple[list[str], Finding | None]:
    """Divergence per BatchNorm layer on the train sample; returns the blocks with a deep gap and FF002."""
    train = ext.splits.get("train")
    if not ext.bn_layers:
        ctx.note(
            "the model has no BatchNorm layers: the domain gap (FF002) was judged from the features only "
            "(FF001, FF003)"
        )
        return [], None
    if train is None or not train.size:
        return [], None
    rows = []
    for depth, (name, module) in enumerate(ext.bn_layers.items()):
        stats = train.bn.get(name)
        if stats is None or stats.total is None:
            continue
        mean, var = stats.moments()
        value = bn_divergence(mean, var, module.running_mean.cpu(), module.running_var.cpu(), module.eps)
        rows.append(
            {"name": name, "depth": depth, "divergence": round(value, 4), "block": plan.block_of(name)}
        )
    ctx.evidence["bn_divergence"] = rows
    ctx.evidence["bn_threshold"] = threshold
    if not rows:
        return [], None
    # Layers outside every backbone block (a ResNet's bn1, a stem) see the input almost directly;
    # without named blocks, the first layer only.
    early_count = 1
    while early_count < len(rows) and plan.blocks and rows[early_count]["block"] is None:
        early_count += 1
    early, deep = rows[:early_count], rows[early_count:]
    early_gap = [r for r in early if r["divergence"] > threshold]
    deep_gap = [r for r in deep if r["divergence"] > threshold]
    if not early_gap and not deep_gap:
        return [], None
    gap_blocks: list[str] = []
    for row in deep_gap:
        if row["block"] and row["block"] not in gap_blocks:
            gap_blocks.append(row["block"])
    worst = max(early_gap + deep_gap, key=lambda r: r["divergence"])
    parts = []
    if deep_gap:
        parts.append(
            f"{len(deep_gap)} of {len(deep)} deep BatchNorm layers see data far from the statistics stored "
            f"in the weights (largest: '{worst['name']}', divergence {worst['divergence']:.3g}, threshold "
            f"{threshold:g}): a domain gap" + (f" in {_names(gap_blocks)}" if gap_blocks else "")
        )
    if early_gap:
        parts.append(
            f"the input already differs at the first BatchNorm layer{'s' if len(early_gap) > 1 else ''} "
            f"({', '.join(repr(r['name']) for r in early_gap)}, divergence "
            f"{max(r['divergence'] for r in early_gap):.3g}): the input's scale or normalization is not "
            f"what the weights were trained with{ctx.see('TP001', 'TP002', 'TP006')}"
        )
    hints = []
    if deep_gap:
        unfreeze = _from_first(plan, gap_blocks) or [b for b, _ in plan.blocks[-2:]]
        hints.append(
            f"train {_names(unfreeze)} (lower lr than the head) and let their BatchNorm layers re-estimate "
            "statistics on this data (train mode, not frozen in eval); with a frozen backbone, at least "
            "recompute the BatchNorm running statistics on the training data (AdaBN)"
        )
    if early_gap:
        hints.append(
            "normalize inputs with the pretrained weights' mean and std, on the 0..1 scale they expect"
        )
    message = "; ".join(parts)
    finding = ctx.finding(
        "FF002",
        message[0].upper() + message[1:],
        hint="; ".join(hints),
        location="model",
        evidence={
            "layers": rows[:200],
            "threshold": threshold,
            "deep_gap": [r["name"] for r in deep_gap],
            "early_gap": [r["name"] for r in early_gap],
            "input_only": bool(early_gap) and not deep_gap,
            "blocks": gap_blocks,
            "method": "mean per-channel KL(N(data) || N(running statistics)) at each BatchNorm input",
        },
    )
    return gap_blocks, finding


def _from_first(plan: Plan, wanted: list[str]) -> list[str]:
    """The backbone blocks from the earliest of ``wanted`` to the end."""
    order = [name for name, _ in plan.blocks]
    positions = [order.index(b) for b in wanted if b in order]
    return order[min(positions) :] if positions else []


# -- FF001 / FF004 ----------------------------------------------------------------------


def recommend_blocks(plan: Plan, lift: float, gap_blocks: list[str], few: float) -> list[str]:
    """How many trailing blocks to train: more when the features separate less; from the earliest
    gapped block; never more than two on few samples per class (more would overfit them)."""
    order = [name for name, _ in plan.blocks]
    if not order:
        return []
    count = 1 if lift >= 0.5 else 2 if lift >= 0.2 else max(2, math.ceil(len(order) / 2))
    chosen = order[-count:]
    gapped = _from_first(plan, gap_blocks)
    if len(gapped) > len(chosen):
        chosen = gapped
    if plan.samples_per_class < few:
        chosen = chosen[-2:]
    return chosen


def separability(
    ctx: AuditContext, ext: Extraction, plan: Plan, options: dict[str, Any], gap_blocks: list[str]
) -> Iterator[Finding]:
    thresholds = options["thresholds"]
    train = ext.splits.get("train")
    feats = train.matrix() if train is not None else None
    if feats is None or train is None:
        ctx.note("no training features were collected: separability (FF001/FF004) was not judged")
        return
    labels = train.label_tensor()
    counts = torch.bincount(labels)
    present = int((counts > 0).sum())
    if present < 2:
        ctx.note("the training sample holds one class: separability (FF001/FF004) was not judged")
        return
    k = int(options["k"])
    acc = knn_accuracy(feats, labels, k)
    chance = float(counts.max()) / float(counts.sum())
    bar = chance + float(thresholds["separable_lift"]) * (1 - chance)
    lift = (acc.value - chance) / (1 - chance)
    score = logme(feats, labels)
    summary = {
        "method": f"leave-one-out {k}-NN accuracy (cosine, centred features) with a 95% Wilson interval; "
        "LogME (You et al., 2021)",
        "knn": acc.to_dict(),
        "chance": round(chance, 4),
        "lift": round(lift, 4),
        "bar": round(bar, 4),
        "logme": round(score, 4),
        "classes": present,
        "features": int(feats.shape[1]),
        "head_only": plan.head_only,
    }
    ctx.evidence["separability"] = summary
    numbers = (
        f"frozen features reach {acc.value:.0%} {k}-NN accuracy (95% CI {acc.low:.0%}-{acc.high:.0%}, "
        f"{acc.total} samples) on {present} classes, chance {chance:.0%}; LogME {score:.3g}"
    )
    ctx.note(numbers)
    few = float(thresholds["few_samples_per_class"])
    blocks = recommend_blocks(plan, lift, gap_blocks, few)
    if acc.high < bar:
        if plan.head_only:
            extra = (
                f" (few samples: {plan.samples_per_class:.0f} per class, so no more than that)"
                if plan.samples_per_class < few
                else ""
            )
            yield ctx.finding(
                "FF001",
                f"only the head '{plan.head}' trains, and the {numbers}: a head on these features will "
                "plateau near chance",
                hint=(
                    f"unfreeze {_names(blocks)}{extra} with a lower learning rate than the head (commonly 10x "
                    "lower, in its own param group), or use a backbone pretrained on data closer to yours"
                    if blocks
                    else "fine-tune the backbone with a lower learning rate than the head, or use a backbone "
                    "pretrained on data closer to yours"
                ),
                location="model",
                evidence={
                    **summary,
                    "unfreeze": blocks,
                    "samples_per_class": round(plan.samples_per_class, 1),
                },
            )
        else:
            ctx.note(
                "the frozen features barely separate the classes; the backbone trains, so fine-tuning "
                f"{'it' if plan.full else 'its trainable blocks'} has to build what is missing"
            )
    elif acc.low >= bar:
        if plan.head_only:
            yield ctx.finding(
                "FF004",
                f"the {numbers}: training only the head '{plan.head}' is a sound first stage",
                hint="train the head first; if accuracy plateaus, unfreeze "
                + (_names(blocks) if blocks else "the last backbone block")
                + " with a 10x lower learning rate",
                location="model",
                evidence=summary,
            )
        else:
            ctx.note(
                "the frozen features separate the classes well: a linear probe alone is a sound first stage"
            )
    else:
        ctx.note(
            f"the sample is too small to tell whether the frozen features separate the classes well: the "
            f"interval includes the bar of {bar:.0%}; raise per_class / max_samples for a verdict"
        )


# -- FF003 ------------------------------------------------------------------------------


def shift(
    ctx: AuditContext, ext: Extraction, class_names: list[str], options: dict[str, Any]
) -> Iterator[Finding]:
    train = ext.splits.get("train")
    if train is None or not train.size:
        return
    limit = float(options["thresholds"]["shift_accuracy"])
    base, base_labels = train.matrix(), train.label_tensor()
    rows = {}
    for name, split in ext.splits.items():
        if name == "train" or not split.size:
            continue
        other = split.matrix()
        assert base is not None and other is not None
        acc, per_class = class_shift(base, base_labels, other, split.label_tensor())
        if not acc.total:
            ctx.note(
                f"too few samples per class in {name!r} to compare it with train in feature space (FF003)"
            )
            continue
        named = [{**row, "class": class_names[row["class"]]} for row in per_class]
        rows[name] = {**acc.to_dict(), "classes": named[:20]}
        if acc.low > limit:
            top = ", ".join(f"'{r['class']}' ({r['accuracy']:.0%})" for r in named[:3])
            yield ctx.finding(
                "FF003",
                f"a classifier tells '{name}' from 'train' samples of the same class by their features "
                f"{acc.value:.0%} of the time (95% CI {acc.low:.0%}-{acc.high:.0%}, {acc.total} samples; 50% "
                f"means indistinguishable); most different classes: {top}",
                hint=f"'{name}' does not come from the training distribution: check how it was collected and "
                "preprocessed (camera, resolution, colour, transform); if the difference is real, add training "
                "data like it, or evaluate on a split drawn like train",
                location=f"data.{name}",
                evidence={
                    "split": name,
                    **acc.to_dict(),
                    "threshold": limit,
                    "classes": named[:20],
                    "method": "per-class leave-one-out nearest-centroid domain classifier on standardised frozen features",
                },
            )
    if rows:
        ctx.evidence["shift"] = rows


# -- FF005 ------------------------------------------------------------------------------


def strategy(
    ctx: AuditContext, plan: Plan, augmented: bool | None, decay: bool | None, options: dict[str, Any]
) -> Iterator[Finding]:
    thresholds = options["thresholds"]
    few = float(thresholds["few_samples_per_class"])
    many = float(thresholds["many_parameters"])
    trainable = plan.backbone_trainable + plan.head_trainable
    ctx.evidence["strategy"] = {
        "trainable": trainable,
        "backbone_trainable": plan.backbone_trainable,
        "backbone": plan.backbone_params,
        "samples_per_class": round(plan.samples_per_class, 1),
        "random_augmentation": augmented,
        "weight_decay": decay,
    }
    if not (plan.full and trainable >= many and plan.samples_per_class < few):
        return
    if augmented is None or decay is None:
        ctx.note(
            "a full fine-tune on few samples per class, but whether training uses random augmentation and "
            "weight decay could not be read: FF005 was not judged"
        )
        return
    if augmented or decay:
        return
    last = [b for b, _ in plan.blocks[-2:]]
    yield ctx.finding(
        "FF005",
        f"all {trainable:,} parameters train on {plan.samples_per_class:.0f} samples per class (median of "
        f"{len(plan.classes)} classes), with no random augmentation in the training transform and no weight "
        "decay: the model can memorise the training set and validation loss will climb",
        hint=(
            f"train only the last blocks ({_names(last)}) and the head, "
            if last
            else "freeze most of the backbone, "
        )
        + "add random augmentation (RandomResizedCrop, RandomHorizontalFlip) and weight decay "
        "(e.g. AdamW(weight_decay=0.05)), and stop on validation loss",
        location="model",
        evidence={**ctx.evidence["strategy"], "few_samples_per_class": few, "many_parameters": many},
    )
