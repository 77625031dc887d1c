"""What every report format derives the same way from the report.

Renderers only see the saved report (``auditor report report.json --format X``
re-renders a run later), read once into :class:`auditor.ReportView`; what a
report written by an older version lacks reads as empty there, so everything
here works from the view's typed fields.
"""

from __future__ import annotations

import os
import re
from collections.abc import Iterable, Mapping, Sequence
from pathlib import Path, PurePosixPath
from typing import Any, NamedTuple

from auditor.findings import SEVERITIES, severity_at_least, severity_rank
from auditor.report.fingerprints import finding_fingerprint, fingerprints
from auditor.report.view import FindingView, ReportView

__all__ = [
    "SEVERITY_ORDER",
    "Cause",
    "audit_codes",
    "by_ids",
    "cause_of",
    "display_path",
    "explanation_summary",
    "fingerprint",
    "fingerprints_of",
    "plain_markdown",
    "reaches",
    "root_causes",
    "severity_rank",
    "sorted_findings",
    "verdict",
]

#: Most severe first: the order findings are listed in every format (auditor's one ranking).
SEVERITY_ORDER = SEVERITIES


def reaches(severity: Any, fail_on: Any) -> bool:
    """True when a finding of ``severity`` makes the run fail under ``fail_on`` (missing: ``error``)."""
    return severity_at_least(severity, fail_on or "error")


def sorted_findings(findings: Iterable[FindingView]) -> list[FindingView]:
    """Most severe first, then by code, location and message: the same order on every render."""
    return sorted(
        findings,
        key=lambda f: (-severity_rank(f.severity), f.code, f.location, f.message, f.hint),
    )


def verdict(report: ReportView) -> tuple[str, str]:
    """``(word, sentence)`` for the run: passed, failed or errored, and why."""
    code, fail_on = report.exit_code, report.fail_on
    if code == 0:
        return "passed", f"no finding at or above fail_on={fail_on}"
    if code == 1:
        return "failed", f"findings at or above fail_on={fail_on}"
    if report.problems:
        count = len(report.problems)
        return "errored", f"the manifest has {count} problem{'s' if count != 1 else ''} that stopped audits"
    crashed = [a.name for a in report.audits if a.status == "errored"]
    if crashed:
        return "errored", "audits crashed: " + ", ".join(sorted(crashed))
    return "errored", f"exit code {code}"


def display_path(path: Path | None, base: str | os.PathLike[str] | None = None) -> str:
    """``path`` relative to ``base`` (default: $GITHUB_WORKSPACE, else the current folder) when
    it lies under it, else absolute; always with forward slashes.

    GitHub annotations and code scanning want repository-relative paths, and CI
    runs from the repository root, so that is what the default base gives.
    """
    if path is None:
        return ""
    base = Path(base or os.environ.get("GITHUB_WORKSPACE") or os.getcwd())
    try:
        return PurePosixPath(Path(os.path.abspath(path)).relative_to(os.path.abspath(base))).as_posix()
    except ValueError:
        return Path(path).as_posix()


def fingerprint(finding: FindingView) -> str:
    """A stable identity of a finding across runs: the host's one definition (code, location, subject)."""
    return finding_fingerprint(finding.code, finding.location, finding.evidence)


def fingerprints_of(findings: Sequence[FindingView]) -> list[str]:
    """Each finding's fingerprint: as the report states it (1.2 on), else derived the same way.

    SARIF, GitLab and the baseline then name a finding alike, and a report saved before fingerprints
    were written re-renders with the values the run would have written.
    """
    if findings and all(f.fingerprint for f in findings):
        return [f.fingerprint for f in findings]
    return fingerprints(findings)


_MD_MARKS = re.compile(r"\*\*|__|`")
_MD_HEADING = re.compile(r"^\*\*(.+?)\*\*\s*", re.DOTALL)


def plain_markdown(text: str) -> str:
    """Markdown emphasis and code marks removed: for plain-text fields (SARIF, JUnit, tooltips)."""
    return _MD_MARKS.sub("", text).strip()


