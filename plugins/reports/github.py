"""``github``: GitHub Actions workflow commands, one annotation per finding.

``::error file=audit.yaml,line=22,title=SL001 identical samples in two splits::...``
puts the finding on the manifest line in the pull request's diff and the run's
summary. Workflow commands act only when a step prints them, so this format
echoes to stdout as well as writing its file. Severities map to ``error``,
``warning`` and ``notice``. Values are escaped as the runner expects
(``%``, CR and LF in messages; additionally ``:`` and ``,`` in properties);
other control characters (ESC...) are written as visible escapes such as ``\\x1b``.

GitHub shows at most 10 error, 10 warning and 10 notice annotations per step
(50 per job) and drops the rest without a word. So the annotations are ranked,
most severe first (manifest problems and crashed audits, then findings in the
order every format uses), at most :data:`MAX_PER_KIND` of each kind are
printed, and when any were left out one last notice says how many and where
they are (the step summary, the SARIF upload, report.json).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from auditor import CodeInfo, ReportFormat, ReportView, hookimpl
from auditor.kit import printable
from auditor_plugins.reports import _common

__all__ = ["COMMANDS", "MAX_PER_KIND", "escape_data", "escape_property", "render"]

COMMANDS = {"error": "error", "warning": "warning", "info": "notice"}
#: What GitHub shows of each kind (error, warning, notice) in one step.
MAX_PER_KIND = 10


def escape_data(text: str) -> str:
    # CR and LF as the runner wants them, then every other control character (an ESC in a
    # file or class name) as a visible escape: it must not reach the log's terminal raw.
    return printable(text.replace("%", "%25").replace("\r", "%0D").replace("\n", "%0A"))


def escape_property(text: str) -> str:
    return escape_data(text).replace(":", "%3A").replace(",", "%2C")


def _command(kind: str, message: str, **properties: Any) -> str:
    props = ",".join(
        f"{key}={escape_property(str(value))}" for key, value in properties.items() if value not in (None, "")
    )
    return f"::{kind}{' ' + props if props else ''}::{escape_data(message)}"


def render(report: ReportView | Mapping[str, Any], catalog: Mapping[str, CodeInfo]) -> str:
    view = ReportView.of(report)
    path = _common.display_path(view.manifest.file) or None
    ranked: list[tuple[str, str]] = []  # (kind, command), most severe first
    for problem in view.problems:  # a split that could not be opened: on its manifest line
        message = problem.message + (f"\nhint: {problem.hint}" if problem.hint else "")
        title = f"auditor: manifest problem at {problem.key}"
        ranked.append(("error", _command("error", message, file=path, line=problem.line, title=title)))
    for audit in view.audits:
        if audit.status == "errored":
            error = audit.error
            ranked.append(
                (
                    "error",
                    _command(
                        "error",
                        f"{error.type if error else 'error'}: {error.message if error else ''}",
                        file=path,
                        title=f"auditor: audit {audit.name} crashed",
                    ),
                )
            )
    for finding in _common.sorted_findings(view.findings):
        message = finding.message
        if finding.hint:
            message += f"\nhint: {finding.hint}"
        if finding.location:
            message += f"\n({finding.location}; `auditor explain {finding.code}` tells how to fix it)"
        kind = COMMANDS.get(finding.severity, "warning")
        command = _command(
            kind,
            message,
            file=path,
            line=view.line_of(finding),
            title=f"{finding.code} {finding.title}".strip(),
        )
        ranked.append((kind, command))
    shown, left = _capped(ranked)
    lines = [command for _, command in shown]
    if left:
        counts = ", ".join(f"{n} {kind}{'s' if n != 1 else ''}" for kind, n in left.items() if n)
        total = sum(left.values())
        lines.append(
            _command(
                "notice",
                f"{total} more annotation{'s' if total != 1 else ''} not shown ({counts}): GitHub shows at "
                f"most {MAX_PER_KIND} errors, {MAX_PER_KIND} warnings and {MAX_PER_KIND} notices per step. "
                "Every finding is in the job's step summary, the SARIF upload (code scanning) and report.json.",
                file=path,
                title=f"auditor: {total} more findings in the summary",
            )
        )
    return "".join(line + "\n" for line in lines)


def _capped(ranked: list[tuple[str, str]]) -> tuple[list[tuple[str, str]], dict[str, int]]:
    """The annotations GitHub will show, in rank order, and how many of each kind were left out.

    When anything is left out, one notice slot is kept for the notice that says so.
    """
    totals = {kind: sum(1 for k, _ in ranked if k == kind) for kind in ("error", "warning", "notice")}
    over = any(n > MAX_PER_KIND for n in totals.values())
    limits = {"error": MAX_PER_KIND, "warning": MAX_PER_KIND, "notice": MAX_PER_KIND - (1 if over else 0)}
    shown: list[tuple[str, str]] = []
    used = dict.fromkeys(limits, 0)
    left = dict.fromkeys(limits, 0)
    for kind, command in ranked:
        if used[kind] < limits[kind]:
            used[kind] += 1
            shown.append((kind, command))
        else:
            left[kind] += 1
    return shown, left if any(left.values()) else {}


@hookimpl
def auditor_report_formats() -> list[ReportFormat]:
    return [
        ReportFormat(
            "github",
            "github-annotations.txt",
            render,
            "GitHub Actions annotations (also printed to stdout)",
            echo=True,
            takes_view=True,
        )
    ]
