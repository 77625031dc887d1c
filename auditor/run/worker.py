"""The worker process of a supervised ``auditor run``: builds the run's objects and runs the audits.

Started by :mod:`auditor.run.supervise` as ``python -m auditor.run.worker FD`` in a session of its
own (a fresh interpreter: never a fork of a parent that may have initialised torch or CUDA). It reads
its job from the socket ``FD``, loads the manifest and the plugins itself, and streams back, as they
happen: each call into user code entered and left, each audit started and finished (its result), the
splits that could not be opened and, at the end, the facts the report needs (the task, versions).

What it tells the parent before it can die: ``os._exit`` is wrapped to send the caller's stack first,
``faulthandler`` writes the Python stack of a fatal signal (SIGSEGV, SIGABRT, ...) to a file the parent
reads, and ``SIGUSR1`` dumps the stack there too (the parent asks before it stops a hung worker). A
worker whose parent disappears kills its own session.
"""

from __future__ import annotations

import contextlib
import faulthandler
import itertools
import os
import signal
import sys
import threading
import time
import traceback
from multiprocessing.connection import Connection
from typing import Any

__all__ = ["main"]

_real_exit = os._exit


class _Channel:
    """The socket to the parent; sends from any thread (calls run in threads)."""

    def __init__(self, fd: int) -> None:
        self.connection = Connection(fd)
        self._lock = threading.Lock()

    def send(self, *message: Any) -> None:
        with self._lock:
            try:
                self.connection.send(message)
            except Exception:
                from auditor.report.document import strict_json

                self.connection.send(strict_json(list(message)))  # unpicklable evidence: its JSON form


class _Observer:
    """Tells the parent which call into user code is open, so a death inside one is attributed to it."""

    def __init__(self, channel: _Channel) -> None:
        self.channel = channel
        self._ids = itertools.count(1)

    def enter(self, what: str, seconds: float) -> object:
        token = next(self._ids)
        self.channel.send("enter", token, what, seconds)
        return token

    def leave(self, token: object) -> None:
        self.channel.send("leave", token)


def _frames(stack: traceback.StackSummary) -> list[tuple[str, int, str]]:
    return [(frame.filename, frame.lineno or 0, frame.name) for frame in stack]


def _wrap_exit(channel: _Channel) -> None:
    """``os._exit`` from user code says where it was called before the process goes."""

    def _exit(code: int) -> None:
        with contextlib.suppress(Exception):
            channel.send("exit", int(code), _frames(traceback.extract_stack()[:-1]))
        _real_exit(code)

    os._exit = _exit  # type: ignore[assignment]


def _watch_parent(parent: int) -> None:
    """The parent went away (killed): end this worker's whole session, DataLoader workers included."""
    while True:
        time.sleep(0.5)
        if os.getppid() != parent:
            with contextlib.suppress(OSError):
                os.killpg(0, signal.SIGKILL)
            _real_exit(137)


def _job_run(channel: _Channel, job: dict[str, Any]) -> None:
    from auditor.manifest.load import load_manifest
    from auditor.report.document import task_of
    from auditor.run._deadline import set_call_observer
    from auditor.run.context import RunContext
    from auditor.run.registry import load_registry
    from auditor.run.runner import Selection, keeps_code, run_one

    registry = load_registry()
    manifest = load_manifest(job["manifest"], registry)
    selection = Selection(**job["selection"])
    progress = None
    if job.get("progress"):
        from auditor.report.console import make_console
        from auditor.run._progress import RichProgress

        progress = RichProgress(make_console(stderr=True))
    context = RunContext(
        manifest, registry, use_cache=job["use_cache"], progress=progress, scheduler=job.get("scheduler")
    )
    context.deadline.failed.update(job.get("failed", {}))
    # As run_audits sets them: a hint names another audit's code only where that audit runs and the
    # code is kept (ctx.refers / ctx.see).
    context.running = frozenset(job["running"])
    context.static = selection.static
    context.code_kept = lambda code: keeps_code(code, selection)
    channel.send("ready")  # from here on, a death is user code's (or a plugin's) doing
    set_call_observer(_Observer(channel))
    registry.hook.auditor_run_started(context=context)
    names = list(job["run"])
    if names and context.has("data"):
        channel.send("phase", "opening the data splits, before any audit ran")
        problems = context.open_splits()
        channel.send("problems", [_problem(error) for error in problems.values()])
    for name in names:
        channel.send("start", name)
        result = run_one(context, registry.audits[name], selection)
        channel.send(
            "done",
            {
                "name": name,
                "status": result.status,
                "duration_s": result.duration_s,
                "findings": result.findings,
                "reason": result.reason,
                "error": result.error,
                "evidence": result.evidence,
                "notes": result.notes,
                "options": result.options,
            },
        )
    set_call_observer(None)
    versions = {
        module: str(getattr(sys.modules[module], "__version__", "unknown"))
        for module in ("torch", "torchvision")
        if module in sys.modules
    }
    channel.send("end", {"task": task_of(context), "versions": versions})


def _problem(error: Any) -> dict[str, Any]:
    return {
        "file": error.file,
        "key": error.key,
        "expected": error.expected,
        "found": error.found,
        "line": error.line,
        "hint": error.hint,
    }


def main(argv: list[str] | None = None) -> None:
    args = sys.argv[1:] if argv is None else argv
    # The parent decides about Ctrl-C and passes it on: act on it even if SIGINT came in ignored.
    signal.signal(signal.SIGINT, signal.default_int_handler)
    channel = _Channel(int(args[0]))
    job = channel.connection.recv()
    dump = open(job["dump"], "w")  # noqa: SIM115 - open for the life of the process (faulthandler)
    faulthandler.enable(file=dump, all_threads=True)
    faulthandler.register(signal.SIGUSR1, file=dump, all_threads=True, chain=False)
    _wrap_exit(channel)
    threading.Thread(
        target=_watch_parent, args=(job["parent"],), name="auditor: parent watch", daemon=True
    ).start()
    code = 0
    try:
        _job_run(channel, job)
    except KeyboardInterrupt:
        channel.send("interrupted")
        code = 130
    except SystemExit as exc:  # user code ended the process outside an audit (opening a split)
        status = exc.code if isinstance(exc.code, int) else (0 if exc.code is None else 1)
        channel.send("exit", status, _frames(traceback.extract_tb(exc.__traceback__)))
        code = status
    except BaseException as exc:
        channel.send("crash", f"{type(exc).__name__}: {exc}", traceback.format_exc())
        code = 70
    for stream in (sys.stdout, sys.stderr):
        with contextlib.suppress(Exception):
            stream.flush()
    # No interpreter finalisation: abandoned calls may still run in threads, and every file this
    # process wrote is complete already (caches commit per transaction, reports are the parent's).
    _real_exit(code)


if __name__ == "__main__":
    main()
