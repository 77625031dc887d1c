"""Running the selected audits: order, timing, crash isolation, filtering, exit code."""

from __future__ import annotations

import time
import traceback
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

from auditor._util.suggest import did_you_mean
from auditor.audit import Audit, SkipAudit
from auditor.errors import ManifestError, UsageError
from auditor.findings import Finding, severity_at_least
from auditor.manifest.sections import DEFAULTS
from auditor.run.accepted import Acceptance, AcceptRules
from auditor.run.context import AuditContext, RunContext
from auditor.run.finding_links import finalize_findings
from auditor.run.user_code import (
    UserCodeFailed,
    UserCodeFailure,
    call_of,
    failure_finding,
    failure_from_exception,
    note_plugins,
)

__all__ = [
    "AuditResult",
    "RunResult",
    "Selection",
    "accept_findings",
    "keeps_code",
    "matches_code",
    "record_failure",
    "run_audits",
    "run_one",
    "select_audits",
]


@dataclass
class Selection:
    """What the command line selected. Empty tuples mean "no restriction"."""

    only: Sequence[str] = ()
    skip: Sequence[str] = ()
    #: How ``only``/``skip`` were given, for the reason of a ``disabled`` audit (``auditor.check`` says its own).
    only_by: str = "--only"
    skip_by: str = "--skip"
    select: Sequence[str] = ()
    ignore: Sequence[str] = ()
    static: bool = False
    fail_on: str = DEFAULTS.fail_on
    #: Findings accepted on purpose (the manifest's ``ignore:``, a baseline): reported apart.
    accept: AcceptRules = field(default_factory=AcceptRules)


@dataclass
class AuditResult:
    audit: Audit
    status: str  # passed | failed | errored | skipped | disabled
    duration_s: float = 0.0
    findings: list[Finding] = field(default_factory=list)
    reason: str = ""
    error: dict[str, str] | None = None
    evidence: dict[str, Any] = field(default_factory=dict)
    notes: list[str] = field(default_factory=list)
    options: dict[str, Any] = field(default_factory=dict)


@dataclass
class RunResult:
    results: list[AuditResult]
    duration_s: float
    fail_on: str
    #: Problems of the manifest found while running (a split that cannot be opened), each once.
    problems: list[ManifestError] = field(default_factory=list)
    #: Findings accepted on purpose, with why: listed apart, they never decide the exit code.
    accepted: list[tuple[Finding, Acceptance]] = field(default_factory=list)

    @property
    def findings(self) -> list[Finding]:
        return [f for r in self.results for f in r.findings]

    @property
    def exit_code(self) -> int:
        if self.problems or any(r.status == "errored" for r in self.results):
            return 2
        if any(severity_at_least(f.severity, self.fail_on) for f in self.findings):
            return 1
        return 0


def matches_code(code: str, patterns: Sequence[str]) -> bool:
    """``patterns`` are codes or prefixes: ``SL`` matches ``SL001``; ``LD00`` matches ``LD001``."""
    return any(code.startswith(p.upper()) for p in patterns)


