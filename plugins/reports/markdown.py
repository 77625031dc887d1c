"""``markdown``: a compact summary for pull-request comments and job summaries.

``cat reports/report.md >> "$GITHUB_STEP_SUMMARY"`` shows it on the run page.
Cells are escaped (HTML special characters, pipes, newlines): messages carry
file and class names, and a PR comment must not turn them into markup. The
finding list is capped so the text stays within comment size limits.
"""

from __future__ import annotations

from collections.abc import Mapping
from html import escape
from typing import Any

from auditor import CodeInfo, ReportFormat, hookimpl
from auditor.report.numbers import format_duration, plural
from auditor_plugins.reports import _common

__all__ = ["MAX_ROWS", "cell", "render"]

MAX_ROWS = 50
_MARK = {"error": "\u274c error", "warning": "\u26a0\ufe0f warning", "info": "\u2139\ufe0f info"}
_VERDICT = {"passed": "\u2705 passed", "failed": "\u274c failed", "errored": "\U0001f4a5 errored"}


def cell(text: Any, limit: int = 400) -> str:
    """A table-safe Markdown cell: no raw HTML, no pipes or newlines, bounded length."""
    value = " ".join(str("" if text is None else text).split())
    if len(value) > limit:
        value = value[: limit - 1] + "\u2026"
    # Backslash first, then the characters Markdown would read as markup.
    value = escape(value.replace("\\", "\\\\"), quote=False)
    for char in "|*_`[]":
        value = value.replace(char, "\\" + char)
    return value


def render(report: dict[str, Any], catalog: Mapping[str, CodeInfo]) -> str:
    word, sentence = _common.verdict(report)
    summary = report.get("summary") or {}
    manifest = report.get("manifest") or {}
    name = manifest.get("name") or _common.display_path(_common.manifest_path(report)) or "manifest"
    counts = ", ".join(plural(int(summary.get(s, 0) or 0), s) for s in _common.SEVERITY_ORDER)
    out = [
        f"### auditor: {_VERDICT.get(word, word)}: {cell(name)}",
        "",
        f"{counts} &middot; {cell(sentence)} &middot; exit code {report.get('exit_code')}",
        "",
    ]
    problems = [p for p in report.get("problems") or [] if isinstance(p, Mapping)]
    if problems:
        out += ["**Manifest problems** (the audits that need these splits were skipped):", ""]
        out += [
            f"- \u274c {cell(p.get('message'))}"
            + (f"<br>fix: {cell(p.get('hint'), 300)}" if p.get("hint") else "")
            for p in problems
        ]
        out.append("")
    out += [
        "| audit | status | errors | warnings | info | time |",
        "| --- | --- | ---: | ---: | ---: | ---: |",
    ]
    for audit in report.get("audits") or []:
        n = audit.get("counts") or {}
        seconds = audit.get("duration_s")
        out.append(
            f"| {cell(audit.get('name'))} | {cell(audit.get('status'))} | {n.get('error', 0)} | "
            f"{n.get('warning', 0)} | {n.get('info', 0)} | "
            f"{format_duration(seconds) if isinstance(seconds, (int, float)) else ''} |"
        )
    findings = _common.sorted_findings(report.get("findings") or [])
    if findings:
        out += ["", "| severity | code | where | finding |", "| --- | --- | --- | --- |"]
        for finding in findings[:MAX_ROWS]:
            where = str(finding.get("location") or "")
            line = _common.finding_line(report, finding)
            where += f":{line}" if line and where else ""
            text = cell(finding.get("message"))
            if finding.get("hint"):
                text += "<br>hint: " + cell(finding.get("hint"), 300)
            out.append(
                f"| {_MARK.get(str(finding.get('severity')), cell(finding.get('severity')))} | "
                f"{cell(finding.get('code'))} | {cell(where)} | {text} |"
            )
        if len(findings) > MAX_ROWS:
            out += ["", f"... and {len(findings) - MAX_ROWS} more findings in the full report."]
    crashed = [a for a in report.get("audits") or [] if a.get("status") == "errored"]
    for audit in crashed:
        error = audit.get("error") or {}
        out += [
            "",
            (
                f"**{cell(audit.get('name'))} crashed:** {cell(error.get('type'))}: "
                f"{cell(error.get('message'))}"
            ),
        ]
    out += ["", "`auditor explain CODE` tells what a finding means and how to fix it."]
    return "\n".join(out) + "\n"


@hookimpl
def auditor_report_formats() -> list[ReportFormat]:
    return [
        ReportFormat(
            "markdown", "report.md", render, "compact Markdown summary for PR comments and job summaries"
        )
    ]
