"""A supervised ``auditor run``: the audits run in a worker process that user code cannot take down.

User code can end the process that calls it (``sys.exit`` is caught in-process, ``os._exit``, a
segfault, ``abort()``, the out-of-memory killer are not) or hold the interpreter forever. So
``auditor run`` keeps this process free of user code: a worker (:mod:`auditor.run.worker`, a fresh
interpreter in a session of its own) builds the objects and runs the audits, streaming each result
back, the way pytest-xdist survives a crashed worker. When the worker dies, this process knows the
audit and the call into user code it was in, and how it ended (exit code, signal, the memory limit,
a deadline); the call becomes a finding through the plugin that words failures of user code, the
audits still to run go on in a new worker (the failed call is not made again there: whoever needs it
is skipped, pointing at the finding), and the report is written with everything that finished.

Limits, enforced here: the worker's resident memory (``memory_limit_gib``; Linux, read from /proc)
and a call that stays open past its deadline plus a grace (the worker's own deadline thread could not
run: C code holding the interpreter). Ctrl-C: the worker's session gets SIGINT, has a few seconds to
stop (caches commit per transaction), then is killed; the run exits 130 without a report.
"""

from __future__ import annotations

import contextlib
import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field, fields
from multiprocessing.connection import Connection
from pathlib import Path
from typing import Any

from auditor.errors import ManifestError
from auditor.run.context import RunContext
from auditor.run.finding_links import finalize_findings
from auditor.run.runner import (
    AuditResult,
    RunResult,
    Selection,
    accept_findings,
    keeps_code,
    record_failure,
    select_audits,
)
from auditor.run.user_code import UserCodeFailure, describe_exit, location_of, name_call, user_frame

__all__ = [
    "DEFAULT_MEMORY_FRACTION",
    "MAX_WORKER_DEATHS",
    "SupervisedRun",
    "default_memory_limit_gib",
    "run_supervised",
]

#: Share of the machine's memory the worker may use by default (``--memory-limit`` overrides it).
DEFAULT_MEMORY_FRACTION = 0.8
#: After this many worker deaths the audits still to run are skipped (each death costs a fresh start).
MAX_WORKER_DEATHS = 4
#: Seconds a call may stay open past its own deadline before the worker is taken for stuck.
HANG_GRACE_S = 15.0
#: Seconds a worker has to stop after Ctrl-C before it is killed.
INTERRUPT_GRACE_S = 10.0
_POLL_S = 0.2


@dataclass
class SupervisedRun:
    """What the workers sent besides the results: the report's task entry and library versions."""

    result: RunResult
    task: Any = None
    versions: dict[str, str] = field(default_factory=dict)


def default_memory_limit_gib() -> float | None:
    """80% of the machine's memory, or None where it cannot be read (no limit then)."""
    try:
        pages, size = os.sysconf("SC_PHYS_PAGES"), os.sysconf("SC_PAGE_SIZE")
    except (ValueError, OSError, AttributeError):
        return None
    return round(pages * size * DEFAULT_MEMORY_FRACTION / 2**30, 1)


def _rss_gib(pid: int) -> float | None:
    try:
        resident = int(Path(f"/proc/{pid}/statm").read_text().split()[1])
    except (OSError, ValueError, IndexError):
        return None
    return resident * os.sysconf("SC_PAGE_SIZE") / 2**30


@dataclass
class _Death:
    """How a worker ended before its job was done."""

    returncode: int
    exit_frames: list[tuple[str, int, str]] | None = None
    killed_for: str = ""  # "memory" | "deadline" | ""
    detail: str = ""
    crash: tuple[str, str] | None = None


def _worker_environment() -> dict[str, str]:
    """The worker's environment: the caller's, with glibc's malloc held to two arenas unless set.

    Every call into user code runs in a thread of its own (that is how deadlines abandon it), and glibc
    gives threads their own arenas that keep freed tensors' memory: measured on a default ResNet-50 run
    (benchmarks/whole_run.py, 2,000 images), the worker peaked at 4.4 GiB with the default arenas and
    2.7-3.1 GiB with two (three runs), and was not slower. A value the user set is kept.
    """
    env = dict(os.environ)
    env.setdefault("MALLOC_ARENA_MAX", "2")
    return env


