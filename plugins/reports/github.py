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

from auditor import CodeInfo, ReportFormat, ReportView, hookimpl
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


def render(report: ReportView | Mapping[str, Any], catalog: Mapping[str, CodeInfo]) -> str:
    view = ReportView.of(report)
    path = _common.display_path(view.manifest.file) or None
    lines = []
    for problem in view.problems:  # a split that could not be opened: on its manifest line
        message = problem.message + (f"\nhint: {problem.hint}" if problem.hint else "")
        title = f"auditor: manifest problem at {problem.key}"
        lines.append(_command("error", message, file=path, line=problem.line, title=title))
    for finding in _common.sorted_findings(view.findings):
        message = finding.message
        if finding.hint:
            message += f"\nhint: {finding.hint}"
        if finding.location:
            message += f"\n({finding.location}; `auditor explain {finding.code}` tells how to fix it)"
        lines.append(
            _command(
                COMMANDS.get(finding.severity, "warning"),
                message,
                file=path,
                line=view.line_of(finding),
                title=f"{finding.code} {finding.title}".strip(),
            )
        )
    for audit in view.audits:
        if audit.status == "errored":
            error = audit.error
            lines.append(
                _command(
                    "error",
                    f"{error.type if error else 'error'}: {error.message if error else ''}",
                    file=path,
                    title=f"auditor: audit {audit.name} crashed",
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
            takes_view=True,
        )
    ]
