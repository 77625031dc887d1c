"""The one definition of a finding's identity across runs: SARIF, GitLab and the baseline share it.

A fingerprint is built from what a finding is *about*: the code, the manifest key it concerns
(``location``) and the evidence keys that name its subject (a split, a class, a module), never its
numbers, message, timestamps, the manifest's name or the paths of temporary folders. (Where the
manifest lies is the artifact a SARIF result or GitLab issue points at, and a baseline lives beside
its manifest, so renaming a manifest or moving its data keeps every fingerprint.) So the same
mistake found again tomorrow, with other counts, keeps its fingerprint: code scanning keeps one
alert open instead of closing one and opening another, GitLab tracks one issue, and a baseline
entry keeps matching it.

Two findings with one subject in one report (rare) get ``:2``, ``:3`` appended, in an order that
does not depend on the order the audits ran in.
"""

from __future__ import annotations

import hashlib
from collections.abc import Mapping, Sequence
from typing import Any, Protocol

__all__ = ["SUBJECT_KEYS", "VERSION", "FingerprintSubject", "finding_fingerprint", "fingerprints"]

#: Evidence keys that name *what* a finding is about (not how bad it is). Changing this list changes
#: every fingerprint, which reopens every code-scanning alert and empties every baseline: append only
#: with a new version of the definition.
SUBJECT_KEYS = ("split", "split_a", "split_b", "class", "direction", "problem", "pipeline", "module")


class FingerprintSubject(Protocol):
    """What a fingerprint reads: :class:`auditor.Finding` and :class:`auditor.FindingView` both have it."""

    @property
    def code(self) -> str: ...
    @property
    def location(self) -> str: ...
    @property
    def message(self) -> str: ...
    @property
    def evidence(self) -> Mapping[str, Any]: ...


#: Written before the hash, so a later definition can never produce one of these values.
VERSION = "v2"


def finding_fingerprint(code: str, location: str, evidence: Mapping[str, Any] | None) -> str:
    """32 hex digits naming the finding ``code`` at ``location`` about the subject in ``evidence``."""
    evidence = evidence if isinstance(evidence, Mapping) else {}
    subject = [f"{key}={evidence[key]}" for key in SUBJECT_KEYS if isinstance(evidence.get(key), (str, int))]
    key = "\x1f".join([VERSION, code, location, *subject])
    return hashlib.sha256(key.encode("utf-8")).hexdigest()[:32]


def fingerprints(findings: Sequence[FingerprintSubject]) -> list[str]:
    """The fingerprint of each of ``findings``, in their order, unique within the list.

    Repeats of one subject are numbered in the order of their messages (then their position), so the
    numbering is the same whichever order the audits reported them in.
    """
    bases = [finding_fingerprint(f.code, f.location, f.evidence) for f in findings]
    groups: dict[str, list[int]] = {}
    for index, base in enumerate(bases):
        groups.setdefault(base, []).append(index)
    result = list(bases)
    for base, indexes in groups.items():
        if len(indexes) < 2:
            continue
        ordered = sorted(indexes, key=lambda i: (str(findings[i].message), i))
        for rank, index in enumerate(ordered[1:], start=2):
            result[index] = f"{base}:{rank}"
    return result