class _Worker:
    def __init__(self, job: dict[str, Any], folder: Path) -> None:
        ours, theirs = socket.socketpair()
        self.dump = folder / f"stack-{time.monotonic_ns()}.txt"
        self.process = subprocess.Popen(
            [sys.executable, "-m", "auditor.run.worker", str(theirs.fileno())],
            pass_fds=(theirs.fileno(),),
            start_new_session=True,  # its own process group: Ctrl-C and kills reach it and its children only
            stdin=subprocess.DEVNULL,
            env=_worker_environment(),
        )
        theirs.close()
        self.connection = Connection(ours.detach())
        self.connection.send({**job, "dump": str(self.dump), "parent": os.getpid()})
        #: token -> (call, started, seconds), the calls into user code open now
        self.open_calls: dict[Any, tuple[str, float, float]] = {}
        self.audit: str | None = None
        #: what the worker was doing outside an audit (opening the splits)
        self.phase = ""
        self.exit_frames: list[tuple[str, int, str]] | None = None
        self.crash: tuple[str, str] | None = None
        self.peak_gib = 0.0
        #: True once the worker loaded the plugins and the manifest (before: its death is auditor's)
        self.ready = False

    def signal_group(self, signum: int) -> None:
        with contextlib.suppress(OSError):
            os.killpg(self.process.pid, signum)

    def innermost(self) -> tuple[str, float, float] | None:
        return list(self.open_calls.values())[-1] if self.open_calls else None

    def stack_frames(self) -> list[tuple[str, int, str]]:
        """The crashing thread's frames from the faulthandler dump, outermost first."""
        try:
            text = self.dump.read_text(errors="replace")
        except OSError:
            return []
        blocks = re.split(r"\n(?=(?:Current thread|Thread) 0x)", text)
        current = next(
            (b for b in blocks if b.lstrip().startswith("Current thread")), blocks[-1] if blocks else ""
        )
        frames = [
            (m.group(1), int(m.group(2)), m.group(3))
            for m in re.finditer(r'File "(.*?)", line (\d+) in (\S+)', current)
        ]
        return list(reversed(frames))

    def close(self) -> None:
        self.signal_group(signal.SIGKILL)  # DataLoader workers or pools a dead worker left behind
        with contextlib.suppress(Exception):
            self.process.wait(timeout=10)
        with contextlib.suppress(Exception):
            self.connection.close()


def run_supervised(
    context: RunContext,
    selection: Selection,
    *,
    use_cache: bool = True,
    scheduler: str | None = None,
    progress: bool = False,
    memory_limit_gib: float | None = None,
    on_audit_done: Callable[[AuditResult], None] | None = None,
) -> SupervisedRun:
    """Run the selected audits of ``context``'s manifest in worker processes; see the module's text."""
    started = time.perf_counter()
    chosen = select_audits(context, selection)
    results: dict[str, AuditResult] = {}
    pending: list[str] = []
    for audit, status, reason in chosen:
        if status:
            results[audit.name] = AuditResult(audit, status, reason=reason)
        else:
            pending.append(audit.name)
    problems: dict[str, ManifestError] = {}
    outcome = SupervisedRun(RunResult([], 0.0, selection.fail_on))
    limit = memory_limit_gib if memory_limit_gib is not None else default_memory_limit_gib()
    job = {
        "manifest": str(context.manifest.path),
        # The worker finds and words; accepting findings (ignore: entries, a baseline) needs every
        # audit's findings and their fingerprints, so it happens here, as run_audits does it in-process.
        "selection": {f.name: getattr(selection, f.name) for f in fields(selection) if f.name != "accept"},
        "running": [audit.name for audit, status, _ in chosen if not status],
        "use_cache": use_cache,
        "scheduler": scheduler,
        "progress": progress,
    }
    deaths = 0
    shown: list[str] = []

    def show(_: AuditResult | None = None) -> None:
        """Tell ``on_audit_done`` of each result in the audits' order, as soon as all before it are known."""
        for audit, _, _ in chosen[len(shown) :]:
            if audit.name not in results:
                return
            shown.append(audit.name)
            if on_audit_done:
                on_audit_done(results[audit.name])

    show()
    folder = Path(tempfile.mkdtemp(prefix="auditor-worker-"))
    interrupt = _catch_interrupts()
    try:
        while pending:
            worker = _Worker({**job, "run": list(pending), "failed": dict(context.deadline.failed)}, folder)
            try:
                death = _follow(worker, context, results, pending, problems, outcome, limit, show)
            finally:
                worker.close()
            if death is None:
                break
            deaths += 1
            name = worker.audit if worker.audit in pending else pending[0]
            audit = context.registry.audits[name]
            result = AuditResult(audit, "passed", options=dict(context.manifest.audit_options.get(name, {})))
            if death.crash is not None:
                # auditor's own code crashed in the worker (not user code): a bug; the audits left would
                # meet it again, so they are errored with it too instead of starting worker after worker.
                error = {"type": "WorkerCrash", "message": death.crash[0], "traceback": death.crash[1]}
                for rest in pending:
                    results[rest] = AuditResult(context.registry.audits[rest], "errored", error=dict(error))
                pending.clear()
                continue
            findings = record_failure(context, result, _failure(worker, death, name, limit, context))
            # --select/--ignore as for any audit's findings; the audit stays failed (never a false pass).
            result.findings = [f for f in findings if keeps_code(f.code, selection)]
            context.registry.hook.auditor_findings(audit=audit, findings=result.findings)
            results[name] = result
            pending.remove(name)
            show()
            if deaths >= MAX_WORKER_DEATHS:
                for rest in pending:
                    results[rest] = AuditResult(
                        context.registry.audits[rest],
                        "skipped",
                        reason=f"not run: user code ended {deaths} worker processes in this run",
                    )
                pending.clear()
        show()
    finally:
        if interrupt is not None:
            signal.signal(signal.SIGINT, interrupt)
        shutil.rmtree(folder, ignore_errors=True)
    ordered = [results[audit.name] for audit, _, _ in chosen]
    notes = finalize_findings([f for r in ordered for f in r.findings], [r.audit for r in ordered])
    for result in ordered:
        result.notes.extend(notes.get(result.audit.name, []))
    accepted = accept_findings(ordered, selection)
    outcome.result = RunResult(
        ordered, time.perf_counter() - started, selection.fail_on, list(problems.values()), accepted
    )
    return outcome


