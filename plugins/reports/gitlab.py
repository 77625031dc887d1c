"""``gitlab``: GitLab Code Quality (``artifacts:reports:codequality``), a JSON array of issues.

Each issue has what GitLab documents as required: ``description``, ``check_name``,
``fingerprint``, ``severity`` (``info``, ``minor``, ``major``, ``critical`` or
``blocker``) and ``location.path`` with ``location.lines.begin``. The path is the
manifest's, relative to ``$CI_PROJECT_DIR`` (else the current folder) as GitLab
resolves it; the line is the key the finding concerns, else 1.

Fingerprints are the host's one definition (:mod:`auditor.report.fingerprints`),
the same as SARIF's and the baseline's: GitLab compares them between the merge
request and its target branch to say which issues are new or fixed, so they
must not change with a finding's numbers. Accepted findings (``ignore:``, a
baseline) are left out, as a linter's ``noqa`` leaves them out; manifest
problems and crashed audits are ``blocker`` issues, since every finding they
hid is unknown.
"""

from __future__ import annotations

import hashlib
import json
import os
from collections.abc import Mapping
from typing import Any

from auditor import CodeInfo, ReportFormat, ReportView, hookimpl
from auditor_plugins.reports import _common

__all__ = ["SEVERITIES", "code_quality", "render"]

#: auditor severity -> GitLab Code Quality severity.
SEVERITIES = {"error": "critical", "warning": "major", "info": "info"}


def _path(report: ReportView) -> str:
    base = os.environ.get("CI_PROJECT_DIR") or None
    return _common.display_path(report.manifest.file, base) or "audit.yaml"


def _issue(
    description: str, check: str, fingerprint: str, severity: str, path: str, line: int
) -> dict[str, Any]:
    return {
        "type": "issue",
        "description": description,
        "check_name": check,
        "fingerprint": fingerprint,
        "severity": severity,
        "categories": ["Bug Risk"],
        "location": {"path": path, "lines": {"begin": line}},
    }


def _own_fingerprint(*parts: str) -> str:
    return hashlib.sha256("\x1f".join(parts).encode("utf-8")).hexdigest()[:32]


def code_quality(report: ReportView | Mapping[str, Any]) -> list[dict[str, Any]]:
    view = ReportView.of(report)
    path = _path(view)
    name = view.manifest.name
    issues = [
        _issue(
            f"manifest problem at {p.key}: {p.message}" + (f" (hint: {p.hint})" if p.hint else ""),
            "auditor/manifest-problem",
            _own_fingerprint(name, "problem", p.key),
            "blocker",
            path,
            p.line or 1,
        )
        for p in view.problems
    ]
    for audit in view.audits:
        if audit.status == "errored":
            error = audit.error
            issues.append(
                _issue(
                    f"audit {audit.name} crashed: {error.type if error else 'error'}: "
                    f"{error.message if error else ''}",
                    "auditor/audit-crashed",
                    _own_fingerprint(name, "crashed", audit.name),
                    "blocker",
                    path,
                    1,
                )
            )
    findings = _common.sorted_findings(view.findings)
    for finding, fingerprint in zip(findings, _common.fingerprints_of(findings), strict=True):
        text = f"{finding.code} {finding.message}"
        if finding.hint:
            text += f" (hint: {finding.hint})"
        issues.append(
            _issue(
                text,
                finding.code,
                fingerprint,
                SEVERITIES.get(finding.severity, "major"),
                path,
                view.line_of(finding) or 1,
            )
        )
    return issues


def render(report: ReportView | Mapping[str, Any], catalog: Mapping[str, CodeInfo]) -> str:
    return json.dumps(code_quality(report), indent=2, ensure_ascii=False) + "\n"


@hookimpl
def auditor_report_formats() -> list[ReportFormat]:
    return [
        ReportFormat(
            "gitlab",
            "gl-code-quality-report.json",
            render,
            "GitLab Code Quality JSON (artifacts:reports:codequality)",
            takes_view=True,
        )
    ]
