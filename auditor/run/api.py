"""Running audits from Python: what ``auditor run`` does, minus the terminal."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

from auditor.report.format import require_report_formats
from auditor.run.registry import Registry, load_registry
from auditor.run.result import CheckResult

__all__ = ["CheckResult", "RunOutcome", "accept_rules", "run_manifest"]


#: The result of :func:`run_manifest` is the one result type of every run (``auditor.check``'s too);
#: the old name stays importable.
RunOutcome = CheckResult


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
    baseline: Path | str | bool | None = None,
    isolated: bool = False,
    memory_limit_gib: float | None = None,
) -> CheckResult:
    """Load, validate and run ``manifest``; write its reports; return the result.

    Raises :class:`auditor.ManifestInvalid` / :class:`auditor.UsageError` for
    the problems the CLI answers with exit code 2. ``scheduler`` (``local`` or a
    Dask scheduler address) overrides the manifest's ``scheduler`` key.
    ``redact`` (default: the manifest's ``report.redact``) writes paths relative
    to the manifest and no host details (see ``auditor.report._redact``).
    ``baseline``: a baseline file whose findings are accepted (``auditor baseline`` writes it); None
    reads ``auditor-baseline.json`` beside the manifest when it exists, False reads none.
    ``isolated`` runs the audits in a supervised worker process (what ``auditor run`` does unless
    ``--in-process``; see ``auditor.run.supervise`` and docs/reliability.md): user code that ends or
    crashes the process, hangs holding the interpreter or passes ``memory_limit_gib`` (default 80% of
    the machine's memory) becomes a finding, and the report is written with every audit that finished.
    ``progress`` is then only read for whether to show bars (the worker draws its own).
    """
    from auditor.manifest.load import load_manifest
    from auditor.report._output_dir import check_output_dir
    from auditor.report.document import build_report
    from auditor.report.files import write_reports
    from auditor.run.context import RunContext
    from auditor.run.runner import Selection, run_audits

    registry = registry or load_registry()
    loaded = load_manifest(manifest, registry)
    selection = Selection(
        only=only,
        skip=skip,
        select=select,
        ignore=ignore,
        static=static,
        fail_on=fail_on or loaded.fail_on,
        accept=accept_rules(loaded.sections.ignore, loaded.base_dir, baseline),
    )
    if formats is None:
        # report.formats was checked with the manifest (exit 2 naming its line); the defaults are kept
        # only where installed, so a project without the html plugin still gets its json.
        formats = [f for f in loaded.report.formats if f in registry.report_formats]
    else:
        require_report_formats(formats, registry.report_formats, given_as="--format")  # before the audits run
    from auditor.data._storage import check_extras

    check_extras(loaded, scheduler)
    # expanduser: 'report.dir: ~/x' means the home folder, not a folder named '~'.
    target = output_dir or (loaded.base_dir / Path(loaded.report.dir).expanduser())
    check_output_dir(target)  # a symlinked output folder is refused before any audit runs
    started_at = datetime.now(timezone.utc)
    if isolated:
        from auditor.run._progress import NullProgress
        from auditor.run.supervise import run_supervised

        context = RunContext(loaded, registry, use_cache=use_cache, scheduler=scheduler)
        supervised = run_supervised(
            context,
            selection,
            use_cache=use_cache,
            scheduler=scheduler,
            progress=progress is not None and not isinstance(progress, NullProgress),
            memory_limit_gib=memory_limit_gib,
            on_audit_done=on_audit_done,
        )
        result = supervised.result
        report = build_report(context, result, started_at, task=supervised.task, versions=supervised.versions)
    else:
        context = RunContext(loaded, registry, use_cache=use_cache, progress=progress, scheduler=scheduler)
        result = run_audits(context, selection, on_audit_done=on_audit_done)
        report = build_report(context, result, started_at)
    if redact if redact is not None else loaded.report.redact:
        from auditor.report._redact import redact as redacted

        report = redacted(report, loaded.base_dir)
    written = write_reports(report, formats, target, registry)
    return CheckResult(report, result.findings, registry, written)


def accept_rules(ignore: Any, manifest_dir: Path, baseline: Path | str | bool | None) -> Any:
    """The run's :class:`~auditor.run.accepted.AcceptRules`: the manifest's ``ignore:`` and the baseline.

    A baseline named explicitly must exist (a typo must not silently accept nothing); the default one
    is read only when it is there.
    """
    from auditor.errors import UsageError
    from auditor.run.accepted import BASELINE_NAME, AcceptRules, read_baseline

    if baseline is False:
        return AcceptRules(tuple(ignore))
    if baseline is None or baseline is True:
        default = manifest_dir / BASELINE_NAME
        return AcceptRules(tuple(ignore), read_baseline(default) if default.exists() else None)
    path = Path(baseline)
    if not path.exists():
        raise UsageError(
            f"--baseline {path}: expected a baseline file written by `auditor baseline`, found no such "
            f"file; record one with `auditor baseline MANIFEST --reason TEXT --output {path}`"
        )
    return AcceptRules(tuple(ignore), read_baseline(path))
