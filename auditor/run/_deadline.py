"""Calling user code under a deadline: a call that never returns must not hang the run.

A manifest is code, and code can block forever: a factory waiting on a lock, a
``__getitem__`` reading a FIFO, a ``forward`` stuck in a loop. Python cannot
kill a thread, and a subprocess cannot share the model, the optimizer or a
dataset holding open files with the audit that needs them. So the call runs in
a *daemon* thread and the caller waits with ``join(timeout)``. When the deadline
passes, the caller gets :class:`DeadlineExceeded` (naming the call) and goes on;
the thread is abandoned, still running, and recorded in :func:`abandoned`.

The deadline belongs to a run, not to the process: a :class:`CallDeadline`
carries one run's ``call_timeout_s`` and travels with its context (the run
context, the manifest's resolver, every split's spec), so two runs in one
process (a notebook, a test suite, two threads) each keep their own. Only the
list of abandoned threads is process-wide, because the process is what has to
exit around them.

Abandoned threads cost CPU until the process ends, and an interpreter shutting
down while a daemon thread is inside a C extension (torch) can crash or block
in finalisation. So the CLI ends through :func:`exit_process`, which flushes
the standard streams and calls ``os._exit`` when any call was abandoned; that
skips ``atexit`` handlers, which is why every file auditor writes is complete
(renamed into place) before the exit code is known.

Limits: code that holds the GIL without ever releasing it (a C loop that never
returns to the interpreter) blocks every thread, the waiting one included;
nothing short of a separate process stops that, and auditor does not try.
Thread-local torch state (grad mode) is carried into the worker thread.
"""

from __future__ import annotations

import contextlib
import math
import os
import sys
import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, NoReturn, Protocol, TypeVar

from auditor.manifest.sections import DEFAULTS

__all__ = [
    "DEFAULT_CALL_TIMEOUT_S",
    "CallDeadline",
    "CallObserver",
    "DeadlineExceeded",
    "abandoned",
    "call_with_deadline",
    "exit_process",
    "set_call_observer",
]

T = TypeVar("T")

#: Seconds one call into user code may take (the manifest's ``call_timeout_s`` overrides it).
DEFAULT_CALL_TIMEOUT_S = DEFAULTS.call_timeout_s

_abandoned: list[threading.Thread] = []
_lock = threading.Lock()

#: Attribute set on an exception that left a call into user code: the innermost call's name
#: (read by ``auditor.run.user_code``, which words the failure).
CALL_ATTR = "__auditor_call__"


class CallObserver(Protocol):
    """Told of every call into user code: the supervised worker reports them to its parent, so a
    process that dies inside a call is known to have died in *that* call."""

    def enter(self, what: str, seconds: float) -> object: ...

    def leave(self, token: object) -> None: ...


_observer: CallObserver | None = None


def set_call_observer(observer: CallObserver | None) -> None:
    """Install (or remove, with None) the process's observer of calls into user code."""
    global _observer
    _observer = observer


class DeadlineExceeded(RuntimeError):
    """A call into user code did not return within its deadline; ``what`` names it."""

    def __init__(self, what: str, seconds: float, hint: str = "") -> None:
        self.what = what
        self.seconds = seconds
        self.hint = hint or (
            "raise the manifest's call_timeout_s if this call is merely slow, or make it "
            "return (a blocking read, a lock, an endless loop?)"
        )
        super().__init__(
            f"{what} did not return within {seconds:g} s; it was abandoned and the run went on "
            f"(hint: {self.hint})"
        )