def _catch_interrupts() -> Any:
    """Ctrl-C must reach this process even where it started with SIGINT ignored (a background job of a
    script): it alone can stop the worker cleanly. Returns the handler to restore, or None."""
    import threading

    if threading.current_thread() is not threading.main_thread():
        return None
    previous = signal.getsignal(signal.SIGINT)
    if previous is signal.SIG_IGN:
        signal.signal(signal.SIGINT, signal.default_int_handler)
        return previous
    return None


def _follow(
    worker: _Worker,
    context: RunContext,
    results: dict[str, AuditResult],
    pending: list[str],
    problems: dict[str, ManifestError],
    outcome: SupervisedRun,
    limit: float | None,
    on_audit_done: Callable[[AuditResult], None] | None,
) -> _Death | None:
    """Read the worker's messages until it ends; None when it finished its job."""
    finished = False
    checked = time.monotonic()
    try:
        while True:
            try:
                ready = worker.connection.poll(_POLL_S)
            except (EOFError, OSError):
                ready = False
            if ready:
                try:
                    message = worker.connection.recv()
                except (EOFError, OSError):
                    message = None
                if message is not None and _handle(
                    message, worker, context, results, pending, problems, outcome, on_audit_done
                ):
                    finished = True
            if worker.process.poll() is not None:
                _drain(worker, context, results, pending, problems, outcome, on_audit_done)
                if finished or not pending:
                    return None
                crash = worker.crash
                if crash is None and not worker.ready:
                    how, _, _ = describe_exit(worker.process.returncode)
                    crash = (f"auditor's worker process could not start: {how}", "")
                return _Death(worker.process.returncode, worker.exit_frames, crash=crash)
            if time.monotonic() - checked < _POLL_S:
                continue
            checked = time.monotonic()
            killed = _limits(worker, limit)
            if killed is not None:
                _drain(worker, context, results, pending, problems, outcome, on_audit_done)
                return killed
    except KeyboardInterrupt:
        worker.signal_group(signal.SIGINT)
        with contextlib.suppress(subprocess.TimeoutExpired, KeyboardInterrupt):
            worker.process.wait(timeout=INTERRUPT_GRACE_S)
        raise


def _drain(worker: _Worker, *args: Any) -> None:
    """Messages still in the socket after the worker ended (sent just before it died)."""
    with contextlib.suppress(EOFError, OSError):
        while worker.connection.poll(0):
            _handle(worker.connection.recv(), worker, *args)


def _stop(worker: _Worker) -> int:
    """Kill the worker's process group, after asking it for its stack (for the user's frame); its return code."""
    worker.signal_group(signal.SIGUSR1)
    time.sleep(0.2)
    worker.signal_group(signal.SIGKILL)
    return worker.process.wait()


