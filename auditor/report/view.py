"""The typed read model of a report document: what every renderer reads instead of raw keys.

:meth:`ReportView.from_document` reads a report once (the dict :func:`~auditor.report.document.build_report`
returns, or a saved report.json after :func:`~auditor.report.document.load_report` validated it) into frozen
dataclasses. A renamed key then breaks here, in one place, not silently in each format. Reading is
lenient where the renderers always were: a report saved by an older version, or edited by hand, lacks
optional keys; those read as empty values, never as an exception. What the model does not type (an
audit's or a finding's own evidence, keys a plugin added through ``auditor_run_finished``) stays
reachable: ``evidence`` is the audit's mapping, and ``document`` the whole report.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from auditor.findings import SEVERITIES
from auditor.report.evidence import LeakedPair, Measurements, leaked_pairs, measurements, pair_count

__all__ = [
    "AuditError",
    "AuditView",
    "BrokenPluginInfo",
    "EnvironmentView",
    "FindingView",
    "ManifestInfo",
    "PluginInfo",
    "ProblemView",
    "ReportView",
    "SummaryView",
    "TaskView",
    "ToolInfo",
]


def _mapping(value: Any) -> Mapping[str, Any]:
    return value if isinstance(value, Mapping) else {}


def _items(value: Any) -> list[Mapping[str, Any]]:
    return [item for item in value or [] if isinstance(item, Mapping)] if isinstance(value, list) else []


def _text(value: Any, default: str = "") -> str:
    return default if value is None else str(value)


def _number(value: Any) -> float | None:
    """The number as written (an int stays an int), or None when it is not one."""
    return value if isinstance(value, (int, float)) else None


def _ident(value: Any) -> str | None:
    return str(value) if isinstance(value, (str, int)) and str(value) else None


@dataclass(frozen=True)
class ToolInfo:
    name: str = "auditor"
    version: str = ""


@dataclass(frozen=True)
class ManifestInfo:
    """The manifest the run read: ``path`` as written in the report ("" when unknown) and its ``name``."""

    path: str = ""
    name: str = ""

    @property
    def file(self) -> Path | None:
        return Path(self.path) if self.path else None

    @property
    def folder(self) -> Path:
        """The folder paths in evidence are relative to (the manifest's folder)."""
        return self.file.parent if self.file is not None else Path(".")


@dataclass(frozen=True)
class TaskView:
    """The task the run inferred or the manifest declared; None fields where the report has none."""

    type: str | None = None
    num_classes: int | None = None
    source: str | None = None
    class_names: tuple[str, ...] = ()


@dataclass(frozen=True)
class PluginInfo:
    name: str
    distribution: str
    version: str


@dataclass(frozen=True)
class BrokenPluginInfo:
    name: str
    distribution: str
    error: str


#: The environment keys the view types; any other goes to ``EnvironmentView.extra``.
_ENVIRONMENT_KEYS = (
    "python",
    "platform",
    "torch",
    "torchvision",
    "device",
    "auditor",
    "plugins",
    "broken_plugins",
)


@dataclass(frozen=True)
class EnvironmentView:
    """Versions the run saw; None where the run did not import a package (or the report does not say)."""

    python: str | None = None
    platform: str | None = None
    torch: str | None = None
    torchvision: str | None = None
    device: str | None = None
    auditor: str | None = None
    plugins: tuple[PluginInfo, ...] = ()
    broken_plugins: tuple[BrokenPluginInfo, ...] = ()
    #: Keys this auditor version does not type, as written.
    extra: Mapping[str, Any] = field(default_factory=dict, hash=False)


@dataclass(frozen=True)
class SummaryView:
    """Finding counts by severity, as the report states them."""

    error: int = 0
    warning: int = 0
    info: int = 0
    total: int = 0
    document: Mapping[str, Any] = field(default_factory=dict, hash=False, repr=False)

    def count(self, severity: str) -> int:
        return int(getattr(self, severity, 0)) if severity in (*SEVERITIES, "total") else 0

    def as_dict(self) -> dict[str, Any]:
        """The summary object as the report holds it (keys a newer version added included)."""
        return dict(self.document)


@dataclass(frozen=True)
class ProblemView:
    """A problem of the manifest found while running (a split that cannot be opened)."""

    key: str
    message: str
    line: int | None = None
    expected: str = ""
    found: str = ""
    hint: str = ""


@dataclass(frozen=True)
class AuditError:
    """Why an audit errored: the exception's type and message, and its traceback when it crashed."""

    type: str = ""
    message: str = ""
    traceback: str = ""

    @property
    def from_manifest(self) -> bool:
        """The manifest is wrong (exit 2 all the same), rather than the audit having crashed."""
        return self.type == "ManifestError"


@dataclass(frozen=True)
class FindingView:
    code: str
    audit: str
    severity: str
    title: str = ""
    message: str = ""
    hint: str = ""
    location: str = ""
    #: Unique within the report ('CODE@location'); "" in reports saved before ids existed.
    id: str = ""
    #: The ``id`` of the finding this one follows from, or None.
    caused_by: str | None = None
    #: The finding's own evidence, as the audit wrote it.
    evidence: Mapping[str, Any] = field(default_factory=dict, hash=False)
    #: ``evidence["pairs"]`` typed (split_leakage and any audit writing the same shape).
    pairs: tuple[LeakedPair, ...] = ()
    #: How many pairs there are in all (``evidence["count"]``), of which ``pairs`` lists the closest.
    pair_count: int = 0
    #: Its identity across runs as the report states it; "" in reports saved before 1.2
    #: (:func:`auditor.report.fingerprints.fingerprints` derives the same value from the view).
    fingerprint: str = ""
    #: For an accepted finding (``ReportView.accepted``): ``ignore`` or ``baseline``, and the reason.
    accepted_by: str = ""
    accepted_reason: str = ""

    @classmethod
    def from_document(cls, raw: Mapping[str, Any]) -> FindingView:
        evidence = _mapping(raw.get("evidence"))
        cause = raw.get("caused_by")
        accepted = _mapping(raw.get("accepted"))
        return cls(
            code=_text(raw.get("code")),
            audit=_text(raw.get("audit"), "?"),
            severity=_text(raw.get("severity")),
            title=_text(raw.get("title")),
            message=_text(raw.get("message")),
            hint=_text(raw.get("hint")),
            location=_text(raw.get("location")),
            id=_ident(raw.get("id")) or "",
            caused_by=str(cause) if isinstance(cause, (str, int)) else None,
            evidence=evidence,
            pairs=leaked_pairs(evidence),
            pair_count=pair_count(evidence),
            fingerprint=_text(raw.get("fingerprint")) if isinstance(raw.get("fingerprint"), str) else "",
            accepted_by=_text(accepted.get("by")),
            accepted_reason=_text(accepted.get("reason")),
        )


@dataclass(frozen=True)
class AuditView:
    name: str
    status: str
    version: str = ""
    #: Seconds as written; None when the report has no number.
    duration_s: float | None = None
    reason: str = ""
    error: AuditError | None = None
    codes: tuple[str, ...] = ()
    notes: tuple[str, ...] = ()
    #: The options the audit ran with, defaults filled in.
    options: Mapping[str, Any] = field(default_factory=dict, hash=False)
    #: The audit's own measurements, as it wrote them (third-party keys included).
    evidence: Mapping[str, Any] = field(default_factory=dict, hash=False)
    #: The documented evidence shapes, typed (charts).
    measurements: Measurements = field(default_factory=Measurements)
    #: Findings per severity, as the report counts them for this audit.
    counts: Mapping[str, Any] = field(default_factory=dict, hash=False)

    @property
    def crashed(self) -> bool:
        return self.status == "errored" and not (self.error is not None and self.error.from_manifest)

    @property
    def stopped_by_manifest(self) -> bool:
        return self.status == "errored" and self.error is not None and self.error.from_manifest

    def count(self, severity: str) -> Any:
        """The report's count of this audit's findings of ``severity`` (0 when it has none)."""
        return self.counts.get(severity, 0)

    @classmethod
    def from_document(cls, raw: Mapping[str, Any]) -> AuditView:
        error = raw.get("error")
        evidence = _mapping(raw.get("evidence"))
        return cls(
            name=_text(raw.get("name"), "?"),
            status=_text(raw.get("status")),
            version=_text(raw.get("version")),
            duration_s=_number(raw.get("duration_s")),
            reason=_text(raw.get("reason")),
            error=AuditError(
                _text(error.get("type")), _text(error.get("message")), _text(error.get("traceback"))
            )
            if isinstance(error, Mapping)
            else None,
            codes=tuple(str(code) for code in raw.get("codes") or []),
            notes=tuple(str(note) for note in raw.get("notes") or []),
            options=_mapping(raw.get("options")),
            evidence=evidence,
            measurements=measurements(evidence),
            counts=_mapping(raw.get("counts")),
        )


@dataclass(frozen=True)
class ReportView:
    """One report, read once; the formats, the console and third-party formats render from it."""

    schema_version: str
    tool: ToolInfo
    manifest: ManifestInfo
    started_at: str
    #: Seconds as written; None when the report has no number.
    duration_s: float | None
    environment: EnvironmentView
    #: ``error`` when the report does not say (the default of every run).
    fail_on: str
    task: TaskView | None
    audits: tuple[AuditView, ...]
    #: In report order (the order the audits ran in).
    findings: tuple[FindingView, ...]
    summary: SummaryView
    exit_code: int | None
    #: Manifest line of each location a finding names.
    lines: Mapping[str, int] = field(hash=False)
    problems: tuple[ProblemView, ...]
    #: The whole document as read: what the JSON format writes, and keys this version does not type.
    document: Mapping[str, Any] = field(hash=False, repr=False)
    #: Findings accepted on purpose (``ignore:`` entries, a baseline), listed apart; not in ``summary``.
    accepted: tuple[FindingView, ...] = ()

    @classmethod
    def of(cls, report: ReportView | Mapping[str, Any]) -> ReportView:
        """``report`` itself when it is a view, else the view of the document."""
        return report if isinstance(report, ReportView) else cls.from_document(report)

    @classmethod
    def from_document(cls, document: Mapping[str, Any]) -> ReportView:
        """Read a report document (valid against ``report.schema.json``) into the view; never raises on
        missing optional keys or entries of the wrong type (they read as empty)."""
        lines = _mapping(document.get("lines"))
        task = document.get("task")
        return cls(
            schema_version=_text(document.get("schema_version")),
            tool=_tool(_mapping(document.get("tool"))),
            manifest=ManifestInfo(
                _text(_mapping(document.get("manifest")).get("path")) or "",
                _text(_mapping(document.get("manifest")).get("name")) or "",
            ),
            started_at=_text(document.get("started_at")),
            duration_s=_number(document.get("duration_s")),
            environment=_environment(_mapping(document.get("environment"))),
            fail_on=_text(document.get("fail_on")) or "error",
            task=_task(task) if isinstance(task, Mapping) else None,
            audits=tuple(AuditView.from_document(a) for a in _items(document.get("audits"))),
            findings=tuple(FindingView.from_document(f) for f in _items(document.get("findings"))),
            summary=_summary(_mapping(document.get("summary"))),
            exit_code=document.get("exit_code") if isinstance(document.get("exit_code"), int) else None,
            lines={str(k): v for k, v in lines.items() if isinstance(v, int) and v > 0},
            problems=tuple(_problem(p) for p in _items(document.get("problems"))),
            document=document,
            accepted=tuple(FindingView.from_document(f) for f in _items(document.get("accepted"))),
        )

    def line_of(self, finding: FindingView) -> int | None:
        """Manifest line of the key ``finding`` concerns (SARIF regions, GitHub annotations)."""
        return self.lines.get(finding.location)

    def audit(self, name: str) -> AuditView | None:
        return next((audit for audit in self.audits if audit.name == name), None)

    def findings_of(self, audit: str) -> list[FindingView]:
        return [finding for finding in self.findings if finding.audit == audit]


def _tool(raw: Mapping[str, Any]) -> ToolInfo:
    return ToolInfo(_text(raw.get("name", "auditor")), _text(raw.get("version", "")))


def _optional_text(value: Any) -> str | None:
    return None if value is None else str(value)


def _texts(raw: Mapping[str, Any], *keys: str) -> list[str]:
    return [_text(raw.get(key)) for key in keys]


def _environment(raw: Mapping[str, Any]) -> EnvironmentView:
    return EnvironmentView(
        python=_optional_text(raw.get("python")),
        platform=_optional_text(raw.get("platform")),
        torch=_optional_text(raw.get("torch")),
        torchvision=_optional_text(raw.get("torchvision")),
        device=_optional_text(raw.get("device")),
        auditor=_optional_text(raw.get("auditor")),
        plugins=tuple(
            PluginInfo(*_texts(p, "name", "distribution", "version")) for p in _items(raw.get("plugins"))
        ),
        broken_plugins=tuple(
            BrokenPluginInfo(*_texts(p, "name", "distribution", "error"))
            for p in _items(raw.get("broken_plugins"))
        ),
        extra={str(k): v for k, v in raw.items() if k not in _ENVIRONMENT_KEYS},
    )


def _task(raw: Mapping[str, Any]) -> TaskView:
    classes = raw.get("num_classes")
    return TaskView(
        type=_optional_text(raw.get("type")),
        num_classes=classes if isinstance(classes, int) else None,
        source=_optional_text(raw.get("source")),
        class_names=tuple(str(name) for name in raw.get("class_names") or []),
    )


def _summary(raw: Mapping[str, Any]) -> SummaryView:
    counts = [raw.get(key) for key in (*SEVERITIES, "total")]
    return SummaryView(*(n if isinstance(n, int) else 0 for n in counts), document=raw)


def _problem(raw: Mapping[str, Any]) -> ProblemView:
    line = raw.get("line")
    return ProblemView(
        key=_text(raw.get("key")),
        message=_text(raw.get("message")),
        line=line if isinstance(line, int) else None,
        expected=_text(raw.get("expected")),
        found=_text(raw.get("found")),
        hint=_text(raw.get("hint")),
    )
