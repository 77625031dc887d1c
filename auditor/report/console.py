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
from auditor.report.view import AuditError, AuditView, FindingView, ReportView

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
    report: ReportView | Mapping[str, Any],
    written: Sequence[tuple[str, Path]] = (),
    *,
    verbose: bool = False,
    timings: bool = True,
) -> None:
    """The whole report: manifest problems, then each audit's findings, then the counts."""
    view = ReportView.of(report)
    _print_problems(console, view)
    by_id = {f.id: f for f in view.findings if f.id}
    consequences: dict[str, list[FindingView]] = {}
    for finding in view.findings:
        if finding.caused_by in by_id:
            consequences.setdefault(finding.caused_by, []).append(finding)
    for audit in view.audits:
        if audit.status == "errored":
            _print_errored(console, audit, verbose=verbose)
        else:
            _print_audit(console, audit, view.findings_of(audit.name), by_id, consequences)
    _print_accepted(console, view)
    _print_counts(console, view, timings=timings)
    for name, path in written:
        console.print(f"  [dim]{escape(_p(name))} report:[/dim] {escape(_p(path))}")


def _print_problems(console: Console, view: ReportView) -> None:
    if not view.problems:
        return
    # Each once, before the audits: an audit that needed the split says so in its reason.
    console.print()
    console.rule(
        Text(f"manifest ({plural(len(view.problems), 'problem')})", style="bold magenta"), align="left"
    )
    for problem in view.problems:
        where = display_path(view.manifest.path) + (f":{problem.line}" if problem.line else "")
        # The message quotes the manifest (a root named with an OSC sequence would retitle the terminal).
        console.print(Text.assemble(("  error ", "bold red"), (_p(f"{where}: {problem.message}"), "")))
        if problem.hint:
            console.print(Text(f"          hint: {_p(problem.hint)}", style="dim"))


def _print_errored(console: Console, audit: AuditView, *, verbose: bool) -> None:
    console.print()
    error = audit.error or AuditError()
    if audit.stopped_by_manifest:
        # Not a bug in the audit: the manifest names something that is not there.
        console.rule(Text(f"{audit.name}: stopped by the manifest", style="bold magenta"), align="left")
        console.print(Text(f"  {_p(error.message)}"))
        return
    console.rule(Text(f"{audit.name}: crashed", style="bold magenta"), align="left")
    console.print(Text(f"  {_p(error.type if audit.error else 'Error')}: {_p(error.message)}"))
    if verbose and error.traceback:
        console.print(Text(_p(error.traceback), style="dim"))


def _print_audit(
    console: Console,
    audit: AuditView,
    items: list[FindingView],
    by_id: Mapping[str, FindingView],
    consequences: Mapping[str, list[FindingView]],
) -> None:
    if not items and not audit.notes:
        return
    console.print()
    title = f"{audit.name} ({len(items)})" if items else f"{audit.name}: notes"
    console.rule(Text(title, style="bold"), align="left")
    for finding in sorted(items, key=lambda f: (-severity_rank(f.severity), f.code)):
        root = by_id.get(finding.caused_by or "")
        if root is not None:
            if root.audit != audit.name:
                # Shown under its root cause in another audit's section; leave a pointer here.
                console.print(
                    Text(f"  {finding.code} follows from {root.id} ({root.audit}): shown there", style="dim")
                )
            continue  # else printed just above, under its root
        _print_finding(console, finding, indent="  ")
        for effect in consequences.get(finding.id, []):
            _print_finding(console, effect, indent="      -> ", audit_name=effect.audit)
    for note in audit.notes:
        console.print(Text(f"          note: {_p(note)}", style="dim"))


def _print_accepted(console: Console, view: ReportView) -> None:
    """Findings accepted on purpose: one line each with who accepted it and why, after the live ones."""
    if not view.accepted:
        return
    console.print()
    console.rule(
        Text(f"accepted ({len(view.accepted)}; they do not fail the run)", style="dim"), align="left"
    )
    for finding in view.accepted:
        line = Text(f"  {finding.code} {finding.severity:<7} {_p(finding.message)}", style="dim")
        if finding.location:
            line.append(f"  [{_p(finding.location)}]", style="dim")
        console.print(line)
        console.print(
            Text(
                f"          accepted by {_p(finding.accepted_by)}: {_p(finding.accepted_reason)}", style="dim"
            )
        )


def _print_counts(console: Console, view: ReportView, *, timings: bool) -> None:
    console.print()
    counts = Text("  ")
    for severity in SEVERITIES:
        number = view.summary.count(severity)
        counts.append(plural(number, severity), style=SEVERITY_STYLE[severity] if number else "dim")
        counts.append("  ")
    stopped = sum(1 for a in view.audits if a.stopped_by_manifest)
    crashed = sum(1 for a in view.audits if a.crashed)
    if crashed:
        counts.append(f"{plural(crashed, 'audit')} crashed  ", style="bold magenta")
    if stopped:
        counts.append(f"{plural(stopped, 'audit')} stopped by the manifest  ", style="bold magenta")
    if view.problems:
        counts.append(f"{plural(len(view.problems), 'manifest problem')}  ", style="bold magenta")
    disabled = [a.name for a in view.audits if a.status == "disabled"]
    if view.accepted:
        counts.append(f"{len(view.accepted)} accepted  ", style="dim")
    if disabled:  # turning an audit off is a choice; it stays visible on every run
        counts.append(f"{plural(len(disabled), 'audit')} disabled ({', '.join(disabled)})  ", style="yellow")
    # Timings vary run to run; pre-commit users expect byte-stable output, so --quiet drops them.
    timing = f"in {format_duration(view.duration_s)}; " if timings else ""
    counts.append(f"{timing}fail_on={view.fail_on}", style="dim")
    console.print(counts)


def _print_finding(console: Console, finding: FindingView, *, indent: str, audit_name: str = "") -> None:
    style = SEVERITY_STYLE[finding.severity]
    head = Text.assemble(
        (f"{indent}{finding.code} ", style),
        (f"{finding.severity:<7} ", style),
        (_p(finding.message), ""),
    )
    if finding.location:
        head.append(f"  [{_p(finding.location)}]", style="dim")
    if audit_name:
        head.append(f"  ({audit_name})", style="dim")
    console.print(head)
    if finding.hint:
        console.print(Text(f"{' ' * max(10, len(indent) + 8)}hint: {_p(finding.hint)}", style="dim"))
