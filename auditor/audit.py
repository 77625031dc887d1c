"""What an audit declares to the host, and the exception it raises to skip."""

from __future__ import annotations

from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from auditor.findings import CodeInfo

if TYPE_CHECKING:  # pragma: no cover
    from auditor.findings import Finding
    from auditor.run.context import AuditContext

__all__ = ["NEEDS", "Audit", "SkipAudit"]

#: What an audit may need from the run. ``device`` means it *runs the model*
#: (forward/backward passes), which is what ``--static`` skips.
NEEDS = frozenset({"data", "model", "optimizer", "loss", "device"})


class SkipAudit(Exception):
    """Raise from an audit's ``run`` when it does not apply to this manifest.

    The audit is then reported as ``skipped`` with the message as its reason,
    which is not an error: e.g. ``split_leakage`` with a single split.
    """


@dataclass(frozen=True)
class Audit:
    """An audit as a plugin declares it through ``auditor_audits``.

    ``run`` receives an :class:`~auditor.run.context.AuditContext` and returns (or
    yields) :class:`~auditor.findings.Finding` objects, normally made with
    ``ctx.finding(code, message, ...)``. Anything the HTML report should chart
    even when nothing is wrong goes into ``ctx.evidence``.
    """

    name: str
    version: str
    prefix: str
    codes: Sequence[CodeInfo]
    run: Callable[[AuditContext], Iterable[Finding] | None]
    options_schema: dict[str, Any] = field(
        default_factory=lambda: {"type": "object", "properties": {}, "additionalProperties": False}
    )
    needs: frozenset[str] = frozenset({"data"})
    description: str = ""
    #: Audits run cheapest first; ties are broken by name so order is stable.
    order: int = 100

    def __post_init__(self) -> None:
        unknown = set(self.needs) - NEEDS
        if unknown:
            raise ValueError(
                f"audit {self.name!r}: unknown needs {sorted(unknown)}; expected a subset of {sorted(NEEDS)}"
            )
        for info in self.codes:
            if info.prefix != self.prefix:
                raise ValueError(
                    f"audit {self.name!r}: code {info.code} does not start with its prefix {self.prefix!r}"
                )
        object.__setattr__(self, "needs", frozenset(self.needs))

    @property
    def runs_model(self) -> bool:
        """True for audits that ``--static`` skips."""
        return "device" in self.needs

    def code(self, code: str) -> CodeInfo:
        for info in self.codes:
            if info.code == code:
                return info
        raise KeyError(f"audit {self.name!r} declares no code {code!r}")