def explanation_summary(explanation: str) -> str:
    """The 'what it means' paragraph of an explanation, as plain text without its bold lead-in."""
    for paragraph in re.split(r"\n\s*\n", explanation.strip()):
        paragraph = " ".join(paragraph.split())
        if paragraph:
            return plain_markdown(_MD_HEADING.sub("", paragraph, count=1))
    return ""


def audit_codes(report: ReportView) -> dict[str, list[str]]:
    """Codes each audit checked (declared by the audit, plus any it reported), sorted."""
    codes: dict[str, set[str]] = {}
    for audit in report.audits:
        if audit.name:
            codes.setdefault(audit.name, set()).update(audit.codes)
    for finding in report.findings:
        if finding.audit and finding.code:
            codes.setdefault(finding.audit, set()).add(finding.code)
    return {name: sorted(found) for name, found in codes.items()}


class Cause(NamedTuple):
    """A finding with the findings that follow from it (``caused_by`` pointing at it), nested."""

    finding: FindingView
    consequences: list[Cause]

    def size(self) -> int:
        """This finding and everything that follows from it."""
        return 1 + sum(c.size() for c in self.consequences)

    def rank(self) -> int:
        """The worst severity in the tree: a warning that causes an error is fixed with the errors."""
        return max([severity_rank(self.finding.severity), *(c.rank() for c in self.consequences)])


#: Where a finding sits decides how much of a training run it wastes: a wrong model, optimizer,
#: loss or training split spoils every step; an evaluation split spoils what the run is judged by.
_SCOPE_RANK = (("model", 0), ("optimizer", 0), ("loss", 0), ("task", 0), ("data.train", 0), ("data.", 1))


def _scope(finding: FindingView) -> int:
    location = finding.location
    for prefix, rank in _SCOPE_RANK:
        if (
            location == prefix
            or location.startswith(prefix + ".")
            or (prefix.endswith(".") and location.startswith(prefix))
        ):
            return rank
    return 2


def _waste_key(cause: Cause) -> tuple[Any, ...]:
    """Most severe first (counting consequences); then what wastes most of training: more
    consequences, training-wide scope."""
    f = cause.finding
    return (
        -cause.rank(),
        -cause.size(),
        -severity_rank(f.severity),
        _scope(f),
        f.code,
        f.location,
        f.message,
    )


def root_causes(findings: Iterable[FindingView]) -> list[Cause]:
    """Findings that follow from no other finding, each with its consequences nested under it.

    ``caused_by`` names the ``id`` of another finding in the same report. A finding
    without it, or whose cause is missing from the report (filtered out with
    --select, say) or that sits in a ``caused_by`` cycle, is its own root: nothing
    is ever dropped. Ordered by severity, then by how much of training it wastes.
    """
    items = list(findings)
    by_id = by_ids(items)
    children: dict[int, list[FindingView]] = {}
    roots: list[FindingView] = []
    for finding in items:
        parent = _parent(finding, by_id)
        if parent is None:
            roots.append(finding)
        else:
            children.setdefault(id(parent), []).append(finding)

    def build(finding: FindingView) -> Cause:
        nested = [build(child) for child in children.get(id(finding), [])]
        return Cause(finding, sorted(nested, key=_waste_key))

    return sorted((build(root) for root in roots), key=_waste_key)


def by_ids(findings: Iterable[FindingView]) -> dict[str, FindingView]:
    """Findings by ``id`` (the last of repeats, as a dict keeps it); findings without one are left out."""
    return {f.id: f for f in findings if f.id}


def cause_of(finding: FindingView, by_id: Mapping[str, FindingView]) -> FindingView | None:
    """The finding ``finding.caused_by`` names, when the report has it and it is another finding."""
    parent = by_id.get(finding.caused_by) if finding.caused_by is not None else None
    return None if parent is finding else parent


def _parent(finding: FindingView, by_id: Mapping[str, FindingView]) -> FindingView | None:
    """The finding ``finding`` follows from, or None when it is a root (no cause, unknown id, or a cycle)."""
    parent = cause_of(finding, by_id)
    if parent is None:
        return None
    seen: set[int] = set()
    step: FindingView | None = parent
    while step is not None and id(step) not in seen:  # walk up: coming back to ``finding`` is a cycle
        if step is finding:
            return None
        seen.add(id(step))
        step = by_id.get(step.caused_by) if step.caused_by is not None else None
    return parent