@dataclass(frozen=True)
class CallDeadline:
    """How long one call into user code may take in one run: the manifest's ``call_timeout_s``.

    A run makes every call into user code through its deadline
    (``RunContext.call``, ``AuditContext.call``, ``Split.call``), so the limit
    is the one of the run that makes the call, whatever other run shares the
    process.
    """

    seconds: float = DEFAULT_CALL_TIMEOUT_S
    #: Calls that failed before in this run (or ended a worker process), by name: asked again, they raise
    #: :class:`~auditor.run.user_code.UserCodeFailed` (``repeat=True``) at once instead of failing again.
    failed: dict[str, Any] = field(default_factory=dict, compare=False, repr=False)

    def __post_init__(self) -> None:
        seconds = float(self.seconds)
        if not math.isfinite(seconds) or seconds <= 0:
            raise ValueError(
                f"call deadline: expected a finite number of seconds > 0, found {self.seconds!r}"
            )
        object.__setattr__(self, "seconds", seconds)

    @classmethod
    def of(cls, seconds: float | None) -> CallDeadline:
        """The deadline for a ``call_timeout_s`` setting; ``None`` (not set) means the default."""
        return cls() if seconds is None else cls(float(seconds))

    def call(self, fn: Callable[..., T], *args: Any, what: str, **kwargs: Any) -> T:
        """``fn(*args, **kwargs)`` under this deadline (see :func:`call_with_deadline`)."""
        if what in self.failed:
            from auditor.run.user_code import UserCodeFailed

            raise UserCodeFailed(self.failed[what], repeat=True)
        return call_with_deadline(fn, *args, what=what, seconds=self.seconds, **kwargs)


def abandoned() -> list[str]:
    """Names of calls that passed their deadline and are still running."""
    with _lock:
        _abandoned[:] = [thread for thread in _abandoned if thread.is_alive()]
        return [thread.name.removeprefix("auditor: ") for thread in _abandoned]


def call_with_deadline(fn: Callable[..., T], *args: Any, what: str, seconds: float, **kwargs: Any) -> T:
    """``fn(*args, **kwargs)``, or :class:`DeadlineExceeded` naming ``what`` after ``seconds``.

    Exceptions raised by ``fn`` propagate unchanged with their traceback. A call
    made from a thread that is itself running under a deadline nests: the inner
    deadline is the smaller of the two only in effect, since the outer waiter
    gives up on the whole thing at its own deadline.
    """
    limit = float(seconds)
    outcome: dict[str, Any] = {}
    grad = _grad_mode()

    def target() -> None:
        try:
            if grad is not None:
                import torch

                torch.set_grad_enabled(grad)
            outcome["value"] = fn(*args, **kwargs)
        except BaseException as exc:
            if getattr(exc, CALL_ATTR, None) is None and not isinstance(exc, DeadlineExceeded):
                with contextlib.suppress(AttributeError, TypeError):
                    setattr(exc, CALL_ATTR, what)  # the innermost call names it
            outcome["error"] = exc

    observer = _observer
    token = observer.enter(what, limit) if observer is not None else None
    thread = threading.Thread(target=target, name=f"auditor: {what}", daemon=True)
    thread.start()
    try:
        thread.join(limit)
    except BaseException:  # Ctrl-C while waiting: the call may run on; exit_process must know
        with _lock:
            _abandoned.append(thread)
        raise
    finally:
        if observer is not None:
            observer.leave(token)
    if thread.is_alive():
        with _lock:
            _abandoned.append(thread)
        raise DeadlineExceeded(what, limit)
    if "error" in outcome:
        error = outcome.pop("error")
        try:
            raise error
        finally:
            del error  # no reference cycle through the traceback
    return outcome["value"]  # type: ignore[no-any-return]


def _grad_mode() -> bool | None:
    """Torch's thread-local grad mode of the caller, when torch is loaded (never imports it)."""
    torch = sys.modules.get("torch")
    if torch is None or not hasattr(torch, "is_grad_enabled"):
        return None
    return bool(torch.is_grad_enabled())


def exit_process(code: int) -> NoReturn:
    """Exit with ``code``; with abandoned calls still running, exit at once (``os._exit``)."""
    if not abandoned():
        sys.exit(code)
    for stream in (sys.stdout, sys.stderr):
        with contextlib.suppress(OSError, ValueError):
            stream.flush()
    os._exit(code)
