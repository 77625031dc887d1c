"""Which of frozen_coverage's findings follow from which codes (applied by the host after all audits)."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from auditor import CauseRule, Finding

__all__ = ["CAUSES"]


def _list(value: Any) -> list[Any]:
    return list(value) if isinstance(value, (list, tuple)) else []


def _untrained_head(cause: Finding, effect: Finding, _all: Sequence[Finding]) -> bool:
    # FZ007 names the evaluation classes the head has no output for; LD002 names those absent from train.
    return bool(
        set(map(str, _list(cause.evidence.get("classes"))))
        & set(map(str, _list(effect.evidence.get("untrained_classes"))))
    )


CAUSES = (
    CauseRule(
        "FZ007",
        ("LD002",),
        _untrained_head,
        "a head sized on the training classes lacks outputs for the evaluation-only classes",
    ),
)
