"""The report-format plugin declaration."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

from auditor.findings import CodeInfo

__all__ = ["Renderer", "ReportFormat"]

#: ``render(report, catalog)``: ``report`` is the JSON report as a dict (valid
#: against ``report.schema.json``), ``catalog`` maps every known code to its
#: :class:`~auditor.findings.CodeInfo`. Returns the file's text or bytes.
Renderer = Callable[[dict[str, Any], Mapping[str, CodeInfo]], "str | bytes"]


@dataclass(frozen=True)
class ReportFormat:
    """A report format as a plugin declares it through ``auditor_report_formats``.

    Renderers work from the saved JSON report alone, so ``auditor report
    report.json --format NAME`` can re-render any run later.
    """

    name: str
    filename: str
    render: Renderer
    description: str = ""
    #: The ``auditor`` command line also prints the written file to stdout (e.g.
    #: GitHub workflow commands, which only act when a job step prints them).
    #: Writing the file never prints: the Python API leaves stdout alone.
    echo: bool = False