def select_audits(context: RunContext, selection: Selection) -> list[tuple[Audit, str, str]]:
    """Every installed audit in stable order, with its status before running and why.

    ``("", "")`` means the audit runs. ``disabled`` is a choice (the manifest's ``name: false``,
    ``--only``, ``--skip``): ``audits:`` configures audits, it never selects them, so an audit the
    manifest does not mention runs with its defaults. ``skipped`` means the audit cannot run here.
    """
    registry = context.registry
    known = set(registry.audits)
    for option, names in ((selection.only_by, selection.only), (selection.skip_by, selection.skip)):
        for name in names:
            if name not in known:
                hint = did_you_mean(name, known)
                raise UsageError(
                    f"{option} {name}: expected one of the installed audits {sorted(known)}, found "
                    f"{name!r}" + (f"; {hint}" if hint else "")
                )
    off = set(context.manifest.disabled_audits)
    chosen: list[tuple[Audit, str, str]] = []
    for audit in registry.ordered_audits():
        status, reason = "", ""
        if selection.only and audit.name not in selection.only:
            status, reason = "disabled", f"disabled by {selection.only_by} {','.join(selection.only)}"
        elif audit.name in selection.skip:
            status, reason = "disabled", f"disabled by {selection.skip_by} {audit.name}"
        elif audit.name in off:
            status, reason = "disabled", f"disabled in the manifest (audits.{audit.name}: false)"
        elif selection.static and audit.runs_model:
            status, reason = "skipped", "runs the model; skipped with --static"
        else:
            missing = [
                need
                for need in ("model", "optimizer", "loss", "data")
                if need in audit.needs and not context.has(need)
            ]
            if missing:
                status, reason = "skipped", f"the manifest has no {', '.join(missing)} section"
        chosen.append((audit, status, reason))
    return chosen


def run_audits(
    context: RunContext,
    selection: Selection,
    *,
    on_audit_start: Callable[[Audit], None] | None = None,
    on_audit_done: Callable[[AuditResult], None] | None = None,
) -> RunResult:
    started = time.perf_counter()
    context.registry.hook.auditor_run_started(context=context)
    results = []
    chosen = select_audits(context, selection)
    context.running = frozenset(audit.name for audit, status, _ in chosen if not status)
    context.static = selection.static
    context.code_kept = lambda code: keeps_code(code, selection)
    broken: dict[str, ManifestError] = {}
    if any(not status for _, status, _ in chosen) and context.has("data"):
        broken = context.open_splits()
    # An audit that then asks for a broken split is skipped (SplitUnavailable); one that needs only
    # the splits that opened (gradient_probe with a broken val) still runs.
    for audit, status, reason in chosen:
        if status:
            result = AuditResult(audit, status, reason=reason)
        else:
            if on_audit_start:
                on_audit_start(audit)
            result = run_one(context, audit, selection)
        results.append(result)
        context.finished[audit.name] = result.status
        if on_audit_done:
            on_audit_done(result)
    # Ids and cross-audit cause links need every audit's findings, so they come last.
    problems = finalize_findings([f for r in results for f in r.findings], [r.audit for r in results])
    for result in results:
        result.notes.extend(problems.get(result.audit.name, []))
    accepted = accept_findings(results, selection)
    return RunResult(
        results, time.perf_counter() - started, selection.fail_on, list(broken.values()), accepted
    )


def accept_findings(results: list[AuditResult], selection: Selection) -> list[tuple[Finding, Acceptance]]:
    """Give every finding its fingerprint, then move the accepted ones out of their audit's findings.

    An audit whose failing findings were all accepted did its whole job and found nothing left to
    fix: it is ``passed`` again.
    """
    from auditor.report.fingerprints import fingerprints

    everything = [f for r in results for f in r.findings]
    for finding, fingerprint in zip(everything, fingerprints(everything), strict=True):
        finding.fingerprint = fingerprint
    accepted: list[tuple[Finding, Acceptance]] = []
    for result in results:
        kept = []
        for finding in result.findings:
            why = selection.accept.acceptance(finding, finding.fingerprint)
            if why is None:
                kept.append(finding)
            else:
                accepted.append((finding, why))
        result.findings = kept
        if result.status == "failed" and not any(
            severity_at_least(f.severity, selection.fail_on) for f in kept
        ):
            result.status = "passed"
    return accepted


