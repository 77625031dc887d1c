"""What an audit declares to the host (its codes, and which of them follow from which), and how it skips."""

from __future__ import annotations

from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from auditor.findings import CODE_PATTERN, CodeInfo

if TYPE_CHECKING:  # pragma: no cover
    from auditor.findings import Finding
    from auditor.run.context import AuditContext

__all__ = ["NEEDS", "Audit", "CauseRule", "SkipAudit"]

#: What an audit may need from the run. ``device`` means it *runs the model*
#: (forward/backward passes), which is what ``--static`` skips.
NEEDS = frozenset({"data", "model", "optimizer", "loss", "device"})


class SkipAudit(Exception):
    """Raise from an audit's ``run`` when it does not apply to this manifest.

    The audit is then reported as ``skipped`` with the message as its reason,
    which is not an error: e.g. ``split_leakage`` with a single split.
    """


@dataclass(frozen=True)
class CauseRule:
    """A finding of the declaring audit follows from a finding of another code.

    After every audit ran, the host links each finding of code ``finding`` to the
    first finding of a ``caused_by`` code (tried in the order given, each in report
    order) for which ``when(cause, effect, findings)`` is true; ``findings`` is every
    finding of the run. Without ``when`` any finding of a ``caused_by`` code is the
    cause. The report then carries ``caused_by`` (the root's id) on the consequence,
    and the console and HTML show it under its root.

    ``finding`` must be a code of the audit that declares the rule: an audit says
    what its own findings follow from, never what another audit's do. ``caused_by``
    may name codes of any audit, its own included. A ``when`` that raises links
    nothing and is noted on the declaring audit; it must not depend on more than
    the findings it is given.

    Example (an image-properties plugin: its IP004 "images smaller than the model's input"
    follows from its own IP001 "thumbnails" or another plugin's XR002 on the same split)::

        CauseRule(
            finding="IP004",
            caused_by=("IP001", "XR002"),
            when=lambda cause, effect, _all: cause.location == effect.location,
            why="thumbnails are smaller than any input size the model accepts",
        )
    """

    finding: str
    caused_by: tuple[str, ...]
    when: Callable[[Finding, Finding, Sequence[Finding]], bool] | None = None
    #: One line a reader of the plugin's docs (or a reviewer) understands the link by.
    why: str = ""

    def __post_init__(self) -> None:
        causes = (self.caused_by,) if isinstance(self.caused_by, str) else tuple(self.caused_by)
        object.__setattr__(self, "caused_by", causes)
        for code in (self.finding, *causes):
            if not isinstance(code, str) or not CODE_PATTERN.match(code):
                raise ValueError(
                    f"cause rule for {self.finding!r}: expected finding codes like 'AB001', found {code!r}"
                )
        if not causes:
            raise ValueError(
                f"cause rule for {self.finding!r}: expected at least one code in caused_by, found none"
            )
        if self.when is not None and not callable(self.when):
            raise ValueError(
                f"cause rule for {self.finding!r}: expected when to be callable(cause, effect, findings), "
                f"found {type(self.when).__name__}"
            )


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
    #: Which of this audit's findings follow from which codes (its own or another audit's).
    causes: Sequence[CauseRule] = ()

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
        own = {info.code for info in self.codes}
        for rule in self.causes:
            if not isinstance(rule, CauseRule):
                raise ValueError(
                    f"audit {self.name!r}: expected causes to hold auditor.CauseRule objects, "
                    f"found {type(rule).__name__}"
                )
            if rule.finding not in own:
                raise ValueError(
                    f"audit {self.name!r}: cause rule for {rule.finding} names a code this audit does not "
                    f"declare; an audit declares causes of its own findings only ({sorted(own)})"
                )
        object.__setattr__(self, "causes", tuple(self.causes))

    @property
    def runs_model(self) -> bool:
        """True for audits that ``--static`` skips."""
        return "device" in self.needs

    def code(self, code: str) -> CodeInfo:
        for info in self.codes:
            if info.code == code:
                return info
        raise KeyError(f"audit {self.name!r} declares no code {code!r}")
