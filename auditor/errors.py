"""Errors that end a run with exit code 2, worded for the person who must fix them."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from auditor.findings import severity_at_least

__all__ = ["AuditFailed", "AuditorError", "ManifestError", "ManifestInvalid", "PluginError", "UsageError"]


class AuditorError(Exception):
    """Base class: the command cannot run as asked (exit code 2)."""

    exit_code = 2


class UsageError(AuditorError):
    """The command line is wrong."""


class PluginError(AuditorError):
    """Plugins conflict or declare something invalid."""


class ManifestError(AuditorError):
    """One problem in a manifest: where it is, what was expected, what was found."""

    def __init__(
        self,
        file: Path | str,
        key: str,
        expected: str,
        found: str,
        *,
        line: int | None = None,
        hint: str = "",
    ) -> None:
        self.file = str(file)
        self.key = key or "(top level)"
        self.expected = expected
        self.found = found
        self.line = line
        self.hint = hint
        super().__init__(self.render())

    def render(self) -> str:
        from auditor._util.paths import display_path

        shown = display_path(self.file)  # normalised, relative to the working folder when shorter
        where = f"{shown}:{self.line}" if self.line else shown
        text = f"{where}: {self.key}: expected {self.expected}, found {self.found}"
        if self.hint:
            text += f"\n  hint: {self.hint}"
        return text


class ManifestInvalid(AuditorError):
    """Every problem found in one manifest, reported together."""

    def __init__(self, errors: Sequence[ManifestError]) -> None:
        self.errors = list(errors)
        super().__init__("\n".join(error.render() for error in self.errors))


class AuditFailed(AuditorError):
    """Raised by ``CheckResult.raise_for_errors()`` (and the Lightning callback) when the audits found
    problems at ``fail_on`` or an audit errored: what ``auditor run`` answers with exit code 1 or 2."""

    def __init__(self, report: Mapping[str, Any]) -> None:
        self.report = report
        self.exit_code = int(report["exit_code"])
        fail_on = str(report.get("fail_on") or "error")
        lines = [
            f"  {f['severity']:<7} {f['code']}  {f['title']}: {f['message']}"
            for f in report["findings"]
            if severity_at_least(f["severity"], fail_on)
        ]
        errored = [
            f"  audit {a['name']} errored: {(a.get('error') or {}).get('message', '')}".rstrip()
            for a in report["audits"]
            if a["status"] == "errored"
        ]
        shown = [*errored, *lines]
        more = len(shown) - 10
        text = (
            f"auditor found {len(lines)} finding{'s' if len(lines) != 1 else ''} at or above fail_on={fail_on}"
            + (f" and {len(errored)} audit{'s' if len(errored) != 1 else ''} errored" if errored else "")
            + ":\n"
            + "\n".join(shown[:10])
            + (f"\n  ... and {more} more" if more > 0 else "")
            + "\n  hint: the full report is in .report (or the report files); fix the findings, "
            "or raise fail_on / ignore= codes you accept"
        )
        super().__init__(text)
