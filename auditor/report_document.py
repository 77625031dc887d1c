"""The JSON report document of a run: building it, validating it against the schema, loading a saved one."""

from __future__ import annotations

import json
import platform
import sys
from collections.abc import Iterable, Mapping
from datetime import datetime, timezone
from pathlib import Path
from typing import TYPE_CHECKING, Any

from auditor._version import __version__
from auditor.errors import UsageError
from auditor.findings import SEVERITIES

if TYPE_CHECKING:  # pragma: no cover
    from auditor.context import RunContext
    from auditor.runner import RunResult

__all__ = ["SCHEMA_VERSION", "build_report", "load_report", "newer_minor", "validate_report"]

SCHEMA_VERSION = "1.0"


def _environment(context: RunContext) -> dict[str, Any]:
    env: dict[str, Any] = {
        "python": platform.python_version(),
        "platform": platform.platform(terse=True),
        "auditor": __version__,
        "torch": None,
        "torchvision": None,
        "device": context.device_used or "cpu",
        "plugins": [
            {"name": p.name, "distribution": p.distribution, "version": p.version}
            for p in context.registry.plugins
        ],
        "broken_plugins": [
            {"name": b.name, "distribution": b.distribution, "error": b.error}
            for b in context.registry.broken
        ],
    }
    # Report versions only when the run imported them: reading them must not import torch.
    for module in ("torch", "torchvision"):
        if module in sys.modules:
            env[module] = str(getattr(sys.modules[module], "__version__", "unknown"))
    return env


def build_report(context: RunContext, result: RunResult, started_at: datetime) -> dict[str, Any]:
    manifest = context.manifest
    findings = [f.to_dict() for f in result.findings]
    summary = {severity: 0 for severity in SEVERITIES}
    for finding in findings:
        summary[finding["severity"]] += 1
    summary["total"] = len(findings)
    report = {
        "schema_version": SCHEMA_VERSION,
        "tool": {"name": "auditor", "version": __version__},
        "manifest": {"path": str(manifest.path), "name": manifest.name},
        "started_at": started_at.astimezone(timezone.utc).isoformat(timespec="seconds"),
        "duration_s": round(result.duration_s, 4),
        "environment": _environment(context),
        "fail_on": result.fail_on,
        "task": _task(context),
        "audits": [
            {
                "name": r.audit.name,
                "version": r.audit.version,
                "status": r.status,
                "duration_s": round(r.duration_s, 4),
                "reason": r.reason,
                "error": r.error,
                "codes": [info.code for info in r.audit.codes],
                "options": _jsonable(r.options),
                "notes": list(r.notes),
                "evidence": _jsonable(r.evidence),
                "counts": {s: sum(1 for f in r.findings if f.severity == s) for s in SEVERITIES},
            }
            for r in result.results
        ],
        "findings": _jsonable(findings),
        "summary": summary,
        "exit_code": result.exit_code,
        "lines": _lines(context, findings),
    }
    context.registry.hook.auditor_run_finished(report=report)
    return report


def _task(context: RunContext) -> dict[str, Any] | None:
    # The task is inferred from the data; only report it when a split was opened anyway.
    if "splits" not in context.__dict__ and not context.manifest.section("task"):
        return None
    try:
        task = context.task
    except Exception:  # noqa: BLE001 - a broken split is reported by the audits
        return None
    return {"type": task.type, "num_classes": task.num_classes, "source": task.source,
            "class_names": list(task.class_names)}


def _lines(context: RunContext, findings: Iterable[Mapping[str, Any]]) -> dict[str, int]:
    """Manifest line of every location a finding names, for SARIF and GitHub annotations."""
    lines: dict[str, int] = {}
    for finding in findings:
        location = finding.get("location") or ""
        if location and location not in lines:
            line = context.manifest.line(location)
            if line:
                lines[location] = line
    return lines


def _jsonable(value: Any) -> Any:
    """Evidence may hold numpy scalars, tuples or paths; make it plain JSON."""
    return json.loads(json.dumps(value, default=_default))


def _default(value: Any) -> Any:
    if hasattr(value, "tolist"):
        return value.tolist()
    if hasattr(value, "item"):
        return value.item()
    if isinstance(value, (set, frozenset)):
        return sorted(value, key=str)
    return str(value)


def validate_report(report: Mapping[str, Any]) -> None:
    """Raise jsonschema.ValidationError when ``report`` breaks ``report.schema.json``."""
    import jsonschema

    from auditor._schemas import load_schema

    jsonschema.validate(report, load_schema("report"))


def load_report(path: Path) -> dict[str, Any]:
    try:
        from auditor._regular import open_regular

        with open_regular(path) as handle:  # a FIFO given as the report must not block
            report = json.loads(handle.read().decode("utf-8"))
    except (OSError, ValueError) as exc:
        raise UsageError(f"report {path}: expected a JSON report written by `auditor run`, found: {exc}") from exc
    version = report.get("schema_version") if isinstance(report, dict) else None
    if isinstance(version, str) and version.split(".")[0] != SCHEMA_VERSION.split(".")[0]:
        # Another major version may mean other fields: rendering it could silently drop findings.
        raise UsageError(
            f"report {path}: expected schema_version {SCHEMA_VERSION.split('.')[0]}.x (what auditor "
            f"{__version__} writes), found {version!r}; re-render it with the auditor version that wrote it"
        )
    try:
        validate_report(report)
    except Exception as exc:
        raise UsageError(f"report {path}: not a valid auditor report ({str(exc).splitlines()[0]})") from exc
    return report


def newer_minor(report: Mapping[str, Any]) -> str | None:
    """The report's schema_version when it is a later minor version than this auditor writes."""
    version = str(report.get("schema_version", ""))
    try:
        theirs = tuple(int(part) for part in version.split("."))
        ours = tuple(int(part) for part in SCHEMA_VERSION.split("."))
    except ValueError:
        return version or None
    return version if theirs > ours else None
