"""``findings-csv``: one row per finding, for spreadsheets, pandas and ``sort | uniq -c``.

Columns are fixed and documented so scripts can rely on them; evidence is kept
as compact JSON in the last column. Rows follow the report's own order (audit
order, then the order each audit found them), so two runs diff cleanly.
"""

from __future__ import annotations

import csv
import io
import json
from collections.abc import Mapping
from typing import Any

from auditor import CodeInfo, ReportFormat, hookimpl

COLUMNS = ("code", "severity", "audit", "title", "location", "message", "hint", "evidence")


def render(report: dict[str, Any], catalog: Mapping[str, CodeInfo]) -> str:
    buffer = io.StringIO()
    # lineterminator "\n": the file is text for diffs and shells, not for Excel on Windows only.
    writer = csv.writer(buffer, lineterminator="\n")
    writer.writerow(COLUMNS)
    for finding in report.get("findings", []):
        info = catalog.get(finding["code"])
        writer.writerow(
            [
                finding["code"],
                finding["severity"],
                finding["audit"],
                finding.get("title") or (info.title if info else ""),
                finding.get("location", ""),
                finding["message"],
                finding.get("hint", ""),
                json.dumps(finding.get("evidence") or {}, sort_keys=True, separators=(",", ":")),
            ]
        )
    return buffer.getvalue()


FORMAT = ReportFormat(
    name="findings-csv",
    filename="findings.csv",
    render=render,
    description="one CSV row per finding: " + ", ".join(COLUMNS),
)


@hookimpl
def auditor_report_formats() -> list[ReportFormat]:
    return [FORMAT]
