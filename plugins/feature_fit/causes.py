"""Which of feature_fit's findings follow from which codes (applied by the host after all audits)."""

from __future__ import annotations

from collections.abc import Sequence

from auditor import CauseRule, Finding

__all__ = ["CAUSES"]


def _input_scale(cause: Finding, effect: Finding, _all: Sequence[Finding]) -> bool:
    # FF002 measured the gap on train's sample; only a gap at the first layers is the input's scale.
    return bool(effect.evidence.get("early_gap")) and cause.evidence.get("split") in (None, "train")


CAUSES: tuple[CauseRule, ...] = tuple(
    CauseRule(
        finding="FF002",
        caused_by=(code,),
        when=_input_scale,
        why="inputs normalized otherwise than the weights expect already differ at the first BatchNorm layer",
    )
    for code in ("TP001", "TP002", "TP006")
)
