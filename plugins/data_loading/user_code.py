"""Failures of user code as findings (DL004-DL006, DL008): the host describes them, this plugin words them.

The host catches what user code does to a run (an exception, ``sys.exit``, a dead worker process, a
hang, too much memory, a model on the ``meta`` device) and hands each one over as an
:class:`auditor.kit.UserCodeFailure` through the hook ``auditor_user_code_failed``; the host knows no
finding code, so the codes and their words live here, beside the other loading failures.
"""

from __future__ import annotations

from auditor import Finding
from auditor.kit import UserCodeFailure, printable
from auditor_plugins.data_loading.codes import CODES

__all__ = ["failure_finding"]

_CODE = {"ended": "DL004", "raised": "DL005", "deadline": "DL006", "memory": "DL006", "meta": "DL008"}

_HINTS = {
    "ended": "a library must not end the process: raise an exception instead of calling sys.exit()/os._exit() "
    '(keep those under `if __name__ == "__main__":`); a signal points at C code (an extension built for '
    "another torch version, a bad ctypes pointer): reproduce the call alone to see it without auditor",
    "raised": "fix the line named; the traceback of your frames is in the finding's evidence "
    "(a TypeError of the call itself means the manifest's kwargs do not fit the callable)",
    "deadline": "make the call return (a blocking read, a lock, an endless loop?) or, when it is only slow, "
    "raise call_timeout_s in the manifest",
    "memory": "find what the call allocates (a dataset loading every image in __init__, an unbounded cache) "
    "or raise `auditor run --memory-limit GIB` on a machine that has the memory",
    "meta": "materialise the model before returning it: model.to_empty(device='cpu'), then load the weights "
    "(model.load_state_dict(state, assign=True)) or call reset_parameters() on each module",
}


def failure_finding(failure: UserCodeFailure) -> Finding:
    code = _CODE[failure.kind]
    info = next(info for info in CODES if info.code == code)
    ended = ""
    if failure.process_ended:
        ended = "; the audit's worker process ended, the run went on in a new one"
    return Finding(
        code=code,
        audit=failure.audit,
        severity=info.severity,
        title=info.title,
        message=printable(f"{failure.call}: {failure.how}{failure.where}{ended}"),
        hint=str(failure.extra.get("hint") or _HINTS[failure.kind]),
        location=failure.location,
        evidence=failure.to_dict(),
    )
