"""``junit``: JUnit XML, so CI test tabs (GitLab, Jenkins, Azure) show audits as test results.

A ``testsuite`` per audit and a ``testcase`` per code the audit checked. A
code fails when it has findings at or above the run's ``fail_on``; findings
below it go to the testcase's ``system-out`` (visible, not failing). A crashed
audit marks its testcases as errors, a skipped one as skipped, so the XML
agrees with the exit code.
"""

from __future__ import annotations

import re
import xml.etree.ElementTree as ET
from collections.abc import Mapping
from typing import Any

from auditor import CodeInfo, ReportFormat, ReportView, hookimpl
from auditor.report.view import AuditError, AuditView, FindingView
from auditor_plugins.reports import _common

__all__ = ["render"]

# Characters XML 1.0 cannot hold at all (escaping does not help): dropped.
_INVALID_XML = re.compile("[^\u0009\u000a\u000d\u0020-\ud7ff\ue000-\ufffd\U00010000-\U0010ffff]")


def _clean(text: Any) -> str:
    return _INVALID_XML.sub("\ufffd", "" if text is None else str(text))


def _describe(finding: FindingView, line: int | None) -> str:
    where = finding.location
    if where and line:
        where += f" (manifest line {line})"
    parts = [f"[{finding.severity}] {finding.code} {finding.title}", finding.message]
    if finding.hint:
        parts.append(f"hint: {finding.hint}")
    if where:
        parts.append(f"location: {where}")
    return "\n".join(parts)


def _seconds(value: Any) -> str:
    return f"{value:.3f}" if isinstance(value, (int, float)) else "0"


def render(report: ReportView | Mapping[str, Any], catalog: Mapping[str, CodeInfo]) -> str:
    view = ReportView.of(report)
    findings = _common.sorted_findings(view.findings)
    codes = _common.audit_codes(view)
    audits = {a.name: a for a in view.audits}
    for name in codes:
        # Findings of an audit the report does not list (hand-edited or partial reports) still show.
        audits.setdefault(name, AuditView(name, "failed"))
    root = ET.Element("testsuites", name="auditor")
    totals = {"tests": 0, "failures": 0, "errors": 0, "skipped": 0}
    for name, audit in audits.items():  # the report's audit order: the order they ran in
        counts = _suite(
            root, view, audit, [f for f in findings if f.audit == name], codes.get(name, []), catalog
        )
        for key, value in counts.items():
            totals[key] += value
    for key, value in totals.items():
        root.set(key, str(value))
    root.set("time", _seconds(view.duration_s))
    ET.indent(root)
    return '<?xml version="1.0" encoding="UTF-8"?>\n' + ET.tostring(root, encoding="unicode") + "\n"


def _suite(
    root: ET.Element,
    view: ReportView,
    audit: AuditView,
    findings: list[FindingView],
    codes: list[str],
    catalog: Mapping[str, CodeInfo],
) -> dict[str, int]:
    """The testsuite of one audit, a testcase per code it checked; returns its counts."""
    suite = ET.SubElement(root, "testsuite", name=_clean(audit.name))
    counts = {"tests": 0, "failures": 0, "errors": 0, "skipped": 0}
    properties = ET.SubElement(suite, "properties")
    for key, value in (
        ("manifest", view.manifest.path),
        ("fail_on", view.fail_on),
        ("status", audit.status),
        ("version", audit.version),
    ):
        ET.SubElement(properties, "property", name=key, value=_clean(value))
    for code in codes:
        info = catalog.get(code)
        own = [f for f in findings if f.code == code]
        title = info.title if info else (own[0].title if own else "")
        case = ET.SubElement(
            suite,
            "testcase",
            classname=_clean(f"auditor.{audit.name}"),
            name=_clean(f"{code} {title}".strip()),
            time="0",
        )
        counts["tests"] += 1
        failing = [f for f in own if _common.reaches(f.severity, view.fail_on)]
        if audit.status == "errored":
            error = audit.error or AuditError("error")
            node = ET.SubElement(
                case,
                "error",
                type=_clean(error.type),
                message=_clean(f"audit {audit.name} crashed: {error.message}"),
            )
            node.text = _clean(error.traceback)
            counts["errors"] += 1
        elif audit.status in ("skipped", "disabled"):
            ET.SubElement(case, "skipped", message=_clean(audit.reason or f"audit {audit.status}"))
            counts["skipped"] += 1
        elif failing:
            node = ET.SubElement(
                case, "failure", type=_clean(failing[0].severity), message=_clean(failing[0].message)
            )
            node.text = _clean("\n\n".join(_describe(f, view.line_of(f)) for f in failing))
            counts["failures"] += 1
        below = [f for f in own if f not in failing]
        if below and audit.status not in ("errored", "skipped", "disabled"):
            out = ET.SubElement(case, "system-out")
            out.text = _clean("\n\n".join(_describe(f, view.line_of(f)) for f in below))
    for key, value in counts.items():
        suite.set(key, str(value))
    suite.set("time", _seconds(audit.duration_s))
    return counts


@hookimpl
def auditor_report_formats() -> list[ReportFormat]:
    return [
        ReportFormat(
            "junit",
            "report.junit.xml",
            render,
            "JUnit XML: a testsuite per audit, a testcase per code, failures at or above fail_on",
            takes_view=True,
        )
    ]
