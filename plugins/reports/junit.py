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

from auditor import CodeInfo, ReportFormat, hookimpl
from auditor_plugins.reports import _common

__all__ = ["render"]

# Characters XML 1.0 cannot hold at all (escaping does not help): dropped.
_INVALID_XML = re.compile("[^\u0009\u000a\u000d\u0020-\ud7ff\ue000-\ufffd\U00010000-\U0010ffff]")


def _clean(text: Any) -> str:
    return _INVALID_XML.sub("\ufffd", "" if text is None else str(text))


def _describe(finding: Mapping[str, Any], line: int | None) -> str:
    where = str(finding.get("location") or "")
    if where and line:
        where += f" (manifest line {line})"
    parts = [
        f"[{finding.get('severity')}] {finding.get('code')} {finding.get('title', '')}",
        str(finding.get("message", "")),
    ]
    if finding.get("hint"):
        parts.append(f"hint: {finding['hint']}")
    if where:
        parts.append(f"location: {where}")
    return "\n".join(parts)


def _seconds(value: Any) -> str:
    return f"{value:.3f}" if isinstance(value, (int, float)) else "0"


def render(report: dict[str, Any], catalog: Mapping[str, CodeInfo]) -> str:
    fail_on = str(report.get("fail_on") or "error")
    findings = _common.sorted_findings(report.get("findings") or [])
    codes = _common.audit_codes(report)
    audits = {str(a.get("name")): a for a in report.get("audits") or [] if isinstance(a, Mapping)}
    for name in codes:
        audits.setdefault(name, {"name": name, "status": "failed"})
    root = ET.Element("testsuites", name="auditor")
    totals = {"tests": 0, "failures": 0, "errors": 0, "skipped": 0}
    for name, audit in audits.items():  # the report's audit order: the order they ran in
        status = str(audit.get("status", ""))
        suite = ET.SubElement(root, "testsuite", name=_clean(name))
        counts = {"tests": 0, "failures": 0, "errors": 0, "skipped": 0}
        properties = ET.SubElement(suite, "properties")
        for key, value in (
            ("manifest", (report.get("manifest") or {}).get("path", "")),
            ("fail_on", fail_on),
            ("status", status),
            ("version", audit.get("version", "")),
        ):
            ET.SubElement(properties, "property", name=key, value=_clean(value))
        for code in codes.get(name, []):
            info = catalog.get(code)
            own = [f for f in findings if f.get("code") == code and str(f.get("audit")) == name]
            title = info.title if info else (own[0].get("title", "") if own else "")
            case = ET.SubElement(
                suite,
                "testcase",
                classname=_clean(f"auditor.{name}"),
                name=_clean(f"{code} {title}".strip()),
                time="0",
            )
            counts["tests"] += 1
            failing = [f for f in own if _common.reaches(f.get("severity"), fail_on)]
            if status == "errored":
                error = audit.get("error") or {}
                node = ET.SubElement(
                    case,
                    "error",
                    type=_clean(error.get("type", "error")),
                    message=_clean(f"audit {name} crashed: {error.get('message', '')}"),
                )
                node.text = _clean(error.get("traceback", ""))
                counts["errors"] += 1
            elif status in ("skipped", "disabled"):
                ET.SubElement(case, "skipped", message=_clean(audit.get("reason") or f"audit {status}"))
                counts["skipped"] += 1
            elif failing:
                node = ET.SubElement(
                    case,
                    "failure",
                    type=_clean(failing[0].get("severity")),
                    message=_clean(failing[0].get("message", "")),
                )
                node.text = _clean(
                    "\n\n".join(_describe(f, _common.finding_line(report, f)) for f in failing)
                )
                counts["failures"] += 1
            below = [f for f in own if f not in failing]
            if below and status not in ("errored", "skipped", "disabled"):
                out = ET.SubElement(case, "system-out")
                out.text = _clean("\n\n".join(_describe(f, _common.finding_line(report, f)) for f in below))
        for key, value in counts.items():
            suite.set(key, str(value))
            totals[key] += value
        suite.set("time", _seconds(audit.get("duration_s")))
    for key, value in totals.items():
        root.set(key, str(value))
    root.set("time", _seconds(report.get("duration_s")))
    ET.indent(root)
    return '<?xml version="1.0" encoding="UTF-8"?>\n' + ET.tostring(root, encoding="unicode") + "\n"


@hookimpl
def auditor_report_formats() -> list[ReportFormat]:
    return [
        ReportFormat(
            "junit",
            "report.junit.xml",
            render,
            "JUnit XML: a testsuite per audit, a testcase per code, failures at or above fail_on",
        )
    ]
