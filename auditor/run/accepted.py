"""Accepting findings on purpose, as linters do: the manifest's ``ignore:`` entries and a baseline file.

An accepted finding is still found and still reported, but apart (the report's ``accepted`` list,
with who accepted it and why), and it no longer decides the exit code: a run then fails only on
findings nobody accepted. Both ways need a reason, so a reader of the report knows why a finding
is tolerated.

- ``ignore:`` in the manifest: ``{code: XY004, location: data.val, reason: ...}``; ``code`` may be
  a prefix (``XY``), ``location`` (optional) the manifest key the finding concerns.
- a baseline (``auditor baseline``, default ``auditor-baseline.json`` beside the manifest): today's
  findings by fingerprint (:mod:`auditor.report.fingerprints`), each with the reason given.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path
from typing import TYPE_CHECKING, Any

from auditor.errors import UsageError
from auditor.manifest.sections import IgnoreEntry

if TYPE_CHECKING:  # pragma: no cover
    from auditor.findings import Finding

__all__ = [
    "BASELINE_NAME",
    "AcceptRules",
    "Acceptance",
    "Baseline",
    "BaselineEntry",
    "read_baseline",
    "write_baseline",
]

#: The baseline a run reads when none is named: this file beside the manifest, when it exists.
BASELINE_NAME = "auditor-baseline.json"
BASELINE_VERSION = 1


@dataclass(frozen=True)
class Acceptance:
    """Why a finding is accepted: ``by`` ``ignore`` (the manifest) or ``baseline``, the reason, and where."""

    by: str
    reason: str
    source: str

    def to_dict(self) -> dict[str, str]:
        return {"by": self.by, "reason": self.reason, "source": self.source}


@dataclass(frozen=True)
class BaselineEntry:
    fingerprint: str
    code: str
    location: str
    message: str
    reason: str

    def to_dict(self) -> dict[str, str]:
        return {
            "fingerprint": self.fingerprint,
            "code": self.code,
            "location": self.location,
            "message": self.message,
            "reason": self.reason,
        }


@dataclass(frozen=True)
class Baseline:
    """A baseline file as read: its entries by fingerprint."""

    path: Path
    entries: Mapping[str, BaselineEntry] = field(default_factory=dict)


@dataclass(frozen=True)
class AcceptRules:
    """What accepts findings in one run: the manifest's ``ignore:`` entries and an optional baseline."""

    ignore: Sequence[IgnoreEntry] = ()
    baseline: Baseline | None = None

    def acceptance(self, finding: Finding, fingerprint: str) -> Acceptance | None:
        """Why ``finding`` is accepted, or None. The manifest's own entries win over the baseline."""
        for index, entry in enumerate(self.ignore):
            if finding.code.startswith(entry.code.upper()) and (
                entry.location is None or _under(finding.location, entry.location)
            ):
                return Acceptance("ignore", entry.reason, f"ignore[{index}]")
        if self.baseline is not None:
            recorded = self.baseline.entries.get(fingerprint)
            if recorded is not None and recorded.code == finding.code:
                return Acceptance("baseline", recorded.reason, self.baseline.path.name)
        return None


def _under(location: str, key: str) -> bool:
    """``data.val`` matches findings at ``data.val`` and ``data.val.transform``, not ``data.validation``."""
    return location == key or location.startswith(key + ".")


def read_baseline(path: Path) -> Baseline:
    """Read a baseline file; a broken one is a usage error (exit 2) naming the file and the problem."""
    from auditor.data._regular import open_regular

    hint = f"record it again with `auditor baseline --reason TEXT`, or pass --no-baseline; file {path}"
    try:
        with open_regular(path) as handle:  # a FIFO named as the baseline must not block the run
            document = json.loads(handle.read().decode("utf-8"))
    except (OSError, ValueError) as exc:
        raise UsageError(f"baseline {path}: expected a JSON baseline, found: {exc}; {hint}") from exc
    if not isinstance(document, Mapping) or document.get("version") != BASELINE_VERSION:
        found = document.get("version") if isinstance(document, Mapping) else type(document).__name__
        raise UsageError(
            f"baseline {path}: expected an auditor baseline with version {BASELINE_VERSION}, "
            f"found {found!r}; {hint}"
        )
    entries: dict[str, BaselineEntry] = {}
    for index, raw in enumerate(document.get("findings") or []):
        fields = ("fingerprint", "code", "location", "message", "reason")
        if not isinstance(raw, Mapping) or not all(isinstance(raw.get(k, ""), str) for k in fields):
            raise UsageError(f"baseline {path}: findings[{index}]: expected an object of strings; {hint}")
        if not raw.get("fingerprint") or not str(raw.get("reason", "")).strip():
            raise UsageError(
                f"baseline {path}: findings[{index}]: expected a fingerprint and a non-empty reason, "
                f"found {dict(raw)!r}; {hint}"
            )
        entry = BaselineEntry(*(str(raw.get(k, "")) for k in fields))
        entries[entry.fingerprint] = entry
    return Baseline(path, entries)


def write_baseline(
    path: Path,
    findings: Sequence[Mapping[str, Any]],
    reason: str,
    manifest_name: str,
    previous: Baseline | None = None,
) -> list[BaselineEntry]:
    """Record ``findings`` (report dicts with a ``fingerprint``) in ``path``; return the entries.

    An entry the previous baseline already had keeps its reason: recording again after fixing some
    findings drops the fixed ones and adds the new ones, without rewording the old decisions.
    """
    from auditor.report.files import write_file_atomically

    if not reason.strip():
        raise UsageError(
            "auditor baseline: expected --reason TEXT saying why these findings are accepted, found none"
        )
    old = previous.entries if previous is not None else {}
    entries: dict[str, BaselineEntry] = {}
    for finding in findings:
        fingerprint = str(finding.get("fingerprint") or "")
        if not fingerprint:
            continue
        kept = old.get(fingerprint)
        entries[fingerprint] = BaselineEntry(
            fingerprint,
            str(finding.get("code", "")),
            str(finding.get("location", "")),
            str(finding.get("message", "")),
            kept.reason if kept is not None else reason.strip(),
        )
    ordered = sorted(entries.values(), key=lambda e: (e.code, e.location, e.fingerprint))
    document = {
        "version": BASELINE_VERSION,
        "tool": "auditor",
        "manifest": manifest_name,
        "recorded_at": datetime.now(timezone.utc).date().isoformat(),
        "findings": [entry.to_dict() for entry in ordered],
    }
    text = json.dumps(document, indent=2, ensure_ascii=False) + "\n"
    write_file_atomically(path, text.encode("utf-8"))
    return ordered
