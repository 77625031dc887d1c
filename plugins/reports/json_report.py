"""``json``: the canonical report, valid against ``schemas/report.schema.json``."""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any

from auditor import CodeInfo, ReportFormat, hookimpl


def render(report: dict[str, Any], catalog: Mapping[str, CodeInfo]) -> str:
    return json.dumps(report, indent=2, ensure_ascii=False) + "\n"


@hookimpl
def auditor_report_formats() -> list[ReportFormat]:
    return [ReportFormat("json", "report.json", render, "the full report as JSON (always written)")]
