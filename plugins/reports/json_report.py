"""``json``: the canonical report, valid against ``schemas/report.schema.json``."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from auditor import CodeInfo, ReportFormat, hookimpl
from auditor.report.document import dump_report


def render(report: dict[str, Any], catalog: Mapping[str, CodeInfo]) -> str:
    return dump_report(report)  # strict JSON: no NaN or Infinity, whatever the evidence held


@hookimpl
def auditor_report_formats() -> list[ReportFormat]:
    return [ReportFormat("json", "report.json", render, "the full report as JSON (always written)")]
