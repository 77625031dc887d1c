"""Worker processes for hashing that stop when asked and never outlive the run.

Ctrl-C in a terminal sends SIGINT to the whole process group. Workers ignore
it: the parent alone decides, cancels the queued chunks, keeps the finished
ones and terminates the workers (``ProcessPoolExecutor.shutdown`` alone would
let every queued chunk run first). A parent killed outright (SIGKILL, the OOM
killer) cannot clean up, so each worker asks Linux to kill it when its parent
dies (``prctl(PR_SET_PDEATHSIG)``) and, everywhere, watches its parent's pid.
"""

from __future__ import annotations

import contextlib
import os
import signal
import sys
import threading
import time
from concurrent.futures import ProcessPoolExecutor

__all__ = ["init_worker", "stop_pool"]

_PR_SET_PDEATHSIG = 1
#: Seconds between a worker's checks that its parent still lives (where prctl is missing).
_WATCH_S = 1.0


def init_worker(parent: int) -> None:
    """Pool initializer: ignore SIGINT, die with the parent."""
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    if sys.platform.startswith("linux"):
        with contextlib.suppress(OSError, AttributeError):
            import ctypes

            ctypes.CDLL(None, use_errno=True).prctl(_PR_SET_PDEATHSIG, int(signal.SIGKILL), 0, 0, 0)
    if os.getppid() != parent:  # the parent died before prctl took effect
        os._exit(1)
    threading.Thread(target=_watch_parent, args=(parent,), name="auditor: parent watch", daemon=True).start()


def _watch_parent(parent: int) -> None:
    while os.getppid() == parent:
        time.sleep(_WATCH_S)
    os._exit(1)


def stop_pool(pool: ProcessPoolExecutor) -> None:
    """Cancel every queued task and end the workers now, without waiting for running ones."""
    # The executor keeps no public handle on its processes; _processes is stable since 3.2.
    processes = list((getattr(pool, "_processes", None) or {}).values())
    pool.shutdown(wait=False, cancel_futures=True)
    for process in processes:
        with contextlib.suppress(Exception):
            process.terminate()
    for process in processes:
        with contextlib.suppress(Exception):
            process.join(timeout=2)
