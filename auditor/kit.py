"""The plugin kit: what an audit, a data format or a report format needs from the host.

The built-in plugins use this module and nothing private, so a third-party
plugin gets the same guarantees they get:

Calls into user code under a deadline
    :class:`CallDeadline` (one run's ``call_timeout_s``; ``ctx.run.deadline``),
    :class:`DeadlineExceeded`, :data:`DEFAULT_CALL_TIMEOUT_S`. Audits usually
    call ``ctx.call(fn, *args, what=...)`` and formats ``split.call(...)``,
    which use the deadline of the run that makes the call.
Safe reads of user data
    :func:`open_regular` opens a file for reading and refuses, at once, a FIFO,
    socket or device that would block ``open`` forever (:class:`NotRegularFile`).
Data behind fsspec URLs (``s3://``, ``gs://``, ``memory://``)
    :func:`is_url`, :func:`filesystem`, :func:`open_url`, :func:`url_of`,
    :class:`RemoteFiles` (listed sizes and versions, for cache keys) and
    :func:`missing_extra` (the error for an optional dependency not installed).
Failures of user code
    :class:`UserCodeFailure` (what the hook ``auditor_user_code_failed`` receives:
    the call, how it ended, the user's frame) and :class:`UserCodeFailed` (raise it
    where a user object cannot be used, e.g. a model on the ``meta`` device).
Group ids (``group_pattern``, ``group_column``, ``groups=``)
    :func:`plain_id` / :func:`plain_ids`: an id as text, ``None`` for a missing one (NaN,
    blank), whole floats as integers; a format that reads ids of its own uses them, so every
    format's ids compare alike.
Text for people
    :func:`printable` (user-controlled names made safe to print),
    :func:`did_you_mean` / :func:`closest` (suggestions), :func:`display_path`
    (a path as a message should show it).
Hugging Face model folders (``model.pretrained``), read offline from JSON
    :func:`read_hf_pretrained`, :func:`is_hf_pretrained`, :class:`HFPretrained`,
    :class:`HFPretrainedProblem`, :data:`PROCESSOR_FILE`.

Nothing here imports torch, and fsspec is imported only when a URL is opened.
"""

from __future__ import annotations

from auditor._util.paths import display_path
from auditor._util.printable import printable
from auditor._util.suggest import closest, did_you_mean
from auditor.data._groups import plain_id, plain_ids
from auditor.data._regular import NotRegularFile, open_regular
from auditor.data._storage import RemoteFiles, filesystem, is_url, missing_extra, open_url, url_of
from auditor.manifest._hf_pretrained import (
    PROCESSOR_FILE,
    HFPretrained,
    HFPretrainedProblem,
    is_hf_pretrained,
    read_hf_pretrained,
)
from auditor.run._deadline import DEFAULT_CALL_TIMEOUT_S, CallDeadline, DeadlineExceeded
from auditor.run.user_code import UserCodeFailed, UserCodeFailure

__all__ = [
    "DEFAULT_CALL_TIMEOUT_S",
    "PROCESSOR_FILE",
    "CallDeadline",
    "DeadlineExceeded",
    "HFPretrained",
    "HFPretrainedProblem",
    "NotRegularFile",
    "RemoteFiles",
    "UserCodeFailed",
    "UserCodeFailure",
    "closest",
    "did_you_mean",
    "display_path",
    "filesystem",
    "is_hf_pretrained",
    "is_url",
    "missing_extra",
    "open_regular",
    "open_url",
    "plain_id",
    "plain_ids",
    "printable",
    "read_hf_pretrained",
    "url_of",
]
