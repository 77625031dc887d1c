"""When user code fails: what the call was, how it ended, where in the user's code, and the fix.

A manifest is code, and its code can raise, call ``sys.exit``, hang, crash the
interpreter or eat the machine's memory. None of that is auditor's failure, and
none of it may end the run: the call that failed becomes a
:class:`UserCodeFailure` and the plugin that owns the reliability codes turns
it into a finding (hook ``auditor_user_code_failed``; the host knows no finding
code). This module only describes failures; catching them is the runner's job
(exceptions, ``SystemExit``, ``KeyboardInterrupt`` raised by user code), the
supervisor's (a worker process that died: exit code, signal, memory, deadline)
and the sources' (a model whose tensors are on the ``meta`` device).

Which frames are "the user's": any file outside auditor's own packages, the
standard library and installed packages, and every file under the manifest's
folder or ``pythonpath``.
"""

from __future__ import annotations

import os
import re
import signal
import sys
import sysconfig
import traceback
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path
from types import TracebackType
from typing import TYPE_CHECKING, Any

from auditor.run._deadline import CALL_ATTR

if TYPE_CHECKING:  # pragma: no cover
    from auditor.findings import Finding
    from auditor.run.registry import Registry

__all__ = [
    "KINDS",
    "UserCodeFailed",
    "UserCodeFailure",
    "call_of",
    "describe_exit",
    "failure_finding",
    "failure_from_exception",
    "location_of",
    "meta_tensors",
    "name_call",
    "note_plugins",
    "user_frame",
]

#: ``ended``: the call ended the process (``sys.exit``, ``os._exit``, a signal, a raised
#: ``KeyboardInterrupt``); ``raised``: it raised an exception; ``deadline``: it did not return within
#: ``call_timeout_s``; ``memory``: it passed the run's memory limit; ``meta``: the model it built holds
#: tensors on the ``meta`` device (no data).
KINDS = ("ended", "raised", "deadline", "memory", "meta")

_CALL_ATTR = CALL_ATTR


def _package_root(name: str) -> str | None:
    """The folder of package ``name`` (found without importing it), with a trailing separator."""
    import importlib.util

    try:
        spec = importlib.util.find_spec(name)
    except (ImportError, ValueError):
        return None
    if spec is None or not spec.origin:
        return None
    return str(Path(spec.origin).resolve().parent) + os.sep


_AUDITOR_ROOTS = tuple(root for root in (_package_root("auditor"), _package_root("auditor_plugins")) if root)
_LIBRARY_ROOTS = tuple(
    {
        str(Path(path).resolve()) + os.sep
        for name in ("stdlib", "platstdlib", "purelib", "platlib")
        if (path := sysconfig.get_paths().get(name))
    }
)


@dataclass(frozen=True)
class UserCodeFailure:
    """One call into user code that could not finish, in words a user can act on.

    ``call`` names the call as the run knew it (``model.factory (m:build)``, ``import of module 'm'``,
    ``the transform of split 'train' on sample 4``); ``kind`` is one of :data:`KINDS`; ``how`` says how
    it ended (``sys.exit(3)``, ``signal SIGSEGV``, ``TypeError: bad width``, ``no return within 8 s``);
    ``frame`` is the user's innermost frame (``/p/m.py:12 in forward``) when known.
    """

    kind: str
    call: str
    how: str
    audit: str = ""
    frame: str = ""
    #: The manifest key the call belongs to (``model.factory``, ``data.train``), for the finding's location.
    location: str = ""
    #: The call's name as the run's deadline knows it: asked again in this run, it is not made again.
    key: str = ""
    #: The process's exit code or signal name when it ended; None while it lives.
    exit_code: int | None = None
    signal: str | None = None
    #: The user's part of the traceback (or of the stack a dying process dumped), most recent call last.
    traceback: str = ""
    #: True when this failure ended a worker process (the run went on in a new one).
    process_ended: bool = False
    extra: dict[str, Any] = field(default_factory=dict)

    def __post_init__(self) -> None:
        if self.kind not in KINDS:
            raise ValueError(f"user code failure: expected a kind in {KINDS}, found {self.kind!r}")

    @property
    def where(self) -> str:
        """``" at FILE:LINE in FUNC"`` or ``""``."""
        return f" at {self.frame}" if self.frame else ""

    def describe(self) -> str:
        """One sentence: the call, how it ended, where."""
        return f"{self.call}: {self.how}{self.where}"

    def for_audit(self, audit: str) -> UserCodeFailure:
        return replace(self, audit=audit)

    def to_dict(self) -> dict[str, Any]:
        return {
            "kind": self.kind,
            "call": self.call,
            "how": self.how,
            "frame": self.frame,
            "exit_code": self.exit_code,
            "signal": self.signal,
            "traceback": self.traceback,
            "process_ended": self.process_ended,
            **self.extra,
        }


