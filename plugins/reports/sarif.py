"""``sarif``: SARIF 2.1.0 for code-scanning tools (GitHub code scanning, IDE viewers).

One rule per finding code the run checked, with the short title and the
"what it means" paragraph of the code's explanation as short and full
descriptions and the whole explanation as help. Each result points at the
manifest file and the line of the key the finding concerns (``report["lines"]``),
and carries a ``partialFingerprints`` entry built from what the finding is
about (code, location, split or class), not its numbers, so a finding keeps
its identity while its counts change from run to run.

Paths are relative to ``$GITHUB_WORKSPACE`` (else the current folder) when the
manifest lies under it, as code scanning expects; otherwise an absolute
``file://`` URI.
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping
from pathlib import Path
from typing import Any
from urllib.parse import quote

from auditor import CodeInfo, ReportFormat, hookimpl
from auditor_plugins.reports import _common

__all__ = ["LEVELS", "SARIF_SCHEMA", "render"]

SARIF_SCHEMA = "https://json.schemastore.org/sarif-2.1.0.json"
LEVELS = {"error": "error", "warning": "warning", "info": "note"}
FINGERPRINT_KEY = "auditorFinding/v1"


def _uri(report: Mapping[str, Any]) -> str:
    path = _common.manifest_path(report)
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
        "properties": {"tags": sorted({"auditor", audit, "transfer-learning"}), "severity": severity},
    }
    if explanation:
        rule["help"] = {"text": _common.plain_markdown(explanation), "markdown": explanation}
    return rule


def _result(
    report: Mapping[str, Any], finding: Mapping[str, Any], rule_index: int, uri: str, fingerprint: str
) -> dict[str, Any]:
    message = str(finding.get("message", ""))
    if finding.get("hint"):
        message += f"\nhint: {finding['hint']}"
    physical: dict[str, Any] = {"artifactLocation": {"uri": uri, "index": 0}}
    line = _common.finding_line(report, finding)
    if line:
        physical["region"] = {"startLine": line}
    location: dict[str, Any] = {"physicalLocation": physical}
    if finding.get("location"):
        location["logicalLocations"] = [{"fullyQualifiedName": str(finding["location"]), "kind": "member"}]
    return {
        "ruleId": str(finding.get("code", "")),
        "ruleIndex": rule_index,
        "level": LEVELS.get(str(finding.get("severity")), "warning"),
        "message": {"text": message},
        "locations": [location],
        "partialFingerprints": {FINGERPRINT_KEY: fingerprint},
        "properties": {
            "audit": str(finding.get("audit", "")),
            "severity": str(finding.get("severity", "")),
            "title": str(finding.get("title", "")),
        },
    }


def _invocation(report: Mapping[str, Any]) -> dict[str, Any]:
    notifications = []
    for audit in report.get("audits") or []:
        if audit.get("status") == "errored":
            error = audit.get("error") or {}
            notifications.append(
                {
                    "level": "error",
                    "message": {
                        "text": f"audit {audit.get('name')} crashed: {error.get('type', 'error')}: "
                        f"{error.get('message', '')}"
                    },
                    "descriptor": {"id": str(audit.get("name", "?"))},
                }
            )
    invocation: dict[str, Any] = {
        "executionSuccessful": report.get("exit_code") in (0, 1),
        "exitCode": report.get("exit_code"),
    }
    started = str(report.get("started_at") or "")
    if re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\+00:00", started):
        invocation["startTimeUtc"] = started.replace("+00:00", "Z")
    if notifications:
        invocation["toolExecutionNotifications"] = notifications
    return invocation


def sarif_log(report: Mapping[str, Any], catalog: Mapping[str, CodeInfo]) -> dict[str, Any]:
    findings = _common.sorted_findings(report.get("findings") or [])
    titles = {str(f.get("code")): str(f.get("title", "")) for f in findings}
    owners: dict[str, str] = {}
    for audit, codes in _common.audit_codes(report).items():
        for code in codes:
            owners.setdefault(code, audit)
    codes = sorted(owners)
    rules = [_rule(code, owners[code], catalog.get(code), titles.get(code, "")) for code in codes]
    index = {code: i for i, code in enumerate(codes)}
    uri = _uri(report)
    manifest_name = str((report.get("manifest") or {}).get("name") or "")
    seen: dict[str, int] = {}
    results = []
    for finding in findings:
        base = _common.fingerprint(finding, manifest_name)
        seen[base] = seen.get(base, 0) + 1
        # Two findings about the same subject (rare) still get distinct, stable fingerprints.
        fingerprint = base if seen[base] == 1 else f"{base}:{seen[base]}"
        results.append(_result(report, finding, index.get(str(finding.get("code")), -1), uri, fingerprint))
    tool = report.get("tool") or {}
    return {
        "$schema": SARIF_SCHEMA,
        "version": "2.1.0",
        "runs": [
            {
                "tool": {
                    "driver": {
                        "name": str(tool.get("name", "auditor")),
                        "version": str(tool.get("version", "")),
                        "rules": rules,
                    }
                },
                "artifacts": [{"location": {"uri": uri}, "roles": ["analysisTarget"]}],
                "invocations": [_invocation(report)],
                "results": results,
                "properties": {
                    "manifest": manifest_name,
                    "fail_on": str(report.get("fail_on") or "error"),
                    "summary": report.get("summary") or {},
                },
            }
        ],
    }


def render(report: dict[str, Any], catalog: Mapping[str, CodeInfo]) -> str:
    return json.dumps(sarif_log(report, catalog), indent=2, ensure_ascii=False) + "\n"


@hookimpl
def auditor_report_formats() -> list[ReportFormat]:
    return [ReportFormat("sarif", "report.sarif", render, "SARIF 2.1.0 for code scanning (GitHub, IDEs)")]
