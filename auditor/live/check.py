"""``auditor.check``: the audits on live objects, for notebooks and training scripts.

Same audits, same report document as ``auditor run``; the difference is only
where the model, optimizer, loss and data come from (see :mod:`auditor.live._context`).
Nothing here imports torch until :func:`check` is called.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from datetime import datetime, timezone
from pathlib import Path
from typing import TYPE_CHECKING, Any

from auditor.errors import AuditFailed, UsageError
from auditor.findings import SEVERITIES

if TYPE_CHECKING:  # pragma: no cover
    from auditor.findings import Finding
    from auditor.run.registry import Registry

__all__ = ["CheckResult", "check"]

#: Formats written by :func:`check` (``report_dir=``) and :meth:`CheckResult.save` unless told otherwise.
DEFAULT_FORMATS = ("json", "html")


class CheckResult:
    """What :func:`check` found: the report document and ways to read, save and act on it."""

    def __init__(self, report: dict[str, Any], findings: list[Finding], registry: Registry) -> None:
        #: The JSON report document, as ``auditor run`` writes to report.json (valid against its schema).
        self.report = report
        #: The findings, after ``select``/``ignore``.
        self.findings = findings
        self._registry = registry
        #: (format, path) of every report file written so far.
        self.written: list[tuple[str, Path]] = []

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
        """Write the report in ``formats`` (default json and html; any installed format) into ``directory``."""
        from auditor.report.files import write_reports

        wanted = list(DEFAULT_FORMATS if formats is None else formats)
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


def check(
    model: Any = None,
    optimizer: Any = None,
    loss: Any = None,
    *,
    train: Any = None,
    val: Any = None,
    splits: Mapping[str, Any] | None = None,
    pretrained: str | Mapping[str, Any] | None = None,
    head: str | None = None,
    task: str | Mapping[str, Any] | None = None,
    audits: Sequence[str] | Mapping[str, Any] | None = None,
    only: Sequence[str] = (),
    skip: Sequence[str] = (),
    select: Sequence[str] = (),
    ignore: Sequence[str] = (),
    static: bool = False,
    fail_on: str = "error",
    name: str = "auditor.check",
    report_dir: str | Path | None = None,
    formats: Sequence[str] | None = None,
    cache_dir: str | Path | None = None,
    base_dir: str | Path | None = None,
    progress: bool | None = None,
    loss_step: Callable[[Any, Any, int], Any] | None = None,
    registry: Registry | None = None,
    **audit_options: Mapping[str, Any] | None,
) -> CheckResult:
    """Run the installed audits on live objects and return the report.

    ``train``/``val`` and the values of ``splits`` are map-style Datasets or
    DataLoaders (whose batch size, collate function and sampler are used).
    ``model``, ``optimizer`` and ``loss`` are only read; the gradient probe
    trains deep copies. Every other keyword mirrors the manifest: ``pretrained``
    and ``head`` (``model.*``), ``task`` (``"multiclass"`` or ``{type,
    num_classes}``), ``audits`` (a mapping name -> options configures, and
    ``name: False`` disables, as in the manifest; a list of names selects like
    ``only``: every other audit is ``disabled``), ``fail_on``, and
    options per audit as keywords named after it, e.g.
    ``gradient_probe={"steps": 5}``. ``only``/``skip``/``select``/``ignore``/
    ``static`` are the command line's options. ``loss_step(model, batch, step)``
    replaces ``loss(model(inputs), targets)`` in the gradient probe (the
    Lightning callback passes the module's ``training_step``).

    Raises :class:`auditor.ManifestInvalid` when an option is wrong (the same
    messages ``auditor run`` gives for a manifest).
    """
    from auditor.live._context import (
        LIVE_PATH_NAME,
        LiveObjects,
        LiveResolver,
        LiveRunContext,
        live_manifest,
        unpack_split,
    )
    from auditor.manifest.load import manifest_from_mapping
    from auditor.report.document import build_report
    from auditor.run.registry import load_registry
    from auditor.run.runner import run_audits, select_audits

    registry = registry or load_registry()
    named = _named_splits(train, val, splits)
    datasets: dict[str, Any] = {}
    loaders = {}
    for split_name, value in named.items():
        datasets[split_name], settings = unpack_split(split_name, value)
        if settings is not None:
            loaders[split_name] = settings
    objects = LiveObjects(
        model=model, optimizer=optimizer, loss=loss, datasets=datasets, loaders=loaders, loss_step=loss_step
    )
    audit_section = _audit_section(audits, audit_options, registry)
    probe_batch = loaders["train"].batch_size if "train" in loaders else None
    if probe_batch and audit_section is not None and isinstance(audit_section.get("gradient_probe"), dict):
        audit_section["gradient_probe"].setdefault("batch_size", probe_batch)
    elif probe_batch and audit_section is None and "gradient_probe" in registry.audits:
        audit_section = {"gradient_probe": {"batch_size": probe_batch}}
    base = Path(base_dir).resolve() if base_dir is not None else Path.cwd()
    path = base / LIVE_PATH_NAME
    raw = live_manifest(
        name=name,
        base_dir=base,
        objects=objects,
        pretrained=_plain(pretrained),
        head=head,
        task=_task(task),
        audits=audit_section,
        fail_on=fail_on,
    )
    manifest = manifest_from_mapping(raw, path, LiveResolver(path, objects), registry)
    context = LiveRunContext(
        manifest,
        registry,
        objects,
        use_cache=cache_dir is not None,
        cache_dir=Path(cache_dir).resolve() if cache_dir is not None else None,
        progress=_progress(progress),
    )
    selection = _selection(audits, only, skip, select, ignore, static, fail_on)
    started_at = datetime.now(timezone.utc)
    with context.progress("auditing", len(select_audits(context, selection))) as bar:
        result = run_audits(context, selection, on_audit_done=lambda _: bar.advance())
    report = build_report(context, result, started_at)
    outcome = CheckResult(report, result.findings, registry)
    if report_dir is not None:
        outcome.save(report_dir, formats)
    return outcome


def _selection(
    audits: Sequence[str] | Mapping[str, Any] | None,
    only: Sequence[str],
    skip: Sequence[str],
    select: Sequence[str],
    ignore: Sequence[str],
    static: bool,
    fail_on: str,
) -> Any:
    """The command line's selection; ``audits=`` as a list (or one name) selects like ``--only``."""
    from auditor.run.runner import Selection

    listed = (
        [audits]
        if isinstance(audits, str)
        else []
        if audits is None or isinstance(audits, Mapping)
        else list(audits)
    )
    if listed and only:
        raise UsageError(
            "auditor.check: audits= as a list selects audits like only=; found both; hint: pass one of them"
        )
    return Selection(
        only=[str(a) for a in listed] or list(only),
        skip=skip,
        select=select,
        ignore=ignore,
        static=static,
        fail_on=fail_on,
        only_by="auditor.check(audits=[...])" if listed else "only=",
        skip_by="skip=",
    )


def _named_splits(train: Any, val: Any, splits: Mapping[str, Any] | None) -> dict[str, Any]:
    named: dict[str, Any] = {}
    if train is not None:
        named["train"] = train
    if val is not None:
        named["val"] = val
    for split_name, value in dict(splits or {}).items():
        if split_name in named:
            raise UsageError(
                f"auditor.check: split {split_name!r} is given twice (as a keyword and in splits=); "
                "hint: pass it once"
            )
        named[str(split_name)] = value
    return named


def _audit_section(
    audits: Sequence[str] | Mapping[str, Any] | None, options: Mapping[str, Any], registry: Registry
) -> dict[str, Any] | None:
    """The manifest's ``audits`` mapping from the ``audits=`` keyword and per-audit option keywords."""
    unknown = [key for key in options if key not in registry.audits]
    if unknown:
        from auditor._util.suggest import did_you_mean

        hint = did_you_mean(unknown[0], registry.audits)
        raise TypeError(
            f"auditor.check() got an unexpected keyword {unknown[0]!r}: expected a parameter of check() or the "
            f"name of an installed audit {sorted(registry.audits)} (its options)"
            + (f"; hint: {hint}" if hint else "")
        )
    # A mapping configures (name: false disables); a list selects, like --only (see _selected).
    if isinstance(audits, Mapping):
        section = {str(k): (dict(v) if isinstance(v, Mapping) else v) for k, v in audits.items()}
    else:
        section = None if not options else {}
    for audit, value in options.items():
        if section is not None and section.get(audit) is False:
            raise UsageError(
                f"auditor.check: options for {audit!r} were given but audits= disables it ({audit!r}: False); "
                f"hint: drop one of the two"
            )
        assert section is not None
        section[audit] = dict(value) if isinstance(value, Mapping) else value
    return section


def _task(task: str | Mapping[str, Any] | None) -> dict[str, Any] | None:
    if task is None:
        return None
    if isinstance(task, str):
        return {"type": task}
    return dict(task)


def _plain(value: Any) -> Any:
    """``pretrained`` as the manifest spells it: a torchvision weights enum becomes 'torchvision:Enum.MEMBER'."""
    if value is None or isinstance(value, (str, Mapping)):
        return dict(value) if isinstance(value, Mapping) else value
    enum_type = type(value).__name__
    member = getattr(value, "name", None)
    if member and type(value).__module__.startswith("torchvision"):
        return f"torchvision:{enum_type}.{member}"
    return value


def _progress(wanted: bool | None) -> Any:
    from auditor.live._notebook import in_notebook

    if wanted is False:
        return None
    if in_notebook():
        from auditor.live._notebook import NotebookProgress

        return NotebookProgress()
    import sys

    if wanted or sys.stderr.isatty():
        from auditor.report.console import make_console
        from auditor.run._progress import RichProgress

        return RichProgress(make_console(stderr=True))
    return None