def _limits(worker: _Worker, limit: float | None) -> _Death | None:
    """Stop a worker above the memory limit, or one stuck in a call far past its deadline."""
    rss = _rss_gib(worker.process.pid)
    if rss is not None:
        worker.peak_gib = max(worker.peak_gib, rss)
        if limit is not None and rss > limit:
            return _Death(
                _stop(worker),
                killed_for="memory",
                detail=f"the process grew to {rss:.1f} GiB, past the run's memory limit of {limit:g} GiB "
                "(auditor run --memory-limit); auditor stopped it",
            )
    now = time.monotonic()
    for _call, started, seconds in list(worker.open_calls.values()):
        if now - started > seconds + HANG_GRACE_S:
            return _Death(
                _stop(worker),
                killed_for="deadline",
                detail=f"did not return within {seconds:g} s and kept the interpreter from running anything "
                "else (C code that never returns?); auditor stopped the process",
            )
    return None


def _handle(
    message: Any,
    worker: _Worker,
    context: RunContext,
    results: dict[str, AuditResult],
    pending: list[str],
    problems: dict[str, ManifestError],
    outcome: SupervisedRun,
    on_audit_done: Callable[[AuditResult], None] | None,
) -> bool:
    """Apply one message; True when it is the worker's last ("end")."""
    kind = message[0]
    if kind == "enter":
        worker.open_calls[message[1]] = (message[2], time.monotonic(), float(message[3]))
    elif kind == "leave":
        worker.open_calls.pop(message[1], None)
    elif kind == "ready":
        worker.ready = True
    elif kind == "phase":
        worker.phase = message[1]
    elif kind == "start":
        worker.phase = ""
        worker.audit = message[1]
        worker.open_calls.clear()
    elif kind == "done":
        payload: Mapping[str, Any] = message[1]
        name = payload["name"]
        result = AuditResult(
            context.registry.audits[name],
            payload["status"],
            duration_s=payload["duration_s"],
            findings=list(payload["findings"]),
            reason=payload["reason"],
            error=payload["error"],
            evidence=dict(payload["evidence"]),
            notes=list(payload["notes"]),
            options=dict(payload["options"]),
        )
        results[name] = result
        if name in pending:
            pending.remove(name)
        worker.audit = None
        if on_audit_done:
            on_audit_done(result)
    elif kind == "problems":
        for raw in message[1]:
            problems.setdefault(
                raw["key"],
                ManifestError(
                    raw["file"], raw["key"], raw["expected"], raw["found"], line=raw["line"], hint=raw["hint"]
                ),
            )
    elif kind == "end":
        outcome.task = message[1]["task"]
        outcome.versions = dict(message[1]["versions"])
        return True
    elif kind == "exit":
        worker.exit_frames = [tuple(frame) for frame in message[2]]  # type: ignore[misc]
    elif kind == "crash":
        worker.crash = (message[1], message[2])
    return False


def _failure(
    worker: _Worker, death: _Death, audit: str, limit: float | None, context: RunContext
) -> UserCodeFailure:
    """The dead worker's failure in words: the call it was in, how it ended, the user's frame."""
    roots = [str(context.manifest.base_dir), *context.manifest.resolver.pythonpath]
    innermost = worker.innermost()
    if innermost:
        call = innermost[0]
    elif worker.phase:
        call = f"user code run while {worker.phase}"
    else:
        call = f"user code run by the audit {audit}"
    frames = death.exit_frames if death.exit_frames is not None else worker.stack_frames()
    found = user_frame(frames, roots)
    frame, func = found if found else ("", "")

    call = name_call(call, func)
    if death.killed_for:
        kind, how = death.killed_for, death.detail
        exit_code, signame = None, "SIGKILL"
    elif death.exit_frames is not None:
        kind, exit_code, signame = "ended", death.returncode, None
        how = f"ended the process with exit code {death.returncode} (os._exit or sys.exit)"
    else:
        kind = "ended"
        how, exit_code, signame = describe_exit(death.returncode)
    return UserCodeFailure(
        kind,
        call,
        how,
        audit=audit,
        frame=frame,
        location=location_of(call),
        key=innermost[0] if innermost else "",
        exit_code=exit_code,
        signal=signame,
        process_ended=True,
        extra={"memory_limit_gib": limit} if kind == "memory" else {},
    )
