"""Finding ids and cause links: which finding follows from which, across audits.

Every finding of a run gets an ``id`` that is unique in the report and the same
on every run of the same inputs (``CODE@location``, ``#2``, ``#3`` for repeats
in report order). A finding may name the finding it follows from in
``caused_by``. Two ways set it:

* an audit that knows the cause of its own finding sets ``finding.cause`` to the
  other finding object (it cannot know ids: they are assigned after all audits);
* for causes that cross audits, the host applies :data:`CAUSE_RULES` after every
  audit ran: a declared table of (root code, consequence code, test).

Links always point at a root (a finding with no cause of its own), so the
console and the HTML report can show one level: the root first, its
consequences under it.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

from auditor.findings import Finding

__all__ = ["CAUSE_RULES", "CauseRule", "assign_ids", "finalize_findings", "link_findings"]


@dataclass(frozen=True)
class CauseRule:
    """``effect`` findings follow from a ``cause`` finding when ``test(cause, effect, all)`` holds."""

    cause: str
    effect: str
    test: Callable[[Finding, Finding, Sequence[Finding]], bool]
    why: str


def _list(value: Any) -> list[Any]:
    return list(value) if isinstance(value, (list, tuple)) else []


def _normalize_split(cause: Finding, effect: Finding, _all: Sequence[Finding]) -> bool:
    # TP003 compares 'train' with one evaluation split; a missing Normalize in either explains it.
    split = cause.evidence.get("split")
    return split == "train" or split == effect.evidence.get("split")


def _untrained_head(cause: Finding, effect: Finding, _all: Sequence[Finding]) -> bool:
    # FZ007 names the evaluation classes the head has no output for; LD002 names those absent from train.
    return bool(
        set(map(str, _list(cause.evidence.get("classes"))))
        & set(map(str, _list(effect.evidence.get("untrained_classes"))))
    )


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
    return cause.evidence.get("split") is not None and cause.evidence.get("split") == effect.evidence.get(
        "split"
    )


def _input_scale(cause: Finding, effect: Finding, _all: Sequence[Finding]) -> bool:
    # FF002 measured the gap on train's sample; only a gap at the first layers is the input's scale.
    return bool(effect.evidence.get("early_gap")) and cause.evidence.get("split") in (None, "train")


#: Cross-audit causes. Order matters only when two rules could claim one effect: the first wins.
CAUSE_RULES: tuple[CauseRule, ...] = (
    CauseRule(
        "TP001",
        "TP003",
        _normalize_split,
        "a split without the Normalize the weights expect also normalizes differently from the other",
    ),
    CauseRule(
        "LD002",
        "FZ007",
        _untrained_head,
        "a head sized on the training classes lacks outputs for the evaluation-only classes",
    ),
    CauseRule(
        "LD002",
        "GP010",
        _untrained_output,
        "the model output is short by exactly the classes missing from train",
    ),
    CauseRule(
        "FZ005",
        "GP008",
        _frozen_batchnorm,
        "frozen BatchNorm layers in train mode update their running statistics during the probe",
    ),
    *(
        CauseRule(
            code,
            "FF002",
            _input_scale,
            "inputs normalized otherwise than the weights expect already differ at the first BatchNorm layer",
        )
        for code in ("TP001", "TP002", "TP006")
    ),
    CauseRule("DL003", "GP012", _same_split, "no training sample loads, so the probe gets no batch"),
    CauseRule(
        "DL001", "GP012", _same_split, "training samples cannot be collated, so the probe gets no batch"
    ),
    CauseRule(
        "DL002", "GP012", _same_split, "training samples fail to load, so the probe runs out of batches"
    ),
)


def assign_ids(findings: Sequence[Finding]) -> None:
    """``CODE@location`` (or ``CODE``), with ``#2``, ``#3`` appended to repeats in order."""
    seen: dict[str, int] = {}
    for finding in findings:
        base = f"{finding.code}@{finding.location}" if finding.location else finding.code
        seen[base] = seen.get(base, 0) + 1
        finding.id = base if seen[base] == 1 else f"{base}#{seen[base]}"


def link_findings(findings: Sequence[Finding], rules: Sequence[CauseRule] = CAUSE_RULES) -> None:
    """Set ``caused_by`` from the audits' own ``cause`` objects, then from ``rules``; ids must be set."""
    present = {id(f) for f in findings}
    for finding in findings:
        cause = finding.cause
        # A cause removed by --ignore/--select is not in the report: leave the finding unlinked.
        if cause is not None and id(cause) in present and cause is not finding:
            finding.caused_by = _root(cause).id
    for rule in rules:
        causes = [f for f in findings if f.code == rule.cause]
        if not causes:
            continue
        for effect in findings:
            if effect.code != rule.effect or effect.caused_by:
                continue
            for cause in causes:
                if rule.test(cause, effect, findings):
                    effect.caused_by = _root(cause).id
                    break
    # One level only: a consequence of a consequence points at the root; a cycle or a dangling id is dropped.
    by_id = {f.id: f for f in findings}
    roots: dict[str, str | None] = {}
    for finding in findings:
        seen = {finding.id}
        target = by_id.get(finding.caused_by or "")
        while target is not None and target.caused_by and target.id not in seen:
            seen.add(target.id)
            target = by_id.get(target.caused_by)
        ok = target is not None and target.id not in seen and not target.caused_by
        roots[finding.id] = target.id if ok and target is not None else None
    for finding in findings:
        finding.caused_by = roots[finding.id]


def _root(finding: Finding) -> Finding:
    seen = {id(finding)}
    while finding.cause is not None and id(finding.cause) not in seen:
        finding = finding.cause
        seen.add(id(finding))
    return finding


def finalize_findings(findings: Sequence[Finding]) -> None:
    """Ids then links, once all audits ran (the runner calls this)."""
    assign_ids(findings)
    link_findings(findings)
