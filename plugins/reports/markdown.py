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

from auditor import CodeInfo, ReportFormat, ReportView, hookimpl
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


def render(report: ReportView | Mapping[str, Any], catalog: Mapping[str, CodeInfo]) -> str:
    view = ReportView.of(report)
    word, sentence = _common.verdict(view)
    name = view.manifest.name or _common.display_path(view.manifest.file) or "manifest"
    counts = ", ".join(plural(view.summary.count(s), s) for s in _common.SEVERITY_ORDER)
    out = [
        f"### auditor: {_VERDICT.get(word, word)}: {cell(name)}",
        "",
        f"{counts} &middot; {cell(sentence)} &middot; exit code {view.exit_code}",
        "",
        *_problems(view),
        "| audit | status | errors | warnings | info | time |",
        "| --- | --- | ---: | ---: | ---: | ---: |",
    ]
    for audit in view.audits:
        seconds = audit.duration_s
        out.append(
            f"| {cell(audit.name)} | {cell(audit.status)} | {audit.count('error')} | "
            f"{audit.count('warning')} | {audit.count('info')} | "
            f"{format_duration(seconds) if seconds is not None else ''} |"
        )
    out += _findings(view)
    out += _accepted(view)
    for audit in view.audits:
        if audit.status == "errored":
            error = audit.error
            out += [
                "",
                f"**{cell(audit.name)} crashed:** {cell(error and error.type)}: {cell(error and error.message)}",
            ]
    out += ["", "`auditor explain CODE` tells what a finding means and how to fix it."]
    return "\n".join(out) + "\n"


def _problems(view: ReportView) -> list[str]:
    if not view.problems:
        return []
    out = ["**Manifest problems** (the audits that need these splits were skipped):", ""]
    out += [
        f"- \u274c {cell(p.message)}" + (f"<br>fix: {cell(p.hint, 300)}" if p.hint else "")
        for p in view.problems
    ]
    return [*out, ""]


def _findings(view: ReportView) -> list[str]:
    findings = _common.sorted_findings(view.findings)
    if not findings:
        return []
    out = ["", "| severity | code | where | finding |", "| --- | --- | --- | --- |"]
    for finding in findings[:MAX_ROWS]:
        where = finding.location
        line = view.line_of(finding)
        where += f":{line}" if line and where else ""
        text = cell(finding.message)
        if finding.hint:
            text += "<br>hint: " + cell(finding.hint, 300)
        out.append(
            f"| {_MARK.get(finding.severity, cell(finding.severity))} | "
            f"{cell(finding.code)} | {cell(where)} | {text} |"
        )
    if len(findings) > MAX_ROWS:
        out += ["", f"... and {len(findings) - MAX_ROWS} more findings in the full report."]
    return out


def _accepted(view: ReportView) -> list[str]:
    """Findings accepted on purpose, apart from the live ones, each with who accepted it and why."""
    accepted = _common.sorted_findings(view.accepted)
    if not accepted:
        return []
    out = [
        "",
        f"<details><summary>{plural(len(accepted), 'accepted finding')} (they do not fail the run)</summary>",
        "",
        "| code | where | finding | accepted by | reason |",
        "| --- | --- | --- | --- | --- |",
    ]
    for finding in accepted[:MAX_ROWS]:
        out.append(
            f"| {cell(finding.code)} | {cell(finding.location)} | {cell(finding.message, 200)} | "
            f"{cell(finding.accepted_by)} | {cell(finding.accepted_reason, 200)} |"
        )
    if len(accepted) > MAX_ROWS:
        out += ["", f"... and {len(accepted) - MAX_ROWS} more accepted findings in the full report."]
    return [*out, "", "</details>"]


@hookimpl
def auditor_report_formats() -> list[ReportFormat]:
    return [
        ReportFormat(
            "markdown",
            "report.md",
            render,
            "compact Markdown summary for PR comments and job summaries",
            takes_view=True,
        )
    ]
