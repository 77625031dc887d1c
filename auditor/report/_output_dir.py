"""The output folder's one rule: reports are written only into a real folder, never through a link.

A ``reports`` entry in a project that is a symbolic link (to another project's reports, to a
shared folder) would have every run overwrite the files there: ``report.json`` of the other
project, without a word. Like git, which never writes a checked-out file through a symlink, and
SQLite with ``SQLITE_OPEN_NOFOLLOW``, auditor refuses: the folder the reports go to (the
manifest's ``report.dir``, ``--output-dir``, or the folder of ``auditor report FILE``) must be
a real folder or not exist yet (it is then created). Its parent folders may be links: they are
where the user chose to work. Inside the folder, each report file is written to a fresh
exclusive temporary file and renamed over its name, which replaces a planted link instead of
following it (:mod:`auditor.report.files`).

The refusal happens before any audit runs (exit 2), and names the link, its target and the
fix: pass the target itself as ``--output-dir``, or replace the link by a folder.
"""

from __future__ import annotations

import errno
import os
import stat
from pathlib import Path

from auditor.errors import AuditorError

__all__ = ["OutputDirRefused", "check_output_dir", "make_output_dir"]


class OutputDirRefused(AuditorError):
    """The output folder is a symlink or not a folder: nothing is written (exit 2)."""


def check_output_dir(folder: Path) -> None:
    """Raise :class:`OutputDirRefused` when ``folder`` exists as anything but a real folder."""
    from auditor._util.printable import printable

    try:
        info = os.lstat(folder)
    except FileNotFoundError:
        return  # created when the reports are written
    except OSError as exc:
        # Worded as a failed write (auditor.report.files.ReportWriteError), only earlier.
        code = f" [{errno.errorcode.get(exc.errno, exc.errno)}]" if exc.errno else ""
        raise OutputDirRefused(
            f"cannot write the reports into {printable(folder)}: {exc.strerror or exc}{code}\n"
            "  hint: make the folder writable and give it free space, or pass --output-dir"
        ) from exc
    if stat.S_ISLNK(info.st_mode):
        try:
            target = os.readlink(folder)
        except OSError:
            target = "?"
        resolved = os.path.realpath(folder)
        raise OutputDirRefused(
            f"the output folder {printable(folder)} is a symbolic link (to {printable(target)}); auditor "
            "writes reports only into a real folder, never through a link\n"
            f"  hint: to write there, pass --output-dir {printable(resolved)}; otherwise replace the link "
            "with a folder (or set report.dir to another folder)"
        )
    if not stat.S_ISDIR(info.st_mode):
        raise OutputDirRefused(
            f"the output folder {printable(folder)} is not a folder\n"
            "  hint: pass --output-dir DIR, or set report.dir to a folder"
        )


def make_output_dir(folder: Path) -> None:
    """Create ``folder`` (and its parents) when missing, after :func:`check_output_dir`; raises OSError."""
    check_output_dir(folder)
    folder.mkdir(parents=True, exist_ok=True)
    check_output_dir(folder)  # a link planted while it was being created is still refused
