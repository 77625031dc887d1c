"""label_distribution: class balance, coverage and drift across splits, class index maps and label cells (LD001-LD012).

Counting labels decodes no image: formats read labels from folder names,
table columns or dataset attributes.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator, Mapping
from typing import Any

from auditor import Audit, AuditContext, Finding, hookimpl
from auditor_plugins.label_distribution.codes import CODES

VERSION = "1.1.0"


OPTIONS_SCHEMA: dict[str, Any] = {
    "type": "object",
    "additionalProperties": False,
    "properties": {
        "max_imbalance_ratio": {
            "type": "number",
            "exclusiveMinimum": 1,
            "default": 10,
            "description": "largest/smallest training class count above which LD001 fires",
        },
        "min_samples_per_class": {"type": "integer", "minimum": 1, "default": 10},
        "max_label_drift": {
            "type": "number",
            "minimum": 0,
            "maximum": 1,
            "default": 0.15,
            "description": "total variation distance between train and an evaluation split",
        },
    },
}

#: Loss attributes that carry a class weighting when set.
_WEIGHT_ATTRIBUTES = ("pos_weight", "class_weight", "class_weights", "alpha")


def total_variation(p: Mapping[str, int], q: Mapping[str, int]) -> float:
    """Total variation distance between two count tables (0 = identical proportions)."""
    p_total, q_total = sum(p.values()), sum(q.values())
    if not p_total or not q_total:
        return 0.0
    return 0.5 * sum(abs(p.get(c, 0) / p_total - q.get(c, 0) / q_total) for c in set(p) | set(q))


def inverse_frequency_weights(counts: Mapping[str, int]) -> dict[str, float]:
    """``w_c = N / (C * n_c)``: weights average to 1 over samples; zero-count classes excluded."""
    present = {c: n for c, n in counts.items() if n > 0}
    total = sum(present.values())
    return {c: round(total / (len(present) * n), 4) for c, n in present.items()}


def run(ctx: AuditContext) -> Iterator[Finding]:
    splits = ctx.splits
    counts: dict[str, dict[str, int]] = {}
    sizes: dict[str, int] = {}
    for name, split in splits.items():
        sizes[name] = len(split)
        label_counts = split.label_counts()
        # Declared classes with no sample still count (as zero): they are the rare ones.
        counts[name] = {c: label_counts.get(c, 0) for c in split.classes()} | label_counts
    ctx.evidence["counts"] = counts
    ctx.evidence["sizes"] = sizes
    ctx.evidence["task"] = ctx.task.type
    from auditor_plugins.label_distribution.label_checks import index_mismatches, label_problems
    from auditor_plugins.label_distribution.loader_order import check_loader_order
    from auditor_plugins.label_distribution.loss_weights import check_loss_weights
    from auditor_plugins.label_distribution.model_labels import check_model_labels

    yield from label_problems(ctx)
    yield from check_model_labels(ctx)

    for name, size in sizes.items():
        if size == 0:
            yield ctx.finding(
                "LD006",
                f"split '{name}' is empty",
                hint=f"check {splits[name].location} (path, root, columns, file extensions)",
                location=splits[name].location,
                evidence={"split": name},
            )
    train = ctx.train
    if train is None or sizes.get("train", 0) == 0:
        return
    train_counts = counts["train"]
    present = {c: n for c, n in train_counts.items() if n > 0}
    multilabel = train.multilabel
    if len(present) == 1 and not multilabel:
        only = next(iter(present))
        yield ctx.finding(
            "LD006",
            f"'train' holds a single class ('{only}', {present[only]} samples)",
            hint="a constant target teaches nothing; check that every class folder or label is included",
            location=train.location,
            evidence={"split": "train", "classes": list(present)},
        )
        return

    yield from _imbalance(ctx, train_counts, present, sizes["train"], multilabel)
    yield from check_loss_weights(ctx, train_counts, multilabel)
    yield from check_loader_order(ctx)
    coverage = list(_coverage_and_drift(ctx, counts))
    yield from coverage
    yield from index_mismatches(ctx, {f.evidence["split"]: f for f in coverage if f.code == "LD002"})


def _imbalance(
    ctx: AuditContext,
    train_counts: dict[str, int],
    present: dict[str, int],
    train_size: int,
    multilabel: bool,
) -> Iterator[Finding]:
    options = ctx.options
    location = ctx.train.location if ctx.train else "data.train"
    for name, count in sorted(train_counts.items()):
        if count < options["min_samples_per_class"]:
            yield ctx.finding(
                "LD005",
                f"class '{name}' has {count} training sample{'s' if count != 1 else ''} "
                f"(minimum {options['min_samples_per_class']})",
                hint="collect more samples, merge the class, or oversample it with a weighted sampler",
                location=location,
                evidence={
                    "class": name,
                    "count": count,
                    "min_samples_per_class": options["min_samples_per_class"],
                },
            )
    largest = max(present, key=lambda c: present[c])
    smallest = min(present, key=lambda c: present[c])
    ratio = present[largest] / present[smallest]
    ctx.evidence["imbalance_ratio"] = round(ratio, 4)
    if ratio <= options["max_imbalance_ratio"]:
        return
    weights = inverse_frequency_weights(present)
    ordered = [weights[c] for c in sorted(present, key=lambda c: list(train_counts).index(c))]
    evidence: dict[str, Any] = {
        "counts": train_counts,
        "ratio": round(ratio, 4),
        "largest": largest,
        "smallest": smallest,
        "class_weights": weights,
    }
    task = ctx.task.type
    if multilabel:
        pos_weight = {c: round((train_size - n) / n, 4) for c, n in present.items()}
        evidence["pos_weight"] = pos_weight
        hint = (
            "per-label pos_weight for BCEWithLogitsLoss: "
            f"torch.tensor({[pos_weight[c] for c in present]}) (order {list(present)})"
        )
    elif task == "binary" and len(present) == 2:
        negative, positive = present  # the two keys, in insertion order
        pos_weight = round(present[negative] / present[positive], 4)
        evidence["pos_weight"] = pos_weight
        hint = (
            f"BCEWithLogitsLoss(pos_weight=torch.tensor([{pos_weight}])) with '{positive}' as the "
            f"positive class; or CrossEntropyLoss(weight=torch.tensor({ordered}))"
        )
    else:
        hint = (
            f"CrossEntropyLoss(weight=torch.tensor({ordered})) (inverse class frequency, in class-index "
            "order), or a WeightedRandomSampler"
        )
    if ctx.run.has("loss"):
        from auditor_plugins.label_distribution.loss_weights import loss_class, weighting_hint

        # The fix in the loss's own terms (pos_weight for BCEWithLogitsLoss, weight for CrossEntropyLoss);
        # a loss factory that fails is reported by the audits that need the loss.
        with contextlib.suppress(Exception):
            hint = weighting_hint(ctx, loss_class(ctx.run.loss), present, train_size, multilabel) + (
                ", or a WeightedRandomSampler"
            )
    yield ctx.finding(
        "LD001",
        f"'{largest}' has {present[largest]} training samples, '{smallest}' {present[smallest]}: "
        f"ratio {ratio:.1f} > {options['max_imbalance_ratio']}",
        hint=hint,
        location=location,
        evidence=evidence,
    )
    weighted, how = _loss_is_weighted(ctx)
    if weighted is False:
        from auditor_plugins.label_distribution.loss_weights import loss_class, weighting_hint

        # The hint in the loss's own terms (pos_weight for BCEWithLogitsLoss), whatever the task says.
        hint = weighting_hint(ctx, loss_class(ctx.run.loss), present, train_size, multilabel)
        yield ctx.finding(
            "LD004",
            f"training data is imbalanced (ratio {ratio:.1f}) but {how}",
            hint=hint + "; or declare `sampler: weighted` on data.train if a balancing sampler is used",
            location="loss",
            evidence={
                "ratio": round(ratio, 4),
                "loss": how,
                **{k: evidence[k] for k in ("class_weights", "pos_weight") if k in evidence},
            },
        )
    elif weighted is None and how:
        ctx.note(how)


def _loss_is_weighted(ctx: AuditContext) -> tuple[bool | None, str]:
    """(True, _) weighted; (False, description) unweighted; (None, note) cannot tell."""
    train = ctx.train
    if train is not None and train.spec.config.get("sampler"):
        return True, ""
    if not ctx.run.has("loss"):
        return None, "LD004 not checked: the manifest declares no loss"
    loss = ctx.run.loss
    name = type(loss).__name__
    module = type(loss).__module__
    for attribute in _WEIGHT_ATTRIBUTES:
        if getattr(loss, attribute, None) is not None:
            return True, ""
    if name == "BCELoss":
        # BCELoss's `weight` rescales batch elements; it is never a class weight.
        return False, "the loss is BCELoss, whose `weight` rescales batch elements, not classes"
    if getattr(loss, "weight", None) is not None:
        return True, ""
    if module.startswith("torch.nn"):
        return False, f"the loss {name} has no class weighting and no weighted sampler is declared"
    return None, f"LD004 not checked: cannot tell whether the custom loss {name} weights classes"


def _coverage_and_drift(ctx: AuditContext, counts: dict[str, dict[str, int]]) -> Iterator[Finding]:
    train_counts = counts["train"]
    trained = {c for c, n in train_counts.items() if n > 0}
    drift: dict[str, float] = {}
    for split in ctx.eval_splits:
        eval_counts = counts[split.name]
        if not sum(eval_counts.values()):
            continue
        missing = sorted(c for c, n in eval_counts.items() if n > 0 and c not in trained)
        if missing:
            shown = ", ".join(f"'{c}'" for c in missing[:10])
            yield ctx.finding(
                "LD002",
                f"{len(missing)} class{'es' if len(missing) != 1 else ''} in '{split.name}' never "
                f"appear{'s' if len(missing) == 1 else ''} in 'train': {shown}",
                hint="add training samples for them or drop them from the evaluation split; check that every "
                "split maps class names to the same indices",
                location=split.location,
                evidence={
                    "split": split.name,
                    "classes": missing,
                    "samples": {c: eval_counts[c] for c in missing},
                },
            )
        distance = total_variation(train_counts, eval_counts)
        drift[split.name] = round(distance, 4)
        if distance > ctx.options["max_label_drift"]:
            proportions = {
                name: {c: round(n / max(1, sum(table.values())), 4) for c, n in table.items()}
                for name, table in (("train", train_counts), (split.name, eval_counts))
            }
            # sorted: on a tie the same class is named every run (set order varies per process)
            worst = max(
                sorted(set(train_counts) | set(eval_counts)),
                key=lambda c: abs(proportions["train"].get(c, 0) - proportions[split.name].get(c, 0)),
            )
            yield ctx.finding(
                "LD003",
                f"class proportions of '{split.name}' differ from 'train': total variation distance "
                f"{distance:.3f} > {ctx.options['max_label_drift']}",
                hint=f"split with stratification; the largest gap is '{worst}' "
                f"({proportions['train'].get(worst, 0):.1%} in train vs "
                f"{proportions[split.name].get(worst, 0):.1%} in {split.name})",
                location=split.location,
                evidence={"split": split.name, "distance": round(distance, 4), "proportions": proportions},
            )
    ctx.evidence["label_drift"] = drift


AUDIT = Audit(
    name="label_distribution",
    version=VERSION,
    prefix="LD",
    codes=CODES,
    run=run,
    options_schema=OPTIONS_SCHEMA,
    needs=frozenset({"data"}),
    description="class balance in train, classes missing from train, label drift between splits, loss class weights, "
    "loader order, a Hugging Face model's label map vs the data's classes",
    order=10,
)


@hookimpl
def auditor_audits() -> list[Audit]:
    return [AUDIT]
