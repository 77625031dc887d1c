"""``json``: the canonical report, valid against ``schemas/report.schema.json``."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from auditor import CodeInfo, ReportFormat, ReportView, hookimpl
from auditor.report.document import dump_report


def render(report: ReportView | Mapping[str, Any], catalog: Mapping[str, CodeInfo]) -> str:
    # The document itself, every key a plugin added included; strict JSON: no NaN or Infinity.
    return dump_report(ReportView.of(report).document)


@hookimpl
def auditor_report_formats() -> list[ReportFormat]:
    return [
        ReportFormat(
            "json", "report.json", render, "the full report as JSON (always written)", takes_view=True
        )
    ]
