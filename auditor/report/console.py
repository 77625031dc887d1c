"""Terminal output with rich: findings grouped by audit, coloured by severity."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from rich.console import Console
from rich.markup import escape
from rich.text import Text

from auditor._util.paths import display_path
from auditor._util.printable import printable as _p
from auditor.findings import SEVERITIES, severity_rank
from auditor.report.numbers import format_duration, plural

__all__ = ["SEVERITY_STYLE", "make_console", "print_audit_line", "print_report"]

SEVERITY_STYLE = {"error": "bold red", "warning": "yellow", "info": "cyan"}
STATUS_STYLE = {
    "passed": "green",
    "failed": "red",
    "errored": "bold magenta",
    "skipped": "dim",
    "disabled": "dim",
}


def make_console(*, stderr: bool = False, no_color: bool = False) -> Console:
    console = Console(stderr=stderr, no_color=no_color, highlight=False, soft_wrap=False)
    # Piped or captured output (CI logs, pre-commit, files) must not hard-wrap at 80 columns:
    # continuation lines at column 0 break grep and copy-paste. Only a terminal wraps.
    console.soft_wrap = not console.is_terminal
    return console


def print_audit_line(console: Console, result: Any) -> None:
    """One line per audit as it finishes, so long runs show life."""
    style = STATUS_STYLE.get(result.status, "")
    text = Text.assemble(
        ("  ", ""),
        (f"{result.status:<8}", style),
        (f" {result.audit.name:<20}", "bold"),
        (f"  {format_duration(result.duration_s)}", "dim"),
    )
    if result.reason:
        text.append(f"  ({_p(result.reason)})", style="dim")
    console.print(text)


def print_report(
    console: Console,
    report: Mapping[str, Any],
    written: Sequence[tuple[str, Path]] = (),
    *,
    verbose: bool = False,
    timings: bool = True,
) -> None:
    findings = report["findings"]
    problems = [p for p in report.get("problems") or [] if isinstance(p, Mapping)]
    if problems:
        # Each once, before the audits: an audit that needed the split says so in its reason.
        console.print()
        console.rule(
            Text(f"manifest ({plural(len(problems), 'problem')})", style="bold magenta"), align="left"
        )
        path = report.get("manifest", {}).get("path", "")
        for problem in problems:
            where = display_path(path) + (f":{problem['line']}" if problem.get("line") else "")
            console.print(
                Text.assemble(("  error ", "bold red"), (f"{where}: {problem.get('message', '')}", ""))
            )
            if problem.get("hint"):
                console.print(Text(f"          hint: {problem['hint']}", style="dim"))
    by_audit: dict[str, list[Mapping[str, Any]]] = {}
    for finding in findings:
        by_audit.setdefault(finding["audit"], []).append(finding)
    by_id = {f["id"]: f for f in findings if f.get("id")}
    consequences: dict[str, list[Mapping[str, Any]]] = {}
    for finding in findings:
        if finding.get("caused_by") in by_id:
            consequences.setdefault(finding["caused_by"], []).append(finding)
    for audit in report["audits"]:
        items = by_audit.get(audit["name"], [])
        if audit["status"] == "errored":
            console.print()
            error = audit.get("error") or {}
            if _manifest_problem(audit):
                # Not a bug in the audit: the manifest names something that is not there.
                console.rule(
                    Text(f"{audit['name']}: stopped by the manifest", style="bold magenta"), align="left"
                )
                console.print(Text(f"  {_p(error.get('message', ''))}"))
                continue
            console.rule(Text(f"{audit['name']}: crashed", style="bold magenta"), align="left")
            console.print(Text(f"  {_p(error.get('type', 'Error'))}: {_p(error.get('message', ''))}"))
            if verbose and error.get("traceback"):
                console.print(Text(_p(error["traceback"]), style="dim"))
            continue
        notes = audit.get("notes") or []
        if not items and not notes:
            continue
        console.print()
        title = f"{audit['name']} ({len(items)})" if items else f"{audit['name']}: notes"
        console.rule(Text(title, style="bold"), align="left")
        for finding in sorted(items, key=lambda f: (-severity_rank(f["severity"]), f["code"])):
            root = by_id.get(finding.get("caused_by") or "")
            if root is not None:
                if root["audit"] == audit["name"]:
                    continue  # printed just above, under its root
                # Shown under its root cause in another audit's section; leave a pointer here.
                console.print(
                    Text(
                        f"  {finding['code']} follows from {root['id']} ({root['audit']}): shown there",
                        style="dim",
                    )
                )
                continue
            _print_finding(console, finding, indent="  ")
            for effect in consequences.get(finding.get("id") or "", []):
                _print_finding(console, effect, indent="      -> ", audit_name=effect["audit"])
        for note in notes:
            console.print(Text(f"          note: {_p(note)}", style="dim"))
    summary = report["summary"]
    console.print()
    counts = Text("  ")
    for severity in SEVERITIES:
        counts.append(
            plural(summary[severity], severity),
            style=SEVERITY_STYLE[severity] if summary[severity] else "dim",
        )
        counts.append("  ")
    stopped = sum(1 for a in report["audits"] if a["status"] == "errored" and _manifest_problem(a))
    crashed = sum(1 for a in report["audits"] if a["status"] == "errored") - stopped
    if crashed:
        counts.append(f"{plural(crashed, 'audit')} crashed  ", style="bold magenta")
    if stopped:
        counts.append(f"{plural(stopped, 'audit')} stopped by the manifest  ", style="bold magenta")
    if problems:
        counts.append(f"{plural(len(problems), 'manifest problem')}  ", style="bold magenta")
    disabled = [a["name"] for a in report["audits"] if a["status"] == "disabled"]
    if disabled:  # turning an audit off is a choice; it stays visible on every run
        counts.append(f"{plural(len(disabled), 'audit')} disabled ({', '.join(disabled)})  ", style="yellow")
    # Timings vary run to run; pre-commit users expect byte-stable output, so --quiet drops them.
    timing = f"in {format_duration(report['duration_s'])}; " if timings else ""
    counts.append(f"{timing}fail_on={report.get('fail_on', 'error')}", style="dim")
    console.print(counts)
    for name, path in written:
        console.print(f"  [dim]{escape(_p(name))} report:[/dim] {escape(_p(path))}")


def _print_finding(
    console: Console, finding: Mapping[str, Any], *, indent: str, audit_name: str = ""
) -> None:
    style = SEVERITY_STYLE[finding["severity"]]
    head = Text.assemble(
        (f"{indent}{finding['code']} ", style),
        (f"{finding['severity']:<7} ", style),
        (_p(finding["message"]), ""),
    )
    if finding.get("location"):
        head.append(f"  [{_p(finding['location'])}]", style="dim")
    if audit_name:
        head.append(f"  ({audit_name})", style="dim")
    console.print(head)
    if finding.get("hint"):
        console.print(Text(f"{' ' * max(10, len(indent) + 8)}hint: {_p(finding['hint'])}", style="dim"))


def _manifest_problem(audit: Mapping[str, Any]) -> bool:
    """The audit errored because the manifest is wrong (exit 2 all the same), not because it crashed."""
    return (audit.get("error") or {}).get("type") == "ManifestError"
