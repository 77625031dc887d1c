"""What a training-framework callback says and logs after its audit (Lightning; Hugging Face alike).

A callback that audits silently leaves a user wondering whether it ran at all; one that fails with
"AuditFailed" alone sends them hunting for the report. So, on pass: one line with the counts and the
report's path; on failure: the top findings, each with its fix (the finding's hint and the
``auditor explain`` pointer), then the report's path. And when the trainer has a logger configured,
the results go where the user already looks: MLflow and W&B loggers get the full
:func:`log_report` (metrics, table, report files), any other logger the counts as metrics.
"""

from __future__ import annotations

import sys
import warnings
from collections.abc import Iterable
from typing import IO, Any

from auditor.findings import severity_at_least, severity_rank
from auditor.integrations import _tracking

__all__ = ["log_to_loggers", "outcome_lines", "print_outcome"]

#: How many findings a failing callback prints (the report has them all).
TOP = 5


def _report_path(result: Any) -> str:
    written = dict(getattr(result, "written", []) or [])
    path = written.get("html") or written.get("json")
    return str(path) if path is not None else "(no report written)"


def outcome_lines(result: Any, top: int = TOP) -> list[str]:
    """The lines a callback prints: one when the run passed, the top findings and fixes when not."""
    report = result.report
    summary = _tracking.one_line(report)
    path = _report_path(result)
    if result.exit_code == 0:
        accepted = len(report.get("accepted") or [])
        extra = f", {accepted} accepted" if accepted else ""
        return [f"{summary}{extra}; report: {path}"]
    fail_on = str(report.get("fail_on", "error"))
    failing = sorted(
        (f for f in report.get("findings") or [] if severity_at_least(f.get("severity"), fail_on)),
        key=lambda f: (-severity_rank(f.get("severity")), str(f.get("code")), str(f.get("location"))),
    )
    lines = [summary]
    for finding in failing[:top]:
        where = f" [{finding['location']}]" if finding.get("location") else ""
        lines.append(f"  {finding['code']} {finding['severity']}: {finding['message']}{where}")
        fix = str(finding.get("hint") or "").strip()
        lines.append(f"      fix: {fix + '; ' if fix else ''}`auditor explain {finding['code']}` tells more")
    if len(failing) > top:
        lines.append(f"  ... and {len(failing) - top} more at or above fail_on={fail_on}")
    crashed = [a["name"] for a in report.get("audits") or [] if a.get("status") == "errored"]
    if crashed:
        lines.append(f"  audits that errored: {', '.join(crashed)} (the report has the error)")
    lines.append(f"  report: {path}")
    return lines


def print_outcome(result: Any, file: IO[str] | None = None) -> None:
    from auditor._util.printable import printable

    stream = file or sys.stdout
    for line in outcome_lines(result):
        print(printable(line), file=stream)
    stream.flush()


def log_to_loggers(loggers: Iterable[Any], result: Any) -> list[str]:
    """Log ``result`` through each of a trainer's loggers; return the names of those that took it.

    A logger that fails is warned about, never fatal: the audit's verdict must not depend on a
    tracking server being reachable.
    """
    done = []
    for logger in loggers or []:
        kind = type(logger).__name__
        try:
            if kind == "MLFlowLogger":
                from auditor.integrations.mlflow import log_report as mlflow_log

                mlflow_log(result, run_id=logger.run_id, client=logger.experiment)
            elif kind == "WandbLogger":
                from auditor.integrations.wandb import log_report as wandb_log

                wandb_log(result, run=logger.experiment)
            elif hasattr(logger, "log_metrics"):
                logger.log_metrics(_tracking.metrics(result.report), step=0)
                if hasattr(logger, "save"):
                    logger.save()
            else:
                continue
        except Exception as exc:  # a tracker's own error: say so, keep the fit's verdict
            warnings.warn(
                f"auditor: could not log the audit to {kind}: {type(exc).__name__}: {exc}", stacklevel=2
            )
            continue
        done.append(kind)
    return done
