"""``sarif``: SARIF 2.1.0 for code-scanning tools (GitHub code scanning, IDE viewers).

One rule per finding code the run checked, with the short title and the
"what it means" paragraph of the code's explanation as short and full
descriptions and the whole explanation as help. Each result points at the
manifest file and the line of the key the finding concerns (``ReportView.lines``),
and carries a ``partialFingerprints`` entry built from what the finding is
about (code, location, split or class), not its numbers, so a finding keeps
its identity while its counts change from run to run.

Paths are relative to ``$GITHUB_WORKSPACE`` (else the current folder) when the
manifest lies under it, as code scanning expects (with ``uriBaseId``
``%SRCROOT%``); otherwise an absolute ``file://`` URI. Every result has a
``region.startLine`` (line 1 when the finding concerns no one key).

Within GitHub code scanning's documented limits: results are ranked (most
severe first, the order every format uses) and at most :data:`MAX_RESULTS`
(5,000, what code scanning keeps of a run) are written; the rest are counted in
a tool notification and the run's properties. Findings accepted on purpose
(``ignore:``, a baseline) are written as suppressed results with the reason as
justification, so code scanning closes their alerts instead of losing them.
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping
from pathlib import Path
from typing import Any
from urllib.parse import quote

from auditor import CodeInfo, ReportFormat, ReportView, hookimpl
from auditor.report.view import AuditError, FindingView
from auditor_plugins.reports import _common

__all__ = ["LEVELS", "MAX_RESULTS", "SARIF_SCHEMA", "render", "sarif_log"]

SARIF_SCHEMA = "https://json.schemastore.org/sarif-2.1.0.json"
LEVELS = {"error": "error", "warning": "warning", "info": "note"}
#: v2: the shared definition (auditor.report.fingerprints), without the manifest's name.
FINGERPRINT_KEY = "auditorFinding/v2"
#: Code scanning shows the top 5,000 results of a run (and refuses uploads beyond 25,000).
MAX_RESULTS = 5000
#: Code scanning keeps at most 20 tags per rule.
MAX_TAGS = 20
SRCROOT = "%SRCROOT%"


def _uri(report: ReportView) -> str:
    path = report.manifest.file
    if path is None:
        return "audit.yaml"
    shown = _common.display_path(path)
    if Path(shown).is_absolute():
        return Path(shown).as_uri()
    return quote(shown, safe="/")


def _rule_name(title: str) -> str:
    """SARIF rule names are identifiers: 'training classes are imbalanced' -> TrainingClassesAreImbalanced."""
    return "".join(word[:1].upper() + word[1:] for word in re.findall(r"[A-Za-z0-9]+", title)) or "Finding"


def _rule(code: str, audit: str, info: CodeInfo | None, fallback_title: str) -> dict[str, Any]:
    title = info.title if info else fallback_title or code
    severity = info.severity.value if info else "warning"
    explanation = info.explanation.strip() if info else ""
    summary = _common.explanation_summary(explanation) if explanation else title
    rule: dict[str, Any] = {
        "id": code,
        "name": _rule_name(title),
        "shortDescription": {"text": title},
        "fullDescription": {"text": summary or title},
        "defaultConfiguration": {"level": LEVELS.get(severity, "warning")},
        "properties": {
            "tags": sorted({"auditor", audit, "transfer-learning"})[:MAX_TAGS],
            "severity": severity,
        },
    }
    if explanation:
        rule["help"] = {"text": _common.plain_markdown(explanation), "markdown": explanation}
    return rule


def _artifact(uri: str) -> dict[str, Any]:
    relative = not uri.startswith("file:")
    return {"uri": uri, **({"uriBaseId": SRCROOT} if relative else {})}


def _result(
    report: ReportView, finding: FindingView, rule_index: int, uri: str, fingerprint: str
) -> dict[str, Any]:
    message = finding.message
    if finding.hint:
        message += f"\nhint: {finding.hint}"
    physical: dict[str, Any] = {
        "artifactLocation": {**_artifact(uri), "index": 0},
        # A finding about the whole manifest (no key) still needs a line for code scanning to show it.
        "region": {"startLine": report.line_of(finding) or 1},
    }
    location: dict[str, Any] = {"physicalLocation": physical}
    if finding.location:
        location["logicalLocations"] = [{"fullyQualifiedName": finding.location, "kind": "member"}]
    return {
        "ruleId": finding.code,
        "ruleIndex": rule_index,
        "level": LEVELS.get(finding.severity, "warning"),
        "message": {"text": message},
        "locations": [location],
        "partialFingerprints": {FINGERPRINT_KEY: fingerprint},
        "properties": {"audit": finding.audit, "severity": finding.severity, "title": finding.title},
    }


def _invocation(report: ReportView) -> dict[str, Any]:
    notifications = []
    for audit in report.audits:
        if audit.status == "errored":
            error = audit.error or AuditError("error")
            notifications.append(
                {
                    "level": "error",
                    "message": {"text": f"audit {audit.name} crashed: {error.type}: {error.message}"},
                    "descriptor": {"id": audit.name},
                }
            )
    invocation: dict[str, Any] = {
        "executionSuccessful": report.exit_code in (0, 1),
        "exitCode": report.exit_code,
    }
    started = report.started_at
    if re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\+00:00", started):
        invocation["startTimeUtc"] = started.replace("+00:00", "Z")
    if notifications:
        invocation["toolExecutionNotifications"] = notifications
    return invocation


def sarif_log(report: ReportView | Mapping[str, Any], catalog: Mapping[str, CodeInfo]) -> dict[str, Any]:
    report = ReportView.of(report)
    live = _common.sorted_findings(report.findings)
    accepted = _common.sorted_findings(report.accepted)
    titles = {f.code: f.title for f in (*live, *accepted)}
    owners: dict[str, str] = {}
    for audit, codes in _common.audit_codes(report).items():
        for code in codes:
            owners.setdefault(code, audit)
    for finding in accepted:
        owners.setdefault(finding.code, finding.audit)
    codes = sorted(owners)
    rules = [_rule(code, owners[code], catalog.get(code), titles.get(code, "")) for code in codes]
    index = {code: i for i, code in enumerate(codes)}
    uri = _uri(report)
    manifest_name = report.manifest.name
    # Live findings first (most severe first), then the accepted ones: what the cap drops is the least.
    ranked = [*live, *accepted]
    prints = dict(zip(map(id, ranked), _common.fingerprints_of(ranked), strict=True))
    baselined = any(f.accepted_by == "baseline" for f in accepted)
    results = []
    for finding in ranked[:MAX_RESULTS]:
        result = _result(report, finding, index.get(finding.code, -1), uri, prints[id(finding)])
        if finding.accepted_by:
            result["suppressions"] = [
                {
                    # The manifest is the file analysed: an ignore: entry there is in source.
                    "kind": "inSource" if finding.accepted_by == "ignore" else "external",
                    "status": "accepted",
                    "justification": finding.accepted_reason,
                }
            ]
        if baselined:
            result["baselineState"] = "unchanged" if finding.accepted_by == "baseline" else "new"
        results.append(result)
    omitted = max(0, len(ranked) - MAX_RESULTS)
    invocation = _invocation(report)
    if omitted:
        invocation.setdefault("toolExecutionNotifications", []).append(
            {
                "level": "warning",
                "message": {
                    "text": f"{omitted} more results not written: code scanning keeps {MAX_RESULTS} per "
                    "run; the least severe were left out (report.json has them all)"
                },
                "descriptor": {"id": "auditor/results-capped"},
            }
        )
    run: dict[str, Any] = {
        "tool": {
            "driver": {
                "name": report.tool.name,
                "version": report.tool.version,
                "rules": rules,
            }
        },
        "artifacts": [{"location": _artifact(uri), "roles": ["analysisTarget"]}],
        "invocations": [invocation],
        "results": results,
        "properties": {
            "manifest": manifest_name,
            "fail_on": report.fail_on,
            "summary": report.summary.as_dict(),
            "accepted": len(accepted),
            "omitted_results": omitted,
        },
    }
    if not uri.startswith("file:"):
        # Relative URIs resolve against the repository root (where CI runs): code scanning maps them itself.
        run["originalUriBaseIds"] = {SRCROOT: {"description": {"text": "the repository root"}}}
    return {"$schema": SARIF_SCHEMA, "version": "2.1.0", "runs": [run]}


def render(report: ReportView | Mapping[str, Any], catalog: Mapping[str, CodeInfo]) -> str:
    return json.dumps(sarif_log(report, catalog), indent=2, ensure_ascii=False) + "\n"


@hookimpl
def auditor_report_formats() -> list[ReportFormat]:
    return [
        ReportFormat(
            "sarif", "report.sarif", render, "SARIF 2.1.0 for code scanning (GitHub, IDEs)", takes_view=True
        )
    ]
