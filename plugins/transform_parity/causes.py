"""Which of transform_parity's findings follow from which codes (applied by the host after all audits)."""

from __future__ import annotations

from collections.abc import Sequence

from auditor import CauseRule, Finding

__all__ = ["CAUSES"]


def _normalize_split(cause: Finding, effect: Finding, _all: Sequence[Finding]) -> bool:
    # TP003 compares 'train' with one evaluation split; a missing Normalize in either explains it.
    split = cause.evidence.get("split")
    return split == "train" or split == effect.evidence.get("split")


CAUSES = (
    CauseRule(
        "TP003",
        ("TP001",),
        _normalize_split,
        "a split without the Normalize the weights expect also normalizes differently from the other",
    ),
)
