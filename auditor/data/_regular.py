"""Opening user data without blocking: only regular files are read.

A FIFO (or a device) named ``x.jpg`` in an image folder blocks ``open`` until
some writer appears, which may be never. Opening with ``O_NONBLOCK`` returns at
once whatever the file is; ``fstat`` on the open descriptor then says what it
is, with no window between a check and the open. For a regular file
``O_NONBLOCK`` changes nothing, so the handle reads as usual.
"""

from __future__ import annotations

import errno
import os
import stat
from pathlib import Path
from typing import BinaryIO

__all__ = ["NotRegularFile", "check_regular", "open_regular"]

_KINDS = (
    (stat.S_ISFIFO, "a FIFO (named pipe)"),
    (stat.S_ISSOCK, "a socket"),
    (stat.S_ISCHR, "a character device"),
    (stat.S_ISBLK, "a block device"),
    (stat.S_ISDIR, "a folder"),
)


class NotRegularFile(OSError):
    """The path exists but is no regular file: reading it could block forever."""

    def __init__(self, path: str | Path, mode: int) -> None:
        kind = next((name for test, name in _KINDS if test(mode)), "not a regular file")
        super().__init__(errno.EINVAL, f"not a regular file but {kind}; auditor does not read it", str(path))


def open_regular(path: str | Path) -> BinaryIO:
    """``open(path, "rb")`` that refuses, at once, anything but a regular file (links are followed)."""
    flags = os.O_RDONLY | getattr(os, "O_NONBLOCK", 0) | getattr(os, "O_CLOEXEC", 0)
    fd = os.open(path, flags)
    try:
        mode = os.fstat(fd).st_mode
        if not stat.S_ISREG(mode):
            raise NotRegularFile(path, mode)
        return os.fdopen(fd, "rb")
    except BaseException:
        os.close(fd)
        raise


def check_regular(path: str | Path) -> None:
    """Raise :class:`NotRegularFile` (or the OSError of ``stat``) unless ``path`` is a regular file."""
    mode = os.stat(path).st_mode
    if not stat.S_ISREG(mode):
        raise NotRegularFile(path, mode)
