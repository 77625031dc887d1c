"""What every experiment-tracker integration logs of a run, computed once (MLflow, W&B, Lightning loggers).

A tracker gets the same numbers and rows whichever one it is: counts per severity and per audit as
metrics (``auditor/error``, ``auditor/label_distribution/warning``, ...), the exit code, a table of
findings (one row each, accepted ones marked), and the JSON and HTML reports as files. Nothing here
imports a tracker.
"""

from __future__ import annotations

import tempfile
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from auditor.findings import SEVERITIES
from auditor.report.view import ReportView

__all__ = ["COLUMNS", "as_report", "finding_rows", "metrics", "one_line", "report_files"]

#: The columns of the findings table, in order.
COLUMNS = ("severity", "code", "audit", "location", "message", "hint", "fingerprint", "accepted")


def as_report(result: Any) -> dict[str, Any]:
    """The report document of ``result``: a :class:`auditor.CheckResult` or a report dict."""
    report = getattr(result, "report", result)
    if not isinstance(report, Mapping) or "findings" not in report:
        raise TypeError(
            f"log_report: expected an auditor.CheckResult (what auditor.check and run_manifest return) or "
            f"its .report dict, found {type(result).__name__}; hint: pass the result of auditor.check(...)"
        )
    return dict(report)


def metrics(report: Mapping[str, Any], prefix: str = "auditor") -> dict[str, float]:
    """Counts per severity, per audit and severity, accepted findings and the exit code, as numbers."""
    view = ReportView.of(report)
    values: dict[str, float] = {f"{prefix}/{s}": float(view.summary.count(s)) for s in SEVERITIES}
    values[f"{prefix}/total"] = float(view.summary.total)
    values[f"{prefix}/accepted"] = float(len(view.accepted))
    values[f"{prefix}/exit_code"] = float(view.exit_code if view.exit_code is not None else 2)
    for audit in view.audits:
        for severity in SEVERITIES:
            count = audit.count(severity)
            values[f"{prefix}/{audit.name}/{severity}"] = float(
                count if isinstance(count, (int, float)) else 0
            )
    return values


def finding_rows(report: Mapping[str, Any]) -> list[list[str]]:
    """One row per finding (live ones first, most severe first; then the accepted ones), as strings."""
    view = ReportView.of(report)
    rank = {s: i for i, s in enumerate(SEVERITIES)}

    def ordered(items: Any) -> list[Any]:
        return sorted(items, key=lambda f: (rank.get(f.severity, 9), f.code, f.location, f.message))

    rows = []
    for finding in [*ordered(view.findings), *ordered(view.accepted)]:
        accepted = f"{finding.accepted_by}: {finding.accepted_reason}" if finding.accepted_by else ""
        rows.append(
            [
                finding.severity,
                finding.code,
                finding.audit,
                finding.location,
                finding.message,
                finding.hint,
                finding.fingerprint,
                accepted,
            ]
        )
    return rows


def one_line(report: Mapping[str, Any]) -> str:
    """``auditor: failed (exit 1): 2 errors, 1 warning, 0 info``: what a tracker's run note says."""
    view = ReportView.of(report)
    word = (
        {0: "passed", 1: "failed"}.get(view.exit_code or 0, "errored") if view.exit_code is not None else "?"
    )
    counts = ", ".join(
        f"{view.summary.count(s)} {s}{'s' if view.summary.count(s) != 1 and s != 'info' else ''}"
        for s in SEVERITIES
    )
    return f"auditor: {word} (exit {view.exit_code}): {counts}"


@contextmanager
def report_files(
    report: Mapping[str, Any], formats: tuple[str, ...] = ("json", "html")
) -> Iterator[list[Path]]:
    """The report rendered in ``formats`` into a temporary folder, removed afterwards."""
    from auditor.report.files import write_reports
    from auditor.run.registry import load_registry

    registry = load_registry()
    wanted = [f for f in formats if f in registry.report_formats]
    with tempfile.TemporaryDirectory(prefix="auditor-tracker-") as folder:
        written = write_reports(report, wanted, Path(folder), registry, include_json="json" in wanted)
        yield [path for _, path in written]
