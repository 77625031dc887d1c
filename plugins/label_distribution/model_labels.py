"""A Hugging Face model's own label map (``config.num_labels``, ``id2label``) against the data's classes (LD011, LD012).

A ``transformers`` model carries its classes in its config: the head is sized by
``num_labels`` and everything after training (pipelines, the hub widget) names
predictions through ``id2label``. Both must be the data's class names, in the
order the labels index them (a ``ClassLabel``'s ``names``). Default names
(``LABEL_0``, ``LABEL_1``, ...) say nothing about order and are not compared.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from typing import Any

from auditor import AuditContext, Finding

__all__ = ["check_model_labels"]

_DEFAULT_NAME = re.compile(r"^LABEL_\d+$")


def _config(model: Any) -> Any:
    """The model's transformers config (through a PeftModel's base model), or None."""
    base = model.get_base_model() if callable(getattr(model, "get_base_model", None)) else model
    config = getattr(base, "config", None)
    return config if hasattr(config, "id2label") and hasattr(config, "num_labels") else None


def _names(config: Any) -> list[str] | None:
    raw = getattr(config, "id2label", None)
    if not isinstance(raw, dict) or not raw:
        return None
    try:
        by_index = {int(k): str(v) for k, v in raw.items()}
    except (TypeError, ValueError):
        return None
    if sorted(by_index) != list(range(len(by_index))):
        return None
    return [by_index[i] for i in range(len(by_index))]


def check_model_labels(ctx: AuditContext) -> Iterator[Finding]:
    if ctx.train is None:
        return
    try:
        # Only a model at hand: label_distribution must not build the model from a factory (its
        # failures and cost belong to the audits that need the model; this audit's job is the labels).
        model = ctx.run.model_at_hand()
    except Exception:  # a broken model is reported by the audits that need it
        return
    if model is None:
        return
    config = _config(model)
    if config is None:
        return
    task = ctx.task
    classes = [str(c) for c in ctx.train.classes()]
    if not classes or task.type == "multilabel":
        return
    labels = int(config.num_labels)
    names = _names(config)
    ctx.evidence["model_labels"] = {
        "num_labels": labels,
        "id2label": (names or [])[:50],
        "classes": classes[:50],
    }
    if labels != len(classes) and not (labels == 1 and len(classes) == 2):
        yield ctx.finding(
            "LD011",
            f"the model's config.num_labels is {labels} but 'train' has {len(classes)} classes "
            f"({', '.join(classes[:8])}{', ...' if len(classes) > 8 else ''})",
            hint="build the model from the dataset's labels: from_pretrained(..., num_labels=len(names), "
            "id2label=dict(enumerate(names)), label2id={n: i for i, n in enumerate(names)}, "
            "ignore_mismatched_sizes=True)",
            location="model",
            evidence={"num_labels": labels, "classes": classes[:200], "id2label": (names or [])[:200]},
        )
        return
    if names is None or len(names) != len(classes) or all(_DEFAULT_NAME.match(n) for n in names):
        return
    if names == classes:
        return
    wrong = [(i, names[i], classes[i]) for i in range(len(classes)) if names[i] != classes[i]]
    reordered = sorted(names) == sorted(classes)
    what = "in another order" if reordered else "with other names"
    shown = "; ".join(f"{i}: {n!r} in id2label, {c!r} in the data" for i, n, c in wrong[:4])
    yield ctx.finding(
        "LD012",
        f"the model's id2label names the {len(classes)} classes {what} than the data's class names: {shown}"
        + (f"; and {len(wrong) - 4} more" if len(wrong) > 4 else ""),
        hint="derive both maps from the data: id2label = dict(enumerate(names)), "
        "label2id = {n: i for i, n in id2label.items()}",
        location="model",
        evidence={"id2label": names[:200], "classes": classes[:200], "reordered": reordered},
    )
