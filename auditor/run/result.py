"""The result of a run, whichever way it started: ``auditor run``, ``run_manifest``, ``auditor.check``
or the Lightning callback. One type, so code that acts on a result works with all of them.

Nothing here imports torch or rich until a method needs it.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

from auditor.errors import AuditFailed
from auditor.findings import SEVERITIES
from auditor.manifest.sections import DEFAULTS

if TYPE_CHECKING:  # pragma: no cover
    from auditor.findings import Finding
    from auditor.run.registry import Registry

__all__ = ["CheckResult", "summary_line"]


class CheckResult:
    """What a run found: the report document and ways to read, save and act on it."""

    def __init__(
        self,
        report: dict[str, Any],
        findings: list[Finding],
        registry: Registry,
        written: Sequence[tuple[str, Path]] = (),
    ) -> None:
        #: The JSON report document, as ``auditor run`` writes to report.json (valid against its schema).
        self.report = report
        #: The findings (:class:`auditor.Finding`, ids and ``caused_by`` set), after ``select``/``ignore``.
        self.findings = findings
        self._registry = registry
        #: (format, path) of every report file written so far.
        self.written: list[tuple[str, Path]] = list(written)

    @property
    def exit_code(self) -> int:
        """What ``auditor run`` would exit with: 0 clean, 1 findings at ``fail_on``, 2 an audit errored."""
        return int(self.report["exit_code"])

    @property
    def ok(self) -> bool:
        return self.exit_code == 0

    def codes(self) -> set[str]:
        return {f.code for f in self.findings}

    def save(self, directory: str | Path, formats: Sequence[str] | None = None) -> list[Path]:
        """Write the report in ``formats`` (default: the manifest's default, json and html; any installed
        format) into ``directory``; return the paths written."""
        from auditor.report.files import write_reports

        wanted = list(DEFAULTS.report.formats if formats is None else formats)
        written = write_reports(self.report, wanted, Path(directory), self._registry)
        self.written.extend(written)
        return [path for _, path in written]

    def raise_for_errors(self) -> None:
        """Raise :class:`auditor.AuditFailed` when ``auditor run`` would exit non-zero; else do nothing."""
        if self.exit_code == 0:
            return
        raise AuditFailed(self.report)

    def html(self) -> str:
        """The HTML report as a page (what report.html holds)."""
        fmt = self._registry.report_formats["html"]
        content = fmt.render(dict(self.report), self._registry.catalog)
        return content.decode() if isinstance(content, bytes) else content

    def _repr_html_(self) -> str:
        from auditor.live._notebook import inline_report

        return inline_report(self.html(), summary_line(self.report))

    def __repr__(self) -> str:
        import io

        from rich.console import Console

        from auditor.report.console import print_report

        buffer = io.StringIO()
        # Plain text into the buffer: in a notebook rich would otherwise display it as a side effect.
        console = Console(
            file=buffer,
            width=110,
            no_color=True,
            color_system=None,
            force_jupyter=False,
            force_terminal=False,
            highlight=False,
            soft_wrap=False,
        )
        print_report(console, self.report, self.written, timings=False)
        return f"{summary_line(self.report)}\n{buffer.getvalue().rstrip()}"


def summary_line(report: Mapping[str, Any]) -> str:
    summary = report["summary"]
    counts = ", ".join(
        f"{summary[s]} {s}{'s' if summary[s] != 1 and s != 'info' else ''}" for s in SEVERITIES
    )
    return f"auditor: exit code {report['exit_code']} (fail_on {report['fail_on']}): {counts}"