class UserCodeFailed(Exception):
    """Raised where a user object cannot be used (a meta model) or a call failed before in this run.

    ``repeat``: the call already failed once in this run (or ended a worker process): the audit asking
    again is skipped, pointing at the first failure, instead of reporting (or dying of) it twice.
    """

    def __init__(self, failure: UserCodeFailure, *, repeat: bool = False) -> None:
        self.failure = failure
        self.repeat = repeat
        super().__init__(failure.describe())


def call_of(exc: BaseException) -> str | None:
    """The call into user code ``exc`` left, when it left one."""
    value = getattr(exc, _CALL_ATTR, None)
    return value if isinstance(value, str) else None


#: Files of the plugins registered in this process (third-party audits too): never the user's code.
_plugin_files: set[str] = set()


def note_plugins(registry: Registry) -> None:
    """Remember the source files of ``registry``'s plugins: a crash in a plugin is a plugin's bug
    (``errored``), not the user's code failing, wherever the plugin lives."""
    for plugin in registry.manager.get_plugins():
        filename = getattr(plugin, "__file__", None) or getattr(
            sys.modules.get(getattr(plugin, "__module__", "") or ""), "__file__", None
        )
        if isinstance(filename, str):
            path = Path(filename).resolve()
            # A package's plugin module speaks for the whole package (its other modules are its code).
            _plugin_files.add(str(path.parent) + os.sep if path.name == "__init__.py" else str(path))


def _is_plugin_file(path: str) -> bool:
    return any(
        path == entry or (entry.endswith(os.sep) and path.startswith(entry)) for entry in _plugin_files
    )


def _is_user_file(filename: str, user_roots: Sequence[str]) -> bool:
    if not filename or filename.startswith("<"):
        return False
    path = os.path.realpath(filename)
    if _is_plugin_file(path):
        return False
    if any(path.startswith(root) for root in user_roots):
        return True
    if _is_auditor_file(path):
        return False
    return not any(path.startswith(root) for root in _LIBRARY_ROOTS)


def _is_auditor_file(filename: str) -> bool:
    """A file of auditor or its built-in plugins (installed or editable)."""
    path = os.path.realpath(filename)
    if any(path.startswith(root) for root in _AUDITOR_ROOTS) or "auditor_plugins" in Path(path).parts:
        return True
    return _is_plugin_file(path)


def _only_libraries_below_call(frames: Sequence[tuple[str, int, str]]) -> bool:
    """True when no auditor frame follows the innermost call boundary: the user's callable was itself a
    library function (``torch.optim:SGD``), or the call's arguments did not fit it."""
    boundary = os.path.join("run", "_deadline.py")
    last = max((i for i, frame in enumerate(frames) if frame[0].endswith(boundary)), default=None)
    if last is None:
        return False
    return not any(_is_auditor_file(frame[0]) for frame in frames[last + 1 :])


def _roots(user_roots: Iterable[str | Path]) -> list[str]:
    return [str(Path(root).resolve()) + os.sep for root in user_roots]


def user_frame(
    frames: Sequence[tuple[str, int, str]], user_roots: Iterable[str | Path] = ()
) -> tuple[str, str] | None:
    """``(file:line in func, kind)`` of the innermost user frame of ``frames`` (outermost first); ``kind``
    is ``forward``, ``__getitem__`` or ``<module>`` when a user frame of that name is on the stack, else
    the innermost user function's name."""
    roots = _roots(user_roots)
    users = [frame for frame in frames if _is_user_file(frame[0], roots)]
    if not users:
        return None
    filename, line, func = users[-1]
    # The kind of call is the innermost user frame that names one (a helper called from forward is forward's).
    kinds = [name for _, _, name in reversed(users) if name in ("forward", "__getitem__", "<module>")]
    return f"{filename}:{line} in {func}", kinds[0] if kinds else func


def _frames(tb: TracebackType | None) -> list[tuple[str, int, str]]:
    return [(f.filename, f.lineno or 0, f.name) for f in traceback.extract_tb(tb)]


def _user_traceback(tb: TracebackType | None, user_roots: Iterable[str | Path]) -> str:
    roots = _roots(user_roots)
    summary = [f for f in traceback.extract_tb(tb) if _is_user_file(f.filename, roots)]
    return "".join(traceback.format_list(summary)[-8:])


