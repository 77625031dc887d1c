"""What every report format derives the same way from the JSON report.

Renderers only see the saved report (``auditor report report.json --format X``
re-renders a run later), so everything here reads plain dicts defensively:
a report written by an older version or a third-party audit's odd evidence
must still render.
"""

from __future__ import annotations

import hashlib
import os
import re
from collections.abc import Iterable, Mapping
from pathlib import Path, PurePosixPath
from typing import Any, NamedTuple

from auditor.findings import SEVERITIES, severity_at_least, severity_rank

__all__ = [
    "SEVERITY_ORDER",
    "Cause",
    "audit_codes",
    "display_path",
    "explanation_summary",
    "finding_line",
    "fingerprint",
    "manifest_dir",
    "manifest_path",
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


def _text(value: Any) -> str:
    return "" if value is None else str(value)


def sorted_findings(findings: Iterable[Mapping[str, Any]]) -> list[Mapping[str, Any]]:
    """Most severe first, then by code, location and message: the same order on every render."""
    return sorted(
        (f for f in findings if isinstance(f, Mapping)),
        key=lambda f: (
            -severity_rank(f.get("severity")),
            _text(f.get("code")),
            _text(f.get("location")),
            _text(f.get("message")),
            _text(f.get("hint")),
        ),
    )


def verdict(report: Mapping[str, Any]) -> tuple[str, str]:
    """``(word, sentence)`` for the run: passed, failed or errored, and why."""
    code = report.get("exit_code")
    fail_on = report.get("fail_on") or "error"
    if code == 0:
        return "passed", f"no finding at or above fail_on={fail_on}"
    if code == 1:
        return "failed", f"findings at or above fail_on={fail_on}"
    problems = [p for p in report.get("problems") or [] if isinstance(p, Mapping)]
    if problems:
        count = len(problems)
        return "errored", f"the manifest has {count} problem{'s' if count != 1 else ''} that stopped audits"
    crashed = [a.get("name", "?") for a in report.get("audits") or [] if a.get("status") == "errored"]
    if crashed:
        return "errored", "audits crashed: " + ", ".join(sorted(map(str, crashed)))
    return "errored", f"exit code {code}"


def manifest_path(report: Mapping[str, Any]) -> Path | None:
    raw = (report.get("manifest") or {}).get("path")
    return Path(raw) if raw else None


def manifest_dir(report: Mapping[str, Any]) -> Path:
    """The folder paths in evidence are relative to (the manifest's folder)."""
    path = manifest_path(report)
    return path.parent if path is not None else Path(".")


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


def finding_line(report: Mapping[str, Any], finding: Mapping[str, Any]) -> int | None:
    """Manifest line of the key a finding concerns, from the report's ``lines`` map."""
    lines = report.get("lines") or {}
    location = finding.get("location") or ""
    line = lines.get(location) if isinstance(lines, Mapping) else None
    return line if isinstance(line, int) and line > 0 else None


#: Evidence keys that name *what* a finding is about (not how bad it is), so a
#: fingerprint survives counts changing between runs.
_SUBJECT_KEYS = ("split", "split_a", "split_b", "class", "direction", "problem", "pipeline", "module")


def fingerprint(finding: Mapping[str, Any], manifest_name: str = "") -> str:
    """A stable identity of a finding across runs: code, location and subject, not the numbers."""
    evidence = finding.get("evidence") if isinstance(finding.get("evidence"), Mapping) else {}
    subject = [f"{k}={evidence[k]}" for k in _SUBJECT_KEYS if isinstance(evidence.get(k), (str, int))]
    key = "\x1f".join([manifest_name, _text(finding.get("code")), _text(finding.get("location")), *subject])
    return hashlib.sha256(key.encode("utf-8")).hexdigest()[:32]


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


def audit_codes(report: Mapping[str, Any]) -> dict[str, list[str]]:
    """Codes each audit checked (declared by the audit, plus any it reported), sorted."""
    codes: dict[str, set[str]] = {}
    for audit in report.get("audits") or []:
        if isinstance(audit, Mapping) and audit.get("name"):
            codes.setdefault(str(audit["name"]), set()).update(str(c) for c in audit.get("codes") or [])
    for finding in report.get("findings") or []:
        if isinstance(finding, Mapping) and finding.get("audit") and finding.get("code"):
            codes.setdefault(str(finding["audit"]), set()).add(str(finding["code"]))
    return {name: sorted(found) for name, found in codes.items()}


class Cause(NamedTuple):
    """A finding with the findings that follow from it (``caused_by`` pointing at it), nested."""

    finding: Mapping[str, Any]
    consequences: list[Cause]

    def size(self) -> int:
        """This finding and everything that follows from it."""
        return 1 + sum(c.size() for c in self.consequences)

    def rank(self) -> int:
        """The worst severity in the tree: a warning that causes an error is fixed with the errors."""
        return max([severity_rank(self.finding.get("severity")), *(c.rank() for c in self.consequences)])


#: Where a finding sits decides how much of a training run it wastes: a wrong model, optimizer,
#: loss or training split spoils every step; an evaluation split spoils what the run is judged by.
_SCOPE_RANK = (("model", 0), ("optimizer", 0), ("loss", 0), ("task", 0), ("data.train", 0), ("data.", 1))


def _scope(finding: Mapping[str, Any]) -> int:
    location = _text(finding.get("location"))
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
        -severity_rank(f.get("severity")),
        _scope(f),
        _text(f.get("code")),
        _text(f.get("location")),
        _text(f.get("message")),
    )


def root_causes(findings: Iterable[Mapping[str, Any]]) -> list[Cause]:
    """Findings that follow from no other finding, each with its consequences nested under it.

    ``caused_by`` names the ``id`` of another finding in the same report. A finding
    without it, or whose cause is missing from the report (filtered out with
    --select, say) or that sits in a ``caused_by`` cycle, is its own root: nothing
    is ever dropped. Ordered by severity, then by how much of training it wastes.
    """
    items = [f for f in findings if isinstance(f, Mapping)]
    by_id = {str(f["id"]): f for f in items if isinstance(f.get("id"), (str, int))}
    children: dict[int, list[Mapping[str, Any]]] = {}
    roots: list[Mapping[str, Any]] = []
    for finding in items:
        parent = _parent(finding, by_id)
        if parent is None:
            roots.append(finding)
        else:
            children.setdefault(id(parent), []).append(finding)

    def build(finding: Mapping[str, Any]) -> Cause:
        nested = [build(child) for child in children.get(id(finding), [])]
        return Cause(finding, sorted(nested, key=_waste_key))

    return sorted((build(root) for root in roots), key=_waste_key)


def _parent(finding: Mapping[str, Any], by_id: Mapping[str, Mapping[str, Any]]) -> Mapping[str, Any] | None:
    """The finding ``finding`` follows from, or None when it is a root (no cause, unknown id, or a cycle)."""
    cause = finding.get("caused_by")
    parent = by_id.get(str(cause)) if isinstance(cause, (str, int)) else None
    if parent is None or parent is finding:
        return None
    seen: set[int] = set()
    step: Mapping[str, Any] | None = parent
    while step is not None and id(step) not in seen:  # walk up: coming back to ``finding`` is a cycle
        if step is finding:
            return None
        seen.add(id(step))
        up = step.get("caused_by")
        step = by_id.get(str(up)) if isinstance(up, (str, int)) else None
    return parent
