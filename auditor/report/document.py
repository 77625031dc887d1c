"""The JSON report document of a run: building it, validating it against the schema, loading a saved one."""

from __future__ import annotations

import json
import math
import platform
import sys
from collections.abc import Iterable, Mapping
from datetime import datetime, timezone
from pathlib import Path
from typing import TYPE_CHECKING, Any

from auditor._version import __version__
from auditor.errors import ManifestError, UsageError
from auditor.findings import SEVERITIES

if TYPE_CHECKING:  # pragma: no cover
    from auditor.run.context import RunContext
    from auditor.run.runner import RunResult

__all__ = [
    "SCHEMA_VERSION",
    "build_report",
    "dump_report",
    "load_report",
    "newer_minor",
    "strict_json",
    "task_of",
    "validate_report",
]

SCHEMA_VERSION = "1.2"  # 1.1: audit status "disabled"; 1.2: finding fingerprints, accepted findings


def _environment(
    context: RunContext, result: RunResult, versions: Mapping[str, str] | None = None
) -> dict[str, Any]:
    env: dict[str, Any] = {
        "python": platform.python_version(),
        "platform": platform.platform(terse=True),
        "auditor": __version__,
        "torch": None,
        "torchvision": None,
        "device": _device(result),
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
        if versions is not None:
            env[module] = versions.get(module)
        elif module in sys.modules:
            env[module] = str(getattr(sys.modules[module], "__version__", "unknown"))
    return env


def _device(result: RunResult) -> str:
    """The device the model ran on, as the audit that ran it records in its evidence (gradient_probe)."""
    for audit in result.results:
        device = audit.evidence.get("device") if isinstance(audit.evidence, Mapping) else None
        if isinstance(device, str) and device:
            return device
    return "cpu"


_FROM_CONTEXT: Any = object()


def build_report(
    context: RunContext,
    result: RunResult,
    started_at: datetime,
    *,
    task: Any = _FROM_CONTEXT,
    versions: Mapping[str, str] | None = None,
) -> dict[str, Any]:
    """The report of a run. A supervised run built its objects in a worker process: ``task`` (the
    report's ``task`` entry) and ``versions`` (torch, torchvision) come from there, not this process."""
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
        "environment": _environment(context, result, versions),
        "fail_on": result.fail_on,
        "task": task_of(context) if task is _FROM_CONTEXT else task,
        "audits": [
            {
                "name": r.audit.name,
                "version": r.audit.version,
                "status": r.status,
                "duration_s": round(r.duration_s, 4),
                "reason": r.reason,
                "error": r.error,
                "codes": [info.code for info in r.audit.codes],
                "options": strict_json(r.options),
                "notes": list(r.notes),
                "evidence": strict_json(r.evidence),
                "counts": {s: sum(1 for f in r.findings if f.severity == s) for s in SEVERITIES},
            }
            for r in result.results
        ],
        "findings": strict_json(findings),
        "summary": summary,
        "exit_code": result.exit_code,
        "lines": _lines(context, [*findings, *(f.to_dict() for f, _ in result.accepted)]),
        "problems": [_problem(error) for error in result.problems],
        "accepted": strict_json([{**f.to_dict(), "accepted": why.to_dict()} for f, why in result.accepted]),
    }
    context.registry.hook.auditor_run_finished(report=report)
    return strict_json(report)  # again: a plugin's auditor_run_finished may have added anything


def _problem(error: ManifestError) -> dict[str, Any]:
    """A problem of the manifest found while running, in the words the console prints."""
    return {
        "key": error.key,
        "line": error.line,
        "expected": error.expected,
        "found": error.found,
        "hint": error.hint,
        "message": f"{error.key}: expected {error.expected}, found {error.found}",
    }


