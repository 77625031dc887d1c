"""Writing a report in every requested format into the output folder.

Each file is rendered first, then written to a temporary file that
:func:`tempfile.mkstemp` creates exclusively (``O_CREAT | O_EXCL``, a random
name: a planted symlink is never followed, two concurrent runs never share a
name) in the target folder, and renamed over the target. A reader sees the old
report or the new one, never half of one. When writing fails (a read-only or
full folder) the temporary file is removed and :class:`ReportWriteError` names
the folder and the OS error; the CLI answers it with exit code 2. The output
folder itself must be a real folder, never a symlink (:mod:`._output_dir`).
"""

from __future__ import annotations

import contextlib
import os
import tempfile
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any

from auditor.errors import AuditorError
from auditor.report._output_dir import make_output_dir
from auditor.report.format import require_report_formats
from auditor.report.view import ReportView

if TYPE_CHECKING:  # pragma: no cover
    from auditor.run.registry import Registry

__all__ = ["ReportWriteError", "write_file_atomically", "write_reports"]


class ReportWriteError(AuditorError):
    """A report file could not be written; nothing half-written is left behind."""

    def __init__(self, what: str, folder: Path, error: OSError) -> None:
        self.folder = folder
        self.error = error
        reason = error.strerror or str(error)
        code = f" [{_errno_name(error.errno)}]" if error.errno else ""
        super().__init__(
            f"cannot write {what} into {folder}: {reason}{code}\n"
            f"  hint: make the folder writable and give it free space, or pass --output-dir"
        )


def write_reports(
    report: ReportView | Mapping[str, Any],
    formats: Iterable[str],
    output_dir: Path,
    registry: Registry,
    *,
    include_json: bool = True,
) -> list[tuple[str, Path]]:
    """Render ``report`` in each format (and json, unless ``include_json`` is false) into ``output_dir``.

    Prints nothing: what a format wants on stdout (``ReportFormat.echo``) is the CLI's to print, so
    :func:`auditor.run_manifest` called from Python leaves the caller's stdout alone.
    """
    asked = list(dict.fromkeys(formats))
    wanted = ["json", *[f for f in asked if f != "json"]] if include_json else asked
    require_report_formats(wanted, registry.report_formats, given_as="report format")
    try:
        make_output_dir(output_dir)  # a real folder only: a symlinked one is refused (exit 2)
    except OSError as exc:
        raise ReportWriteError("the reports", output_dir, exc) from exc
    written = []
    catalog = registry.catalog
    view = ReportView.of(report)  # read once: every format renders from the same view
    for name in wanted:
        fmt = registry.report_formats[name]
        content = fmt.render_report(view, catalog)
        data = content if isinstance(content, bytes) else content.encode("utf-8")
        target = output_dir / fmt.filename
        try:
            write_file_atomically(target, data)
        except OSError as exc:
            raise ReportWriteError(f"the {name} report ({fmt.filename})", output_dir, exc) from exc
        written.append((name, target))
    return written


def write_file_atomically(target: Path, data: bytes) -> None:
    """Put ``data`` at ``target`` through an exclusive temporary file in the same folder."""
    handle, temporary = tempfile.mkstemp(dir=target.parent, prefix=f".{target.name}.", suffix=".tmp")
    try:
        with os.fdopen(handle, "wb") as stream:
            # mkstemp makes the file 0600; a report is as readable as any file the user creates.
            with contextlib.suppress(OSError):
                os.fchmod(stream.fileno(), 0o666 & ~_umask())
            stream.write(data)
        os.replace(temporary, target)  # rename never follows a link at the target: it replaces it
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(temporary)
        raise


def _umask() -> int:
    mask = os.umask(0o022)
    os.umask(mask)
    return mask


def _errno_name(number: int) -> str:
    import errno

    return errno.errorcode.get(number, str(number))
