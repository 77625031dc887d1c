"""Class weights in the loss: the hint for an unweighted loss, and a check of a weight that is there (LD009).

Weights are judged against the real training counts in class-index order (the order the
loss sees: ``class_to_idx`` for an ImageFolder, sorted folder names), so a vector computed in
the order the user happened to list the classes is caught. torch is imported only when a
loss carries a tensor weight.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from typing import Any

from auditor import AuditContext, Finding

__all__ = ["check_loss_weights", "loss_class", "weighting_hint"]

#: A weight vector is judged for order only when the classes differ at least this much in size.
_ORDER_RATIO = 2.0


def loss_class(loss: Any) -> str:
    """The torch loss class ``loss`` is (or derives from); its own class name otherwise."""
    for cls in type(loss).__mro__:
        if (cls.__module__ or "").startswith("torch.nn") and cls.__name__.endswith("Loss"):
            return cls.__name__
    return type(loss).__name__


def _vector(values: list[float]) -> str:
    return f"torch.tensor({[round(float(v), 4) for v in values]})"


def _in_index_order(ctx: AuditContext, counts: Mapping[str, int]) -> list[tuple[str, int, int]]:
    """(class name, index training uses, count), by index."""
    mapping = ctx.train.class_index() if ctx.train is not None else {}
    rows = [(name, int(mapping.get(name, i)), n) for i, (name, n) in enumerate(counts.items())]
    return sorted(rows, key=lambda row: row[1])


def _inverse(rows: list[tuple[str, int, int]]) -> list[float]:
    total = sum(n for _, _, n in rows)
    present = [n for _, _, n in rows if n > 0]
    return [round(total / (len(present) * n), 4) if n else 0.0 for _, _, n in rows]


def weighting_hint(
    ctx: AuditContext, loss: str, counts: Mapping[str, int], train_size: int, multilabel: bool
) -> str:
    """How to weight ``loss`` for these counts, with the numbers, in the loss's own terms."""
    rows = _in_index_order(ctx, counts)
    if loss == "BCEWithLogitsLoss":
        if multilabel:
            values = [round((train_size - n) / n, 4) if n else 0.0 for _, _, n in rows]
            return f"BCEWithLogitsLoss(pos_weight={_vector(values)}) (per label, neg/pos, in label-index order {[r[0] for r in rows]})"
        if len(rows) == 2 and rows[1][2]:
            negative, positive = rows
            return (
                f"BCEWithLogitsLoss(pos_weight=torch.tensor([{round(negative[2] / positive[2], 4)}])) "
                f"(neg/pos = {negative[2]}/{positive[2]}, with '{positive[0]}' (index 1) as the positive class)"
            )
    name = loss if loss in ("CrossEntropyLoss", "NLLLoss") else "CrossEntropyLoss"
    order = ", ".join(f"{n}={i}" for n, i, _ in rows)
    return f"{name}(weight={_vector(_inverse(rows))}) (inverse class frequency in class-index order: {order})"


def check_loss_weights(ctx: AuditContext, counts: Mapping[str, int], multilabel: bool) -> Iterator[Finding]:
    """LD009: a ``weight``/``pos_weight`` of the wrong length, or one that favours the larger classes."""
    if not ctx.run.has("loss"):
        return
    try:
        loss = ctx.run.loss
    except Exception:  # a loss factory that fails is reported by the audits that train
        return
    name = loss_class(loss)
    attribute = "pos_weight" if name == "BCEWithLogitsLoss" else "weight"
    if name not in ("CrossEntropyLoss", "NLLLoss", "BCEWithLogitsLoss"):
        return
    value = getattr(loss, attribute, None)
    if value is None or not hasattr(value, "tolist"):
        return
    given = [float(v) for v in value.reshape(-1).tolist()]
    rows = _in_index_order(ctx, counts)
    mapping = ", ".join(f"'{n}' -> {i} ({c} samples)" for n, i, c in rows)
    if attribute == "weight" or multilabel:
        expected_length = len(rows)
        corrected = (
            _inverse(rows)
            if attribute == "weight"
            else [round((sum(c for *_, c in rows) - c) / c, 4) if c else 0.0 for *_, c in rows]
        )
    else:  # binary BCE: one pos_weight
        expected_length = 1
        corrected = [round(rows[0][2] / rows[1][2], 4)] if len(rows) == 2 and rows[1][2] else []
    evidence: dict[str, Any] = {
        "loss": name,
        "attribute": attribute,
        "given": given,
        "corrected": corrected,
        "class_to_idx": {n: i for n, i, _ in rows},
        "counts": {n: c for n, _, c in rows},
    }
    fix = (
        f"{name}({attribute}={_vector(corrected)})"
        if corrected
        else f"a {attribute} with one value per class"
    )
    if len(given) != expected_length and not (
        attribute == "pos_weight" and len(given) == 1 and not multilabel
    ):
        yield ctx.finding(
            "LD009",
            f"{name}'s {attribute} has {len(given)} values but training has {expected_length} "
            f"{'classes' if attribute == 'weight' else 'labels'} ({mapping})",
            hint=f"use one value per class in class-index order: {fix}",
            location="loss",
            evidence=evidence,
        )
        return
    sizes = [c for *_, c in rows]
    if attribute == "weight" and min(sizes) > 0 and max(sizes) / min(sizes) >= _ORDER_RATIO:
        largest = max(range(len(rows)), key=lambda i: sizes[i])
        smallest = min(range(len(rows)), key=lambda i: sizes[i])
        if given[largest] > given[smallest]:
            shown = ", ".join(f"'{rows[i][0]}' ({sizes[i]}) x{given[i]:.3g}" for i in range(len(rows)))
            yield ctx.finding(
                "LD009",
                f"{name}'s weight favours the larger classes: {shown}. The weights are in another order than "
                f"the class indices training uses ({mapping}), so they make the imbalance worse",
                hint=f"compute the weights in class-index order (from the dataset's class_to_idx): {fix}",
                location="loss",
                evidence=evidence,
            )
    # One of the two below 1 and the other above: the classes are swapped.
    swapped = bool(corrected) and (corrected[0] - 1.0) * (given[0] - 1.0) < 0
    if attribute == "pos_weight" and not multilabel and len(rows) == 2 and swapped:
        yield ctx.finding(
            "LD009",
            f"BCEWithLogitsLoss's pos_weight {given[0]:.4g} favours the larger class: '{rows[1][0]}' (index 1, the "
            f"positive class) has {rows[1][2]} samples and '{rows[0][0]}' {rows[0][2]}",
            hint=f"pos_weight is neg/pos for the class with index 1: {fix}",
            location="loss",
            evidence=evidence,
        )
