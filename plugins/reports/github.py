"""``github``: GitHub Actions workflow commands, one annotation per finding.

``::error file=audit.yaml,line=22,title=SL001 identical samples in two splits::...``
puts the finding on the manifest line in the pull request's diff and the run's
summary. Workflow commands act only when a step prints them, so this format
echoes to stdout as well as writing its file. Severities map to ``error``,
``warning`` and ``notice``. Values are escaped as the runner expects
(``%``, CR and LF in messages; additionally ``:`` and ``,`` in properties);
other control characters (ESC...) are written as visible escapes such as ``\\x1b``.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from auditor import CodeInfo, ReportFormat, hookimpl
from auditor.kit import printable
from auditor_plugins.reports import _common

__all__ = ["COMMANDS", "escape_data", "escape_property", "render"]

COMMANDS = {"error": "error", "warning": "warning", "info": "notice"}


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


def render(report: dict[str, Any], catalog: Mapping[str, CodeInfo]) -> str:
    path = _common.display_path(_common.manifest_path(report)) or None
    lines = []
    for problem in report.get("problems") or []:  # a split that could not be opened: on its manifest line
        if isinstance(problem, Mapping):
            message = str(problem.get("message", "")) + (
                f"\nhint: {problem['hint']}" if problem.get("hint") else ""
            )
            line = problem.get("line") if isinstance(problem.get("line"), int) else None
            lines.append(
                _command(
                    "error",
                    message,
                    file=path,
                    line=line,
                    title=f"auditor: manifest problem at {problem.get('key', '')}",
                )
            )
    for finding in _common.sorted_findings(report.get("findings") or []):
        message = str(finding.get("message", ""))
        if finding.get("hint"):
            message += f"\nhint: {finding['hint']}"
        if finding.get("location"):
            message += (
                f"\n({finding['location']}; `auditor explain {finding.get('code')}` tells how to fix it)"
            )
        lines.append(
            _command(
                COMMANDS.get(str(finding.get("severity")), "warning"),
                message,
                file=path,
                line=_common.finding_line(report, finding),
                title=f"{finding.get('code')} {finding.get('title', '')}".strip(),
            )
        )
    for audit in report.get("audits") or []:
        if isinstance(audit, Mapping) and audit.get("status") == "errored":
            error = audit.get("error") or {}
            lines.append(
                _command(
                    "error",
                    f"{error.get('type', 'error')}: {error.get('message', '')}",
                    file=path,
                    title=f"auditor: audit {audit.get('name')} crashed",
                )
            )
    return "".join(line + "\n" for line in lines)


@hookimpl
def auditor_report_formats() -> list[ReportFormat]:
    return [
        ReportFormat(
            "github",
            "github-annotations.txt",
            render,
            "GitHub Actions annotations (also printed to stdout)",
            echo=True,
        )
    ]