def name_call(call: str, func: str) -> str:
    """A readable name for the call from the user's frame: forward, __getitem__, a transform, an import."""
    if func == "forward":
        return f"the model's forward (during {call})" if call else "the model's forward"
    if func == "__getitem__":
        return f"the dataset's __getitem__ (during {call})" if call else "the dataset's __getitem__"
    if func == "__call__" and "transform" in call:
        return call
    if func == "<module>" and not call.startswith("import"):
        return f"a module's top level, at import (during {call})" if call else "a module's import"
    return call or f"{func}()"


def location_of(call: str) -> str:
    """The manifest key a call's name starts with (``model.factory (m:x)`` -> ``model.factory``)."""
    match = re.match(r"^(model|optimizer|loss|lr_scheduler)\.factory|^data\.\w+", call)
    if match:
        return match.group(0)
    match = re.search(r"\((model|optimizer|loss|lr_scheduler)\.factory\)", call)
    if match:
        return f"{match.group(1)}.factory"
    match = re.search(r"split '(\w+)'", call)
    return f"data.{match.group(1)}" if match else ""


def failure_from_exception(
    exc: BaseException, *, audit: str = "", user_roots: Iterable[str | Path] = ()
) -> UserCodeFailure | None:
    """The failure of user code ``exc`` stands for, or None when it is auditor's own (a bug: ``errored``).

    An exception is the user's when a user frame is on its traceback, or when it left a call into user
    code right at the call (the arguments did not fit: ``TypeError`` of the call itself). ``SystemExit``
    and ``KeyboardInterrupt`` reaching an audit always come from the code it called.
    """
    from auditor.run._deadline import DeadlineExceeded

    roots = list(user_roots)
    call = call_of(exc) or ""
    if isinstance(exc, DeadlineExceeded):
        return UserCodeFailure(
            "deadline",
            exc.what,
            f"did not return within {exc.seconds:g} s; it was abandoned",
            audit=audit,
            location=location_of(exc.what),
            key=exc.what,
            extra={"hint": exc.hint},
        )
    frames = _frames(exc.__traceback__)
    found = user_frame(frames, roots)
    frame, func = found if found else ("", "")
    if isinstance(exc, SystemExit):
        code = exc.code
        how = f"called sys.exit({code!r})" if code is not None else "called sys.exit()"
        kind = "ended"
    elif isinstance(exc, KeyboardInterrupt):
        how, kind = "raised KeyboardInterrupt itself (no Ctrl-C was pressed)", "ended"
    else:
        if not found and not (call and _only_libraries_below_call(frames)):
            return None  # raised inside auditor (or a library auditor called): auditor's bug
        how, kind = f"raised {type(exc).__name__}: {exc}"[:500], "raised"
        if not found:
            how += " (in the library the manifest names: do its kwargs and the objects it gets fit?)"
    return UserCodeFailure(
        kind,
        name_call(call, func),
        how,
        audit=audit,
        frame=frame,
        location=location_of(call),
        key=call,
        traceback=_user_traceback(exc.__traceback__, roots),
    )


def describe_exit(returncode: int) -> tuple[str, int | None, str | None]:
    """``(how, exit code, signal name)`` of a process that ended with ``returncode`` (negative: a signal)."""
    if returncode < 0:
        try:
            name = signal.Signals(-returncode).name
        except ValueError:
            name = f"signal {-returncode}"
        meaning = {
            "SIGSEGV": "a segmentation fault: C code read memory it does not own",
            "SIGABRT": "abort(): a C library or os.abort() stopped the process",
            "SIGKILL": "killed from outside (the operating system's out-of-memory killer?)",
            "SIGBUS": "a bus error: a bad memory access in C code",
            "SIGFPE": "a floating point exception in C code",
            "SIGILL": "an illegal instruction (a library built for another CPU?)",
        }.get(name, "a signal")
        return f"the process died of {name} ({meaning})", None, name
    return f"the process exited with code {returncode} (sys.exit or os._exit)", returncode, None


def meta_tensors(model: Any, limit: int = 5) -> list[str]:
    """Names of ``model``'s parameters and buffers on the ``meta`` device (no data), the first few."""
    names: list[str] = []
    for getter in ("named_parameters", "named_buffers"):
        items = getattr(model, getter, None)
        if not callable(items):
            continue
        try:
            for name, tensor in items():
                if getattr(tensor, "is_meta", False):
                    names.append(name)
                    if len(names) >= limit:
                        return names
        except Exception:  # a model whose own accessor fails says nothing about meta tensors
            return names
    return names


def failure_finding(registry: Registry, failure: UserCodeFailure) -> Finding | None:
    """The finding a plugin makes of ``failure`` (hook ``auditor_user_code_failed``), or None."""
    for finding in registry.hook.auditor_user_code_failed(failure=failure):
        if finding is not None:
            return finding  # type: ignore[no-any-return]
    return None