def run_one(context: RunContext, audit: Audit, selection: Selection) -> AuditResult:
    options = context.manifest.audit_options.get(audit.name, {})
    audit_context = AuditContext(context, audit, dict(options))
    result = AuditResult(audit, "passed", options=dict(options))
    started = time.perf_counter()
    failure: UserCodeFailure | None = None
    findings: list[Finding] = []
    try:
        produced = audit.run(audit_context)
        findings = list(produced or [])
    except UserCodeFailed as exc:
        failure = _repeat(result, exc.failure) if exc.repeat else exc.failure
    except SkipAudit as exc:
        result.status, result.reason = "skipped", str(exc)
    except ManifestError as exc:
        # A factory that cannot be imported or built: the manifest is wrong (exit 2).
        result.status = "errored"
        result.error = {"type": type(exc).__name__, "message": exc.render(), "traceback": ""}
    except KeyboardInterrupt as exc:
        if call_of(exc) is None:
            raise  # a real Ctrl-C lands in the main thread, never inside a call's thread
        failure = failure_from_exception(exc, audit=audit.name, user_roots=_user_roots(context))
    except (Exception, SystemExit) as exc:
        failure = failure_from_exception(exc, audit=audit.name, user_roots=_user_roots(context))
        if failure is None:  # auditor's own code (or a plugin's) crashed: a bug, errored
            result.status = "errored"
            result.error = {
                "type": type(exc).__name__,
                "message": str(exc),
                "traceback": traceback.format_exc(),
            }
        elif failure.key and failure.key in context.deadline.failed:
            failure = _repeat(result, context.deadline.failed[failure.key])
    if failure is not None:
        findings = record_failure(context, result, failure.for_audit(audit.name))
    result.duration_s = time.perf_counter() - started
    result.evidence = audit_context.evidence
    result.notes = audit_context.notes
    findings = [f for f in findings if keeps_code(f.code, selection)]
    context.registry.hook.auditor_findings(audit=audit, findings=findings)
    result.findings = findings
    if result.status == "passed" and any(severity_at_least(f.severity, selection.fail_on) for f in findings):
        result.status = "failed"
    return result


def _repeat(result: AuditResult, first: UserCodeFailure) -> None:
    """An audit asked again for a call that failed before in this run: skipped, pointing at the first."""
    result.status = "skipped"
    if first.audit == "the data splits":
        where = "; see the manifest problem reported for the split"
    else:
        where = f"; see the finding under {first.audit}" if first.audit else ""
    result.reason = f"{first.call} failed earlier in this run ({first.how}){where}"
    return None


def _user_roots(context: RunContext) -> list[str]:
    """Folders whose files are the user's code: the manifest's folder and its pythonpath (the files of
    registered plugins excepted, wherever they are)."""
    note_plugins(context.registry)
    manifest = context.manifest
    return [str(manifest.base_dir), *manifest.resolver.pythonpath]


def record_failure(context: RunContext, result: AuditResult, failure: UserCodeFailure) -> list[Finding]:
    """``result`` as an audit whose call into user code failed: the finding a plugin words for it.

    The audit could not do its job, so it is ``failed`` whatever ``fail_on`` says (never ``passed``);
    the finding's severity decides the exit code. Without a plugin that words failures, the audit is
    ``errored`` with the failure's own sentence. The call is remembered: asked again in this run, it
    is not made again.
    """
    failed = context.deadline.failed
    first = (failed.get(failure.key) if failure.key else None) or (
        failed.get(f"frame {failure.frame}") if failure.frame else None
    )
    if first is not None:
        _repeat(result, first)  # the same call (or line of user code) failed in an earlier audit: one finding
        return []
    if failure.key:
        failed.setdefault(failure.key, failure)
    if failure.frame:
        failed.setdefault(f"frame {failure.frame}", failure)
    finding = failure_finding(context.registry, failure)
    if finding is None:
        result.status = "errored"
        result.error = {
            "type": "UserCodeFailure",
            "message": failure.describe(),
            "traceback": failure.traceback,
        }
        return []
    result.status = "failed"
    return [finding]


def keeps_code(code: str, selection: Selection) -> bool:
    if selection.select and not matches_code(code, selection.select):
        return False
    return not (selection.ignore and matches_code(code, selection.ignore))
