"""Running audits from Python: what ``auditor run`` does, minus the terminal."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

from auditor.report.format import require_report_formats
from auditor.run.registry import Registry, load_registry

__all__ = ["RunOutcome", "run_manifest"]


@dataclass
class RunOutcome:
    report: dict[str, Any]
    written: list[tuple[str, Path]]

    @property
    def exit_code(self) -> int:
        return int(self.report["exit_code"])

    @property
    def findings(self) -> list[dict[str, Any]]:
        return list(self.report["findings"])

    def codes(self) -> set[str]:
        return {f["code"] for f in self.report["findings"]}


def run_manifest(
    manifest: str | Path,
    *,
    only: Sequence[str] = (),
    skip: Sequence[str] = (),
    select: Sequence[str] = (),
    ignore: Sequence[str] = (),
    static: bool = False,
    fail_on: str | None = None,
    formats: Sequence[str] | None = None,
    output_dir: Path | None = None,
    use_cache: bool = True,
    registry: Registry | None = None,
    progress: Any = None,
    on_audit_done: Callable[[Any], None] | None = None,
    scheduler: str | None = None,
    redact: bool | None = None,
) -> RunOutcome:
    """Load, validate and run ``manifest``; write its reports; return the report.

    Raises :class:`auditor.ManifestInvalid` / :class:`auditor.UsageError` for
    the problems the CLI answers with exit code 2. ``scheduler`` (``local`` or a
    Dask scheduler address) overrides the manifest's ``scheduler`` key.
    ``redact`` (default: the manifest's ``report.redact``) writes paths relative
    to the manifest and no host details (see ``auditor.report._redact``).
    """
    from auditor.manifest.load import load_manifest
    from auditor.report.document import build_report
    from auditor.report.files import write_reports
    from auditor.run.context import RunContext
    from auditor.run.runner import Selection, run_audits

    registry = registry or load_registry()
    loaded = load_manifest(manifest, registry)
    selection = Selection(
        only=only, skip=skip, select=select, ignore=ignore, static=static, fail_on=fail_on or loaded.fail_on
    )
    if formats is None:
        # report.formats was checked with the manifest (exit 2 naming its line)
        formats = list(loaded.report_config.get("formats") or [])
        if not formats:
            formats = [f for f in ("json", "html") if f in registry.report_formats]
    else:
        require_report_formats(formats, registry.report_formats, given_as="--format")  # before the audits run
    from auditor.data._storage import check_extras

    check_extras(loaded, scheduler)
    context = RunContext(loaded, registry, use_cache=use_cache, progress=progress, scheduler=scheduler)
    started_at = datetime.now(timezone.utc)
    result = run_audits(context, selection, on_audit_done=on_audit_done)
    report = build_report(context, result, started_at)
    if redact if redact is not None else bool(loaded.report_config.get("redact")):
        from auditor.report._redact import redact as redacted

        report = redacted(report, loaded.base_dir)
    # expanduser: 'report.dir: ~/x' means the home folder, not a folder named '~'.
    target = output_dir or (
        loaded.base_dir / Path(str(loaded.report_config.get("dir", "reports"))).expanduser()
    )
    written = write_reports(report, formats, target, registry)
    return RunOutcome(report, written)
