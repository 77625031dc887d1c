"""Finding ids and cause links: which finding follows from which, across audits.

Every finding of a run gets an ``id`` that is unique in the report and the same
on every run of the same inputs (``CODE@location``, ``#2``, ``#3`` for repeats
in report order). A finding may name the finding it follows from in
``caused_by``. Two ways set it:

* an audit that knows the cause of its own finding sets ``finding.cause`` to the
  other finding object (it cannot know ids: they are assigned after all audits);
* for causes that cross audits, each audit declares :class:`~auditor.audit.CauseRule`
  objects (``Audit.causes``): which of its findings follow from which codes, and
  the test. The host applies every declaration after all audits ran, and knows
  no code itself.

Links always point at a root (a finding with no cause of its own), so the
console and the HTML report can show one level: the root first, its
consequences under it.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING

from auditor.findings import Finding

if TYPE_CHECKING:  # pragma: no cover
    from auditor.audit import Audit, CauseRule

__all__ = ["assign_ids", "finalize_findings", "link_findings"]


def assign_ids(findings: Sequence[Finding]) -> None:
    """``CODE@location`` (or ``CODE``), with ``#2``, ``#3`` appended to repeats in order."""
    seen: dict[str, int] = {}
    for finding in findings:
        base = f"{finding.code}@{finding.location}" if finding.location else finding.code
        seen[base] = seen.get(base, 0) + 1
        finding.id = base if seen[base] == 1 else f"{base}#{seen[base]}"


def link_findings(findings: Sequence[Finding], audits: Sequence[Audit] = ()) -> dict[str, list[str]]:
    """Set ``caused_by`` from the audits' own ``cause`` objects, then from the ``audits``' declared causes.

    Ids must be set. Returns, per audit name, what went wrong applying its declarations (a ``when``
    that raised): such a rule links nothing, and the run records the note on the audit.
    """
    present = {id(f) for f in findings}
    for finding in findings:
        cause = finding.cause
        # A cause removed by --ignore/--select is not in the report: leave the finding unlinked.
        if cause is not None and id(cause) in present and cause is not finding:
            finding.caused_by = _root(cause).id
    problems: dict[str, list[str]] = {}
    for audit in audits:
        for rule in audit.causes:
            for code in rule.caused_by:
                try:
                    _apply(rule, code, findings)
                except Exception as exc:
                    problems.setdefault(audit.name, []).append(
                        f"the cause rule {rule.finding} <- {code} could not be applied "
                        f"({type(exc).__name__}: {exc}); those findings are shown unlinked"
                    )
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
    return problems


def _apply(rule: CauseRule, code: str, findings: Sequence[Finding]) -> None:
    """Link each unlinked ``rule.finding`` to the first ``code`` finding the rule's test accepts.

    The links are set only once every test returned, so a test that raises leaves no half of them.
    """
    causes = [f for f in findings if f.code == code]
    links: list[tuple[Finding, Finding]] = []
    for effect in findings if causes else ():
        if effect.code != rule.finding or effect.caused_by:
            continue
        for cause in causes:
            if cause is not effect and (rule.when is None or rule.when(cause, effect, findings)):
                links.append((effect, cause))
                break
    for effect, cause in links:
        effect.caused_by = _root(cause).id


def _root(finding: Finding) -> Finding:
    seen = {id(finding)}
    while finding.cause is not None and id(finding.cause) not in seen:
        finding = finding.cause
        seen.add(id(finding))
    return finding


def finalize_findings(findings: Sequence[Finding], audits: Sequence[Audit] = ()) -> dict[str, list[str]]:
    """Ids then links from the ``audits``' declarations, once all audits ran (the runner calls this)."""
    assign_ids(findings)
    return link_findings(findings, audits)