def task_of(context: RunContext) -> dict[str, Any] | None:
    """The report's ``task`` entry: declared, or inferred from splits the run opened anyway."""
    # The task is inferred from the data; only report it when a split was opened anyway.
    if not context.splits_opened and not context.manifest.task.declared:
        return None
    try:
        task = context.task
    except Exception:
        return None
    return {
        "type": task.type,
        "num_classes": task.num_classes,
        "source": task.source,
        "class_names": list(task.class_names),
    }


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


def strict_json(value: Any) -> Any:
    """``value`` as strict JSON data (RFC 8259), whatever an audit put into its evidence.

    The one rule for numbers JSON cannot hold: NaN, Infinity and -Infinity become ``None`` (JSON
    ``null``), as JavaScript's ``JSON.stringify`` writes them; a finding's message says in words when a
    value was not finite. numpy and torch values become plain numbers and lists, tuples and sets lists,
    other objects (paths, enums) their ``str``, and every mapping key a string.
    """
    if isinstance(value, float):
        return float(value) if math.isfinite(value) else None
    if value is None or isinstance(value, (str, bool, int)):
        return value
    if isinstance(value, Mapping):
        return {_key(key): strict_json(item) for key, item in value.items()}
    if isinstance(value, (list, tuple)):
        return [strict_json(item) for item in value]
    if isinstance(value, (set, frozenset)):
        return [strict_json(item) for item in sorted(value, key=str)]
    if hasattr(value, "tolist"):  # numpy arrays and scalars, torch tensors
        return strict_json(value.tolist())
    if hasattr(value, "item"):
        return strict_json(value.item())
    return str(value)


def _key(key: Any) -> str:
    # What json.dumps would make of a key, except that any key works (a tuple key would raise there).
    if isinstance(key, str):
        return key
    if key is None or isinstance(key, (bool, int, float)):
        return json.dumps(key)
    return str(key)


def dump_report(report: Mapping[str, Any]) -> str:
    """The text of report.json: strict JSON (``allow_nan=False`` after :func:`strict_json`), indented."""
    return json.dumps(strict_json(report), indent=2, ensure_ascii=False, allow_nan=False) + "\n"


def validate_report(report: Mapping[str, Any]) -> None:
    """Raise jsonschema.ValidationError when ``report`` breaks ``report.schema.json``."""
    import jsonschema

    from auditor._util.schemas import load_schema

    jsonschema.validate(report, load_schema("report"))


#: Nesting a report may have; auditor's own reports stay below 15 levels.
MAX_REPORT_DEPTH = 100


def _depth(value: Any) -> int:
    """How deep containers nest in parsed JSON, without recursion (stops counting past the limit)."""
    deepest = 0
    stack: list[tuple[Any, int]] = [(value, 1)]
    while stack:
        item, level = stack.pop()
        if isinstance(item, (dict, list)):
            deepest = max(deepest, level)
            if level > MAX_REPORT_DEPTH:
                return level
            stack.extend((child, level + 1) for child in (item.values() if isinstance(item, dict) else item))
    return deepest


def load_report(path: Path) -> dict[str, Any]:
    try:
        from auditor.data._regular import open_regular

        with open_regular(path) as handle:  # a FIFO given as the report must not block
            # A report written before report.json was strict may hold bare NaN or Infinity: read them as null.
            report = json.loads(handle.read().decode("utf-8"), parse_constant=lambda _name: None)
    except RecursionError as exc:
        # json's scanner recurses per level: a file of 100,000 '[' ends here, not in a traceback.
        raise UsageError(
            f"report {path}: expected a JSON report written by `auditor run`, found JSON nested "
            f"deeper than Python's parser can read"
        ) from exc
    except (OSError, ValueError) as exc:
        raise UsageError(
            f"report {path}: expected a JSON report written by `auditor run`, found: {exc}"
        ) from exc
    depth = _depth(report)
    if depth > MAX_REPORT_DEPTH:
        # Schema validation and every renderer walk the report recursively.
        raise UsageError(
            f"report {path}: expected a JSON report written by `auditor run` (nested at most "
            f"{MAX_REPORT_DEPTH} levels), found values nested {depth} levels deep"
        )
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
