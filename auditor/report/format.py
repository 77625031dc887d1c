"""The report-format plugin declaration, and the one check of report-format names against the installed ones."""

from __future__ import annotations

from collections.abc import Callable, Collection, Iterable, Mapping
from dataclasses import dataclass
from typing import Any

from auditor._util.suggest import did_you_mean
from auditor.errors import UsageError
from auditor.findings import CodeInfo
from auditor.report.view import ReportView

__all__ = [
    "Renderer",
    "ReportFormat",
    "UnknownReportFormat",
    "require_report_formats",
    "unknown_report_formats",
]

#: ``render(report, catalog)``: ``report`` is the run's :class:`~auditor.ReportView`
#: when the format declares ``takes_view=True``, else the JSON report as a dict
#: (valid against ``report.schema.json``); ``catalog`` maps every known code to
#: its :class:`~auditor.findings.CodeInfo`. Returns the file's text or bytes.
Renderer = Callable[[Any, Mapping[str, CodeInfo]], "str | bytes"]


@dataclass(frozen=True)
class ReportFormat:
    """A report format as a plugin declares it through ``auditor_report_formats``.

    Renderers work from the saved JSON report alone, so ``auditor report
    report.json --format NAME`` can re-render any run later.

    ``render`` gets the report as a dict unless the format sets ``takes_view``:
    then it gets the :class:`~auditor.ReportView` read once for every format, typed
    and lenient about what older reports lack, with ``view.document`` for keys it
    does not type. A format declared before the view existed keeps working as it was.
    """

    name: str
    filename: str
    render: Renderer
    description: str = ""
    #: The ``auditor`` command line also prints the written file to stdout (e.g.
    #: GitHub workflow commands, which only act when a job step prints them).
    #: Writing the file never prints: the Python API leaves stdout alone.
    echo: bool = False
    #: ``render`` takes a :class:`~auditor.ReportView` instead of the report dict.
    takes_view: bool = False

    def render_report(
        self, report: ReportView | Mapping[str, Any], catalog: Mapping[str, CodeInfo]
    ) -> str | bytes:
        """The file's content for ``report`` (a view or a document), handed to ``render`` as it asks."""
        if self.takes_view:
            return self.render(ReportView.of(report), catalog)
        document = report.document if isinstance(report, ReportView) else report
        # A copy, as before the view: a format that edits its dict must not change what the next one gets.
        return self.render(dict(document), catalog)


@dataclass(frozen=True)
class UnknownReportFormat:
    """A requested report format no installed plugin declares, worded for an error message."""

    name: str
    expected: str
    hint: str


def unknown_report_formats(names: Iterable[str], installed: Collection[str]) -> list[UnknownReportFormat]:
    """Every name in ``names`` that is not in ``installed``, in order, once each.

    The one place report-format names are checked: the manifest's ``report.formats`` (exit 2 with its
    line), ``--format`` of ``auditor run`` and ``auditor report``, and writing the files all ask here.
    """
    known = sorted(installed)
    return [
        UnknownReportFormat(
            name,
            f"one of the installed report formats {known}",
            did_you_mean(name, known) or "`auditor list` shows the installed report formats",
        )
        for name in dict.fromkeys(names)
        if name not in installed
    ]


def require_report_formats(names: Iterable[str], installed: Collection[str], *, given_as: str) -> None:
    """Raise :class:`UsageError` (exit 2) for the first unknown name; ``given_as`` says where it came from."""
    unknown = unknown_report_formats(names, installed)
    if unknown:
        first = unknown[0]
        raise UsageError(
            f"{given_as} {first.name}: expected {first.expected}, found {first.name!r}; {first.hint}"
        )
