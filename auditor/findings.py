"""Severities, finding codes and findings: the vocabulary every audit speaks."""

from __future__ import annotations

import enum
import re
from dataclasses import dataclass, field
from typing import Any

__all__ = [
    "CODE_PATTERN",
    "SEVERITIES",
    "CodeInfo",
    "FailOn",
    "Finding",
    "Severity",
    "severity_at_least",
    "severity_rank",
]

#: A finding code is a prefix of 2-4 capital letters followed by three digits.
CODE_PATTERN = re.compile(r"^[A-Z]{2,4}[0-9]{3}$")


class Severity(str, enum.Enum):
    """How bad a finding is. Ordered: ``info < warning < error``."""

    INFO = "info"
    WARNING = "warning"
    ERROR = "error"

    @property
    def rank(self) -> int:
        return _RANK[self.value]

    def __str__(self) -> str:  # pragma: no cover - cosmetic
        return self.value


#: The one severity ranking. ``never`` (a ``fail_on`` value) outranks every severity, so nothing reaches it.
_RANK = {"info": 1, "warning": 2, "error": 3, "never": 99}

#: Most severe first: the order findings are listed and counted in, in the console and in every report.
SEVERITIES = ("error", "warning", "info")

#: Values accepted by ``fail_on`` / ``--fail-on``.
FailOn = (*SEVERITIES, "never")


def severity_rank(severity: object) -> int:
    """Higher is more severe; 0 for a value that is no severity (e.g. in a report from a newer version)."""
    value = severity.value if isinstance(severity, Severity) else str(severity)
    return _RANK.get(value, 0)


def severity_at_least(severity: object, threshold: object) -> bool:
    """True when ``severity`` reaches ``threshold`` (``never`` is never reached; an unknown one counts as error)."""
    limit = severity_rank(threshold) or _RANK["error"]
    return severity_rank(severity) >= limit


@dataclass(frozen=True)
class CodeInfo:
    """A finding code an audit declares, with the text ``auditor explain`` shows.

    ``explanation`` is Markdown with four parts users rely on: what the finding
    means, why it breaks training, how to fix it, and an example.
    """

    code: str
    severity: Severity
    title: str
    explanation: str

    def __post_init__(self) -> None:
        if not CODE_PATTERN.match(self.code):
            raise ValueError(
                f"finding code {self.code!r}: expected 2-4 capital letters and three digits (e.g. 'LD001')"
            )
        if not isinstance(self.severity, Severity):
            object.__setattr__(self, "severity", Severity(self.severity))

    @property
    def prefix(self) -> str:
        return self.code[:-3]


@dataclass
class Finding:
    """One problem an audit found. ``evidence`` must be JSON-serialisable.

    ``id`` is set by the host after all audits ran (``CODE@location``, with
    ``#2``, ``#3`` appended to repeats in report order), so it is unique within
    a report and the same across runs of the same inputs. ``caused_by`` is the
    ``id`` of the finding this one follows from (the root cause shown first);
    an audit that knows the cause of its own finding sets ``cause`` to that
    finding object instead, and the host turns it into ``caused_by``.
    """

    code: str
    audit: str
    severity: Severity
    title: str
    message: str
    hint: str = ""
    location: str = ""
    evidence: dict[str, Any] = field(default_factory=dict)
    id: str = ""
    caused_by: str | None = None
    #: Its identity across runs (:mod:`auditor.report.fingerprints`), set by the host with ``id``.
    fingerprint: str = ""
    #: The finding this one follows from, when the audit itself knows it (resolved to ``caused_by``).
    cause: Finding | None = field(default=None, repr=False, compare=False)

    def to_dict(self) -> dict[str, Any]:
        return {
            "code": self.code,
            "audit": self.audit,
            "severity": Severity(self.severity).value,
            "title": self.title,
            "message": self.message,
            "hint": self.hint,
            "location": self.location,
            "evidence": self.evidence,
            "id": self.id,
            "caused_by": self.caused_by,
            **({"fingerprint": self.fingerprint} if self.fingerprint else {}),
        }
