"""Which of gradient_probe's findings follow from which codes (applied by the host after all audits)."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from auditor import CauseRule, Finding

__all__ = ["CAUSES"]


def _list(value: Any) -> list[Any]:
    return list(value) if isinstance(value, (list, tuple)) else []


def _untrained_output(cause: Finding, effect: Finding, everything: Sequence[Finding]) -> bool:
    # GP010's output is short by exactly the classes missing from train: the head was sized on train.
    outputs, wanted = effect.evidence.get("outputs"), effect.evidence.get("num_classes")
    if not isinstance(outputs, int) or not isinstance(wanted, int) or outputs >= wanted:
        return False
    missing = {str(c) for f in everything if f.code == "LD002" for c in _list(f.evidence.get("classes"))}
    return bool(missing) and outputs + len(missing) == wanted


def _frozen_batchnorm(cause: Finding, effect: Finding, _all: Sequence[Finding]) -> bool:
    # FZ005 predicts the running statistics of these layers change; GP008 saw them change.
    layers = {
        str(layer.get("name")) for layer in _list(cause.evidence.get("layers")) if isinstance(layer, dict)
    }
    changed = {str(name).rsplit(".", 1)[0] for name in _list(effect.evidence.get("buffers"))}
    return bool(layers & changed)


def _same_split(cause: Finding, effect: Finding, _all: Sequence[Finding]) -> bool:
    split = cause.evidence.get("split")
    return split is not None and split == effect.evidence.get("split")


CAUSES = (
    CauseRule(
        "GP010",
        ("LD002",),
        _untrained_output,
        "the model output is short by exactly the classes missing from train",
    ),
    CauseRule(
        "GP008",
        ("FZ005",),
        _frozen_batchnorm,
        "frozen BatchNorm layers in train mode update their running statistics during the probe",
    ),
    # Tried in this order: no sample loads at all, samples cannot be collated, some samples fail.
    CauseRule(
        "GP012",
        ("DL003", "DL001", "DL002"),
        _same_split,
        "training samples do not load or cannot be collated, so the probe gets no batch",
    ),
)
